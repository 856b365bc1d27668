"""`hindi-lm`: one command with subcommands over the library (pretrain, compare, evaluate, finetune, lm-eval-tasks)."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

from training import compare, evaluate, finetune, lm_eval_tasks, pretrain
from training.options import HelpFormatter, guarded, progress_bars_on_terminals_only, start_with_chosen_allocator

SUBCOMMANDS = (
    ("pretrain", pretrain, "pretrain one architecture (see --model-type) from a preset"),
    ("compare", compare, "train the tokenizer, pretrain every architecture, evaluate, report"),
    ("evaluate", evaluate, "evaluate any saved or Hub model"),
    ("finetune", finetune, "fine-tune a saved model on Hindi POS, NER and classification"),
    ("lm-eval-tasks", lm_eval_tasks, "write lm-evaluation-harness task files for a shared-data folder"),
)


def build_parser() -> argparse.ArgumentParser:
    """The `hindi-lm` parser with one sub-parser per subcommand module."""
    parser = argparse.ArgumentParser(prog="hindi-lm", description="Pretrain, compare and evaluate small Hindi LMs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('hindi-models')}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module, help_text in SUBCOMMANDS:
        command = sub.add_parser(name, help=help_text, description=module.__doc__.split("\n")[0],
                                 formatter_class=HelpFormatter)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    """Entry point of the `hindi-lm` console script."""
    args = build_parser().parse_args(argv)
    start_with_chosen_allocator(args, argv)
    progress_bars_on_terminals_only()
    return guarded(args.run, args)


if __name__ == "__main__":
    sys.exit(main())
