"""Peak CPU memory (RSS) of training and inference, the design's memory table measured on this machine.

    HF_HUB_OFFLINE=1 python benchmarks/cpu_memory.py --out benchmarks/results/cpu_memory.json

Each row runs in a fresh process (peak RSS never goes down inside one): build the model from the preset (vocab as
the preset), then either two training steps (AdamW, bf16 autocast where the CPU has it, batch `--batch-size` of
full-length random blocks, gradient checkpointing off or on) or one inference forward pass at batch 1 under
`torch.no_grad`. Reported: peak RSS of the process (`ru_maxrss`), the RSS after building the model (weights +
Python + libraries), and the difference, which is what the step itself needed (`step_raised_peak` says whether
the step, not building the model, set the peak).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def current_rss_mib() -> float:
    """Resident set size of this process now, from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def measure(preset_name: str, model_type: str, mode: str, batch_size: int, checkpointing: bool) -> dict:
    """One row, in this process: peak RSS of `mode` ("train" or "infer") for this model."""
    import torch

    sys.path.insert(0, str(ROOT))
    from hindi_models.models import build_model
    from hindi_models.presets import load_preset
    from training.pretrain import resolve_precision

    torch.manual_seed(0)
    preset = load_preset(preset_name, model_type=model_type)
    model = build_model(preset, preset.vocab_size)
    precision = resolve_precision("auto")
    ids = torch.randint(5, preset.vocab_size, (batch_size if mode == "train" else 1, preset.max_length))
    batch = {"input_ids": ids, "labels": ids}
    if model_type == "bert":
        batch["labels"] = torch.where(torch.rand(ids.shape) < 0.15, ids, -100)
    if model_type == "hybrid":
        batch["mlm_input_ids"], batch["mlm_labels"] = ids, torch.where(torch.rand(ids.shape) < 0.15, ids, -100)
    after_build = current_rss_mib()
    build_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the step's peak must exceed this
    if mode == "train":
        if checkpointing:
            model.gradient_checkpointing_enable()
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        for _ in range(2):  # the second step holds the optimizer state as well
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    else:
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            model(**{k: v for k, v in batch.items() if "labels" not in k})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"preset": preset_name, "model_type": model_type, "mode": mode, "batch_size": int(ids.shape[0]),
            "seq": preset.max_length, "vocab": preset.vocab_size, "gradient_checkpointing": checkpointing,
            "precision": precision, "parameters": sum(p.numel() for p in model.parameters()),
            "rss_after_build_mib": round(after_build), "peak_rss_during_build_mib": round(build_peak),
            "peak_rss_mib": round(peak), "step_raised_peak": peak > build_peak,
            "step_mib": round(peak - after_build)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="cpu_memory.json")
    parser.add_argument("--presets", nargs="+", default=["small"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: measure one row and print it as JSON
    args = parser.parse_args()
    if args.row:
        print(json.dumps(measure(**json.loads(args.row))))
        return 0
    rows = []
    for preset in args.presets:
        for model_type in ("gpt", "bert", "hybrid"):
            specs = [dict(mode="train", checkpointing=c) for c in (False, True)] + [dict(mode="infer", checkpointing=False)]
            for spec in specs:
                row = json.dumps(dict(preset_name=preset, model_type=model_type, batch_size=args.batch_size, **spec))
                done = subprocess.run([sys.executable, __file__, "--row", row], capture_output=True, text=True)
                if done.returncode:
                    sys.exit(f"cpu_memory: row {row} failed:\n{done.stderr[-2000:]}")
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
                Path(args.out).write_text(json.dumps({"rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
