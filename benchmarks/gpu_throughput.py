"""GPU training throughput, MFU and peak memory of the project's models (needs one CUDA GPU; runs in ~5 min).

    python benchmarks/gpu_throughput.py --out gpu_results.json

Throughput: GPT base and hybrid base (vocab 32000, seq 512), bf16 autocast, sdpa attention, fused AdamW, with and
without torch.compile; median tokens/s over timed steps after warm-up, MFU against the card's dense bf16 peak.
FLOPs per token = 6·N_non-embedding + 12·L·d·T (attention scores and values, forward + backward) + 6·d·V (vocabulary
projection); the hybrid counts both stacks and both heads. Memory: peak allocated for one training step at
batch 32 (gradient checkpointing off/on) and for inference at batch 1, for small/base/large and the hybrid.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hindi_models.models import build_model  # noqa: E402
from hindi_models.presets import load_preset  # noqa: E402

DEVICE, PRESET = "cuda", "base"  # --dry-run: "cpu", "tiny" (checks the script without a GPU)
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def flops_per_token(model_type: str, preset, vocab: int) -> float:
    d, layers, seq, ffn = preset.hidden_size, preset.num_layers, preset.max_length, preset.intermediate_size
    per_layer = 4 * d * d + 2 * d * ffn  # attention projections + MLP weights
    stacks = 2 if model_type == "hybrid" else 1
    return stacks * (6 * layers * per_layer + 12 * layers * d * seq + 6 * d * vocab)


def batch_for(model_type, ids):
    if model_type == "gpt":
        return {"input_ids": ids, "labels": ids}
    if model_type == "bert":
        return {"input_ids": ids, "labels": ids}
    masked = ids.clone()
    masked[:, ::7] = 4
    return {"input_ids": ids, "labels": ids, "mlm_input_ids": masked, "mlm_labels": ids}


def throughput(model_type: str, compile_model: bool, batch_size: int, steps: int, warmup: int) -> dict:
    preset = load_preset(PRESET, model_type=model_type)
    torch.manual_seed(0)
    model = build_model(preset, 32000).to(DEVICE)
    model.config._attn_implementation = "sdpa"
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=DEVICE == "cuda")
    step_fn = torch.compile(model) if compile_model else model
    ids = torch.randint(5, 32000, (batch_size, preset.max_length), device=DEVICE)
    batch = batch_for(model_type, ids)
    times = []
    for i in range(warmup + steps):
        sync()
        start = time.perf_counter()
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            loss = step_fn(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    step = statistics.median(times)
    tokens = batch_size * preset.max_length
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), 989e12)
    tps = tokens / step
    return {
        "model": model_type, "compile": compile_model, "batch": batch_size, "seq": preset.max_length,
        "params": sum(p.numel() for p in model.parameters()), "step_ms_median": round(1000 * step, 2),
        "step_ms_spread": [round(1000 * min(times), 2), round(1000 * max(times), 2)],
        "tokens_per_s": round(tps), "mfu": round(flops_per_token(model_type, preset, 32000) * tps / peak, 4),
        "loss": round(loss.item(), 3),
    }


def peak_memory(name: str, model_type: str, train: bool, checkpointing: bool, batch: int) -> dict:
    preset = load_preset(name, model_type=model_type)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = build_model(preset, 32000).cuda()
    if checkpointing:
        model.gradient_checkpointing_enable()
    ids = torch.randint(5, 32000, (batch, preset.max_length), device="cuda")
    if train:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**batch_for(model_type, ids)).loss
        loss.backward()
        opt.step()
    else:
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            model(input_ids=ids)
    torch.cuda.synchronize()
    result = {"preset": name, "model": model_type, "mode": "train" if train else "inference", "batch": batch,
              "seq": preset.max_length, "checkpointing": checkpointing,
              "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    del model
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="gpu_results.json")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny preset, 2 steps: check the script only")
    args = parser.parse_args()
    import transformers

    if args.dry_run:
        global DEVICE, PRESET
        DEVICE, PRESET, args.steps, args.batch_size = "cpu", "tiny", 2, 2
        row = throughput("hybrid", False, args.batch_size, args.steps, warmup=1)
        print(json.dumps(row))
        return 0

    torch.backends.cuda.matmul.allow_tf32 = True
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
               "transformers": transformers.__version__, "throughput": [], "memory": []}
    out = Path(args.out)
    for model_type in ("gpt", "hybrid"):
        for compile_model in (False, True):
            row = throughput(model_type, compile_model, args.batch_size, args.steps, warmup=8 if compile_model else 3)
            print(json.dumps(row), flush=True)
            results["throughput"].append(row)
            out.write_text(json.dumps(results, indent=2))
    for name, model_type in (("small", "gpt"), ("base", "gpt"), ("large", "gpt"), ("base", "bert"), ("base", "hybrid")):
        for train, checkpointing, batch in ((True, False, 32), (True, True, 32), (False, False, 1)):
            try:
                row = peak_memory(name, model_type, train, checkpointing, batch)
            except torch.OutOfMemoryError:
                row = {"preset": name, "model": model_type, "train": train, "checkpointing": checkpointing,
                       "peak_gib": "OOM"}
            print(json.dumps(row), flush=True)
            results["memory"].append(row)
            out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
