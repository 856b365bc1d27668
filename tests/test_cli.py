"""`hindi-lm` as a command: version, defaults in `--help`, one option name per idea, quiet logs off a terminal."""

import argparse
import io

import pytest

from training.cli import SUBCOMMANDS, build_parser, main
from training.options import progress_bars_on_terminals_only


def subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"hindi-lm {version('hindi-models')}"


@pytest.mark.parametrize("name", [name for name, _, _ in SUBCOMMANDS])
def test_help_shows_every_default(name):
    parser = subparsers()[name]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if action.required or isinstance(action, (argparse._HelpAction, argparse._StoreTrueAction)):
            continue
        text = formatter._get_help_string(action) % {"default": action.default} if action.help else ""
        assert "default" in text, f"hindi-lm {name} {action.option_strings[0]}: help shows no default: {text!r}"
    parser.format_help()  # every help string formats (no stray %)


def test_one_name_per_idea():
    parsers = subparsers()
    options = {name: {s for a in p._actions for s in a.option_strings} for name, p in parsers.items()}
    # A folder is --output-dir, a JSON file --output; loading options are the same where a model is loaded.
    assert {"--output-dir"} <= options["pretrain"] and {"--output-dir"} <= options["compare"]
    for name in ("evaluate", "finetune"):
        assert {"--model", "--revision", "--trust-remote-code", "--device", "--output"} <= options[name], name
    assert parsers["compare"].parse_args(["--run-dir", "x"]).run_dir == parsers["compare"].parse_args(
        ["--output-dir", "x"]).run_dir  # the old name still works


def test_progress_bars_off_a_terminal_only():
    import datasets
    from transformers.utils import logging as hf_logging

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    try:
        hf_logging.enable_progress_bar()  # earlier `main()` calls in this process ran off a terminal
        datasets.enable_progress_bars()
        progress_bars_on_terminals_only(Terminal())
        assert hf_logging.is_progress_bar_enabled() and datasets.is_progress_bar_enabled()
        progress_bars_on_terminals_only(io.StringIO())
        assert not hf_logging.is_progress_bar_enabled() and not datasets.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()
        datasets.enable_progress_bars()


def test_torch_compile_reaches_trainer(tmp_path):
    from training.pretrain import PretrainSettings, start_run, training_arguments

    assert build_parser().parse_args(["pretrain", "--output-dir", "x", "--torch-compile"]).torch_compile
    run = start_run(PretrainSettings(output_dir=tmp_path / "out", torch_compile=True))
    assert training_arguments(run).torch_compile
    assert not training_arguments(start_run(PretrainSettings(output_dir=tmp_path / "other"))).torch_compile
