"""`hindi-lm`: one command with subcommands over the library (pretrain, compare, evaluate, finetune)."""

from __future__ import annotations

import argparse
import os
import sys



class UserError(Exception):
    """Bad input reported as one line, without a traceback."""


# Errors that mean "your input is wrong": shown as one line naming the culprit, exit code 2.
USER_ERRORS = (ValueError, OSError, UnicodeDecodeError, UserError)


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


def build_parser() -> argparse.ArgumentParser:
    from training import compare, evaluate, finetune, pretrain

    parser = argparse.ArgumentParser(prog="hindi-lm", description="Pretrain, compare and evaluate small Hindi LMs.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module, help_text in (
        ("pretrain", pretrain, "pretrain one architecture (gpt, bert or hybrid) from a preset"),
        ("compare", compare, "train the tokenizer, pretrain GPT, BERT and hybrid, evaluate, report"),
        ("evaluate", evaluate, "evaluate any saved or Hub model"),
        ("finetune", finetune, "fine-tune a saved model on Hindi POS, NER and classification"),
    ):
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
