"""`hindi-lm evaluate`: bits per character and minimal-pair accuracy of one model (folder or Hub repo).

    python -m training.evaluate --model runs/gpt-small --output results.json

By default it reads the shared Hindi data: the first `--max-texts` lines of the corpus' validation.txt and the
public BHS minimal pairs. All the scoring lives in `hindi_models.evaluation`; this file is argument glue.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training import options
from training.data import shared_data_dir

DEFAULT_EVAL_TEXT = "hindi_aesthetics_corpus/validation.txt"
DEFAULT_PAIRS = "bhs_hindi_minimal_pairs/pairs.public.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `hindi-lm evaluate`."""
    options.add_model_arguments(parser, help="saved model folder or Hub repo id")
    parser.add_argument("--tokenizer", help="tokenizer folder or repo id (default: the model's own)")
    parser.add_argument(
        "--kinds", default="auto", choices=["auto", "causal", "masked", "both"],
        help="scoring: auto reads the config (GPT causal, BERT masked/PLL, hybrid both)",
    )
    options.add_shared_data_argument(parser)
    parser.add_argument(
        "--eval-text", help=f"held-out text, one per line (default: <shared-data>/{DEFAULT_EVAL_TEXT}); 'none' skips"
    )
    parser.add_argument("--max-texts", type=int, default=1000, help="score the first N lines of --eval-text (0 = all)")
    parser.add_argument(
        "--minimal-pairs",
        help=f"JSONL/CSV/TSV file or HF dataset name (default: <shared-data>/{DEFAULT_PAIRS}); 'none' skips",
    )
    parser.add_argument("--pairs-config", help="dataset config when --minimal-pairs is a Hub dataset, e.g. a language (default: none)")
    parser.add_argument("--pairs-split", default="train", help="dataset split when --minimal-pairs is a Hub dataset")
    parser.add_argument("--max-pairs", type=int, default=0, help="score the first N pairs (0 = all)")
    parser.add_argument(
        "--strip-final-danda", action="store_true",
        help="diagnostic: drop a sentence-final । before scoring pairs (report the as-written numbers)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass")
    parser.add_argument("--max-length", type=int, help="window length (default: the model's context)")
    parser.add_argument("--stride", type=int, help="sliding-window step for long texts (default: half the window)")
    parser.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, ... or auto")
    parser.add_argument("--output", help="JSON file to write the results to (default: print only)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def input_or_default(value: str | None, default: str, shared: Path) -> Path | str | None:
    """An explicit path/name, 'none' to skip, or the shared-data default (which must exist)."""
    if value is not None:
        return None if value.lower() == "none" else value
    path = shared / default
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass --shared-data or set HINDI_MODELS_SHARED_DATA")
    return path


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def summary(results: dict) -> str:
    """A readable table: text metrics per section, then minimal-pair accuracy per phenomenon and section."""
    sections = results["sections"]
    phenomena = {p for s in sections.values() for p in s.get("minimal_pairs", {}).get("per_phenomenon", {})}
    w = max([28, *(len(p) + 2 for p in phenomena)])  # label column
    lines = [f"model: {results['model']}  ({results['model_type']}, {results['dtype']}, {results['device']})"]
    metric_rows = [("bits/char", "bits_per_char"), ("bits/word", "bits_per_word"), ("perplexity/token", "perplexity")]
    if any("language_model" in s for s in sections.values()):
        lines += ["", f"{'held-out text':<{w}}" + "".join(f"{n:>14}" for n in sections)]
        for label, key in metric_rows:
            cells = []
            for sec in sections.values():
                lm = sec.get("language_model", {})
                value = lm.get(key, lm.get(f"pseudo_{key}"))
                pseudo = key not in lm and value is not None
                cells.append(f"{_fmt(value) + (' *' if pseudo else ''):>14}")
            lines.append(f"{label:<{w}}" + "".join(cells))
        first = next(s["language_model"] for s in sections.values() if "language_model" in s)
        lines.append(f"{'texts / tokens / chars':<{w}}{first['texts']} / {first['tokens']} / {first['chars']}")
        if any(s["kind"] == "masked" for s in sections.values()):
            lines.append("* masked: pseudo-log-likelihood, not comparable to causal bits")
    if any("minimal_pairs" in s for s in sections.values()):
        mp = next(s["minimal_pairs"] for s in sections.values() if "minimal_pairs" in s)
        lines += ["", f"{'minimal pairs (% correct)':<{w}}" + "".join(f"{n:>14}" for n in sections) + f"{'pairs':>8}"]
        for name in [*mp["per_phenomenon"], "overall"]:
            cells = []
            for sec in sections.values():
                res = sec.get("minimal_pairs")
                row = (res if name == "overall" else res["per_phenomenon"].get(name)) if res else None
                cells.append(f"{100 * row['accuracy']:>14.1f}" if row else f"{'-':>14}")
            total = mp["total"] if name == "overall" else mp["per_phenomenon"][name]["total"]
            lines.append(f"{name:<{w}}" + "".join(cells) + f"{total:>8}")
        speeds = [s["minimal_pairs"]["pairs_per_second"] for s in sections.values() if "minimal_pairs" in s]
        speed = "".join(f"{v:>14.1f}" for v in speeds)
        lines.append(f"{'pairs/second':<{w}}{speed}")
        lines.append(f"sentences {mp['final_danda']}; ties count as wrong")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the summary, write --output (input errors are reported by `training.options.guarded`)."""
    from hindi_models.evaluation import evaluate_model, load_minimal_pairs

    if args.quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the weight-loading bars

    shared = shared_data_dir(args.shared_data)
    model = options.resolve_model(args.model)
    texts = input_or_default(args.eval_text, DEFAULT_EVAL_TEXT, shared)
    pairs_source = input_or_default(args.minimal_pairs, DEFAULT_PAIRS, shared)
    pairs = None
    if pairs_source is not None:
        limit = args.max_pairs or None
        pairs = load_minimal_pairs(pairs_source, config=args.pairs_config, split=args.pairs_split, limit=limit)
    passed = ("tokenizer", "kinds", "trust_remote_code", "revision", "batch_size", "max_length", "stride",
              "strip_final_danda", "dtype", "device")
    results = evaluate_model(model, eval_texts=texts, minimal_pairs=pairs, max_texts=args.max_texts or None,
                             progress=not args.quiet, **{name: getattr(args, name) for name in passed})
    results["eval_text"] = str(texts) if texts is not None else None
    results["minimal_pairs"] = str(pairs_source) if pairs_source is not None else None
    print(summary(results))
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwrote {out}")
    return 0


def main(argv=None) -> int:
    """`python -m training.evaluate`: the same as `hindi-lm evaluate`."""
    return options.standalone_main("evaluate", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
