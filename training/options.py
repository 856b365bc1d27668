"""Command-line pieces shared by the `hindi-lm` subcommands: one declaration per shared option, and the guard that
turns bad input into one line and exit code 2. Subcommand modules import this; `training/cli.py` imports them."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hindi_models.configuration_hybrid import ENCODER_POSITION_EMBEDDINGS
from hindi_models.presets import CAUSAL_FRACTION, MLM_PROBABILITY
from training.allocator import ALLOCATORS, relaunch_with_mimalloc


class UserError(Exception):
    """Bad input reported as one line, without a traceback."""


# Errors that mean "your input is wrong": shown as one line naming the culprit, exit code 2.
USER_ERRORS = (ValueError, OSError, UnicodeDecodeError, UserError)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows every option's default; help texts that explain a default themselves keep their words."""

    def _get_help_string(self, action):
        if "default" in (action.help or "") or any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            return action.help
        return super()._get_help_string(action)


def progress_bars_on_terminals_only(stream=None) -> None:
    """Off a terminal (a log file, CI), switch off the progress bars of transformers (Trainer, weight loading,
    our scorers) and datasets: a log then gets one line per stage instead of hundreds of redraws."""
    stream = stream or sys.stderr
    if not stream.isatty():
        import datasets
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        datasets.disable_progress_bars()


def guarded(run, args) -> int:
    """Call a subcommand's `run(args)`; turn input errors into `hindi-lm: error: ...` and exit code 2."""
    try:
        return run(args) or 0
    except USER_ERRORS as err:
        if os.environ.get("HINDI_LM_DEBUG"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__  # library errors span lines; keep one
        print(f"hindi-lm: error: {message}", file=sys.stderr)
        return 2


def standalone_main(name: str, module, argv=None) -> int:
    """`python -m training.<name>`: the same options and error handling as `hindi-lm <name>`."""
    parser = argparse.ArgumentParser(prog=f"hindi-lm {name}", description=module.__doc__.split("\n")[0],
                                     formatter_class=HelpFormatter)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    start_with_chosen_allocator(args, argv)
    progress_bars_on_terminals_only()
    return guarded(module.run, args)


def start_with_chosen_allocator(args: argparse.Namespace, argv) -> None:
    """A training command run from its own command line (`argv` None) with `--allocator mimalloc` restarts itself
    with mimalloc preloaded (`training.allocator.relaunch_with_mimalloc`) before any work."""
    if argv is None and getattr(args, "allocator", None):
        relaunch_with_mimalloc(args.allocator)


def single(values):
    """argparse `nargs="+"` gives a list; one value (e.g. "shared") stays a plain string for `load_corpus`."""
    return values[0] if isinstance(values, list) and len(values) == 1 else values


def add_corpus_argument(parser: argparse.ArgumentParser) -> None:
    """`--corpus`: what to pretrain on (see `training.data.load_corpus`)."""
    parser.add_argument("--corpus", nargs="+", default=None,
                        help="txt/jsonl files, globs or folders, 'shared' (the shared 6.9M-word corpus) or "
                             "hf://name[:config]; default: the bundled sample corpus")


def add_allocator_argument(parser: argparse.ArgumentParser, choices=ALLOCATORS) -> None:
    """`--allocator`: the memory allocator of CPU training (`training.allocator`), one of `choices` (the default
    first)."""
    meanings = {"mimalloc": "mimalloc (the command restarts itself with it preloaded; freed memory is kept for reuse)",
                "glibc-keep": "glibc-keep (glibc keeping freed memory, trimmed past 1.25x the resident memory after "
                              "warm-up)",
                "stock": "stock (glibc's defaults)"}
    parser.add_argument("--allocator", choices=choices, default=choices[0],
                        help=f"memory allocator of CPU training: {', '.join(meanings[c] for c in choices)}; "
                             "nothing computed changes (step times: BENCHMARKS.md)")


def add_preset_argument(parser: argparse.ArgumentParser) -> None:
    """`--preset`: a bundled preset name or a YAML path."""
    parser.add_argument("--preset", default="tiny", help="bundled preset name or YAML path (default: tiny)")


def add_seed_argument(parser: argparse.ArgumentParser) -> None:
    """`--seed`: model initialisation, data order and masks."""
    parser.add_argument("--seed", type=int, default=42, help="seed of initialisation, data order and masks")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """`--precision`: auto = bf16 on GPUs and CPUs with native bf16, else fp32."""
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                        help="auto: bf16 where the GPU or CPU supports it natively, else fp32 (default: auto)")


def add_shared_data_argument(parser: argparse.ArgumentParser) -> None:
    """`--shared-data`: the read-only folder of Hindi evaluation data."""
    parser.add_argument("--shared-data", default=None,
                        help="shared data folder (default: $HINDI_MODELS_SHARED_DATA, else ../shared/data)")


def add_position_argument(parser: argparse.ArgumentParser) -> None:
    """`--encoder-positions`: override the preset's `encoder_position_embeddings` (bert, hybrid encoder)."""
    parser.add_argument("--encoder-positions", dest="encoder_position_embeddings", choices=ENCODER_POSITION_EMBEDDINGS,
                        help="rotary (RoFormer) or absolute (stock BERT) positions for bert and the hybrid's "
                        "encoder (default: the preset's)")


def add_mlm_probability_argument(parser: argparse.ArgumentParser) -> None:
    """`--mlm-probability`: the masking rate of the masked objectives (bert, the hybrid's encoder)."""
    parser.add_argument("--mlm-probability", type=float, default=None,
                        help=f"share of tokens the masked objectives predict (default: the preset's, else "
                             f"{MLM_PROBABILITY:g})")


def add_causal_fraction_argument(parser: argparse.ArgumentParser) -> None:
    """`--causal-fraction`: GPT-BERT's share of causal rows per batch."""
    parser.add_argument("--causal-fraction", type=float, default=None,
                        help=f"gpt_bert: share of causal rows in a batch, the rest masked next-token prediction "
                             f"(default: the preset's, else {CAUSAL_FRACTION:g})")


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """`--set KEY=VALUE` (repeatable): any preset key or training hyperparameter, for one run."""
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                        help="override a preset key (dropout, vocab_size, max_length, hidden_size, ...) or a training "
                             "hyperparameter (weight_decay, adam_beta2, lr_scheduler_type, ...) for this run; "
                             "repeatable; VALUE is read as YAML, e.g. --set dropout=0")


def parse_overrides(items: list[str]) -> dict:
    """`["dropout=0", "lr_scheduler_type=linear"]` → `{"dropout": 0, "lr_scheduler_type": "linear"}` (YAML values)."""
    import yaml

    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. --set dropout=0")
        try:
            values[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserError(f"--set {item!r}: value {text!r} is not a YAML scalar") from None
    return values


def add_model_arguments(parser: argparse.ArgumentParser, help: str) -> None:
    """`--model`, `--revision`, `--trust-remote-code`, `--device`: which saved or Hub model to load, and where."""
    parser.add_argument("--model", required=True, help=help)
    parser.add_argument("--revision", help="Hub branch, tag or commit of --model (default: the main branch)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow a Hub model's own code; not needed for this project's models, which the installed "
                             "package serves")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")


def resolve_model(model: str) -> str:
    """A local folder as an absolute-looking path, or a Hub repo id; anything path-like that does not exist is an
    error naming it."""
    local = Path(model).expanduser()
    if local.exists():
        return str(local)
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise FileNotFoundError(f"model not found: {model} (no such folder, and not a Hub repo id)")
    return model
