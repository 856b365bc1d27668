"""The speed issue's "no change to results" check: a fixed-seed run of each architecture through `pretrain()` logs its
training loss every step; run it on two commits and compare the logs.

    python benchmarks/same_losses.py --out before.json                       # in a checkout of the old commit
    python benchmarks/same_losses.py --out after.json --compare before.json  # in the new one: the largest gaps

Each run: the `tiny` preset (or `--preset`), the bundled sample corpus, seed 0, `--steps` optimizer steps, the
machine's precision (`--precision auto`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.pretrain import pretrain  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--compare", type=Path, help="a file this script wrote on another commit")
parser.add_argument("--models", nargs="+", default=["gpt", "bert", "hybrid", "gpt_bert"])
parser.add_argument("--preset", default="tiny")
parser.add_argument("--steps", type=int, default=30)


def main() -> int:
    args = parser.parse_args()
    losses = {}
    with tempfile.TemporaryDirectory(prefix="same-losses-") as tmp:
        for model_type in args.models:
            out = Path(tmp) / model_type
            pretrain(model_type=model_type, preset=args.preset, output_dir=out, max_steps=args.steps,
                     logging_steps=1, eval_steps=10 * args.steps, save_steps=args.steps, seed=0, report_to="none",
                     disable_tqdm=True)
            state = json.loads(Path(f"{out}_checkpoints/checkpoint-{args.steps}/trainer_state.json").read_text())
            losses[model_type] = [row["loss"] for row in state["log_history"] if "loss" in row]
    args.out.write_text(json.dumps(losses, indent=1) + "\n")
    if args.compare:
        before = json.loads(args.compare.read_text())
        for model_type, after in losses.items():
            gaps = [abs(a - b) for a, b in zip(after, before[model_type])]
            print(f"{model_type}: {len(gaps)} steps, largest |loss gap| {max(gaps):.4f}, at the last step "
                  f"{gaps[-1]:.4f} ({before[model_type][-1]:.4f} -> {after[-1]:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
