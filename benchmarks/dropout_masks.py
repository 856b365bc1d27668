"""Do the cheaper CPU dropout masks (`hindi_models/dropout.py`) change what a model learns?

    HF_HUB_OFFLINE=1 python benchmarks/dropout_masks.py --out benchmarks/results/dropout_masks_mini.json

They cannot give the same run as torch's masks (other random draws), so the check is statistical: per architecture
and seed, one `pretrain()` run with the default masks and one with `--stock-dropout`, the same preset with dropout
switched on (`mini` keeps 0 by default), the shared corpus, one tokenizer; the paired difference of the validation
losses (cpu - stock at each seed) is set against its standard error and the spread over seeds. Resumable: finished
runs in `--out` stay.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hindi_models.presets import load_preset  # noqa: E402
from hindi_models.tokenizer import train_tokenizer  # noqa: E402
from training.data import load_corpus  # noqa: E402
from training.pretrain import pretrain  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=["gpt", "bert"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--word-budget", type=float, default=1e6)
    args = parser.parse_args()
    results = {"command": " ".join(sys.argv), "runs": {}}
    if args.out.exists():
        results["runs"] = json.loads(args.out.read_text())["runs"]
    with tempfile.TemporaryDirectory(prefix="dropout-masks-") as tmp:
        tokenizer_dir = Path(tmp) / "tokenizer"
        train_tokenizer(load_corpus("shared")["train"]["text"], vocab_size=load_preset(args.preset).vocab_size,
                        output_dir=tokenizer_dir, show_progress=False)
        for model_type, seed, masks in itertools.product(args.models, args.seeds, ("cpu", "stock")):
            key = f"{model_type}/seed{seed}/{masks}"
            if key in results["runs"]:
                continue
            metrics = pretrain(model_type=model_type, preset=args.preset, corpus="shared", tokenizer_path=tokenizer_dir,
                               output_dir=Path(tmp) / key.replace("/", "-"), word_budget=int(args.word_budget),
                               seed=seed, stock_dropout=masks == "stock", preset_overrides={"dropout": args.dropout},
                               eval_steps=10**6, report_to="none", disable_tqdm=True)
            results["runs"][key] = {k: v for k, v in metrics.items()
                                    if k.startswith("validation_") or k in ("train_loss", "steps", "speed")}
            print(key, json.dumps(results["runs"][key]), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
    results["gaps"] = gaps(results["runs"])
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["gaps"], indent=2))
    return 0


def gaps(runs: dict) -> dict:
    """Per model and validation loss: cpu - stock at each seed (paired), their mean and standard error, and the
    standard deviation over seeds of each kind of masks."""
    out = {}
    for model_type in sorted({key.split("/")[0] for key in runs}):
        rows = {key.split("/", 1)[1]: row for key, row in runs.items() if key.startswith(model_type + "/")}
        seeds = sorted({key.split("/")[0] for key in rows})
        for loss in sorted({k for row in rows.values() for k in row if k.startswith("validation_")}):
            value = {key: row[loss] for key, row in rows.items() if loss in row}
            paired = {s: value[f"{s}/cpu"] - value[f"{s}/stock"] for s in seeds
                      if f"{s}/cpu" in value and f"{s}/stock" in value}
            out[f"{model_type}/{loss}"] = {
                "cpu_minus_stock": {s: round(d, 4) for s, d in paired.items()},
                "mean_cpu_minus_stock": round(statistics.mean(paired.values()), 4),
                "standard_error": round(statistics.stdev(paired.values()) / len(paired) ** 0.5, 4)
                if len(paired) > 1 else None,
                "seed_sd": {m: round(statistics.stdev(v for k, v in value.items() if k.endswith("/" + m)), 4)
                            for m in ("cpu", "stock") if sum(k.endswith("/" + m) for k in value) > 1},
                "values": {k: round(v, 4) for k, v in sorted(value.items())},
            }
    return out


if __name__ == "__main__":
    sys.exit(main())
