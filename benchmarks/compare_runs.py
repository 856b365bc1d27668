"""Loss curves of the same models from two or more `hindi-lm compare` runs on one plot, plus a table.

    python benchmarks/compare_runs.py --runs absolute=runs/reference_mini rotary=runs/reference_mini_rotary \
        --models bert hybrid --out model_cards/reference_mini_absolute/encoder_positions.png

Reads each run's `checkpoints/<model>/log.jsonl`; prints the validation losses at every evaluation as a
Markdown table (nats/token; the hybrid's is 0.5·MLM + 0.5·CLM) and draws them with `training.report`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.report import plot_loss_curves, read_log  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, metavar="LABEL=RUN_DIR")
    parser.add_argument("--models", nargs="+", default=["bert", "hybrid"])
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)

    logs = {}
    for spec in args.runs:
        label, sep, run_dir = spec.partition("=")
        if not sep:
            parser.error(f"--runs: expected LABEL=RUN_DIR, got {spec!r}")
        for model in args.models:
            path = Path(run_dir) / "checkpoints" / model / "log.jsonl"
            if not path.is_file():
                parser.error(f"{path}: no training log (is {run_dir} a compare run with {model}?)")
            logs[f"{model} ({label})"] = read_log(path)

    evals = {name: {r["step"]: r["eval_loss"] for r in records if "eval_loss" in r} for name, records in logs.items()}
    steps = sorted({step for losses in evals.values() for step in losses})
    print("| model | " + " | ".join(f"step {s}" for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for name, losses in evals.items():
        print(f"| {name} | " + " | ".join(f"{losses[s]:.3f}" if s in losses else "–" for s in steps) + " |")
    plot_loss_curves(logs, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
