"""`hindi-lm`: one command with subcommands over the library (pretrain, compare, evaluate, finetune)."""

from __future__ import annotations

import argparse
import sys

from training import compare, evaluate, finetune, pretrain
from training.options import guarded

SUBCOMMANDS = (
    ("pretrain", pretrain, "pretrain one architecture (see --model-type) from a preset"),
    ("compare", compare, "train the tokenizer, pretrain every architecture, evaluate, report"),
    ("evaluate", evaluate, "evaluate any saved or Hub model"),
    ("finetune", finetune, "fine-tune a saved model on Hindi POS, NER and classification"),
)


def build_parser() -> argparse.ArgumentParser:
    """The `hindi-lm` parser with one sub-parser per subcommand module."""
    parser = argparse.ArgumentParser(prog="hindi-lm", description="Pretrain, compare and evaluate small Hindi LMs.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module, help_text in SUBCOMMANDS:
        command = sub.add_parser(name, help=help_text, description=module.__doc__.split("\n")[0])
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    """Entry point of the `hindi-lm` console script."""
    args = build_parser().parse_args(argv)
    return guarded(args.run, args)


if __name__ == "__main__":
    sys.exit(main())
