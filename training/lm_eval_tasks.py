"""`hindi-lm lm-eval-tasks`: write lm-evaluation-harness task files for the Hindi minimal pairs and held-out text.

    hindi-lm lm-eval-tasks --output-dir lm_eval_tasks
    lm_eval --model hf --model_args pretrained=runs/gpt-small --tasks hindi_minimal_pairs --include_path lm_eval_tasks

The task files name the data by absolute path (the shared data folder differs per machine), so they are written
per machine rather than shipped as fixed YAML. Tasks: `hindi_minimal_pairs` (a group with one subtask per phenomenon,
`hindi_minimal_pairs_<phenomenon>`) and `hindi_heldout_text` (bits per character; needs `add_bos_token=False` in
`--model_args`). For causal models they score as `hindi-lm evaluate` does: each sentence after the BOS, its closing
[SEP] included, ties wrong. The templates are in `training/lm_eval_templates/`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import resources
from pathlib import Path
from string import Template

from hindi_models.files import atomic_directory
from hindi_models.minimal_pairs import BAD_KEYS, GOOD_KEYS, PHENOMENON_KEYS, load_minimal_pairs
from hindi_models.tokenizer import SEP_TOKEN
from training import options
from training.data import shared_data_dir
from training.evaluate import DEFAULT_EVAL_TEXT, DEFAULT_PAIRS, input_or_default

GROUP = "hindi_minimal_pairs"
TEXT_TASK = "hindi_heldout_text"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `hindi-lm lm-eval-tasks`."""
    parser.add_argument("--output-dir", required=True,
                        help="folder to write the task files to (pass it to lm_eval --include_path); replaced if "
                             "it holds task files of an earlier run, refused if it holds anything else")
    options.add_shared_data_argument(parser)
    parser.add_argument("--minimal-pairs",
                        help=f"JSONL file with good/bad[/phenomenon] (default: <shared-data>/{DEFAULT_PAIRS}); "
                             "'none' skips")
    parser.add_argument("--eval-text",
                        help=f"held-out text, one per line (default: <shared-data>/{DEFAULT_EVAL_TEXT}); 'none' skips")
    parser.add_argument("--sentence-end", default=SEP_TOKEN,
                        help="appended to every scored sentence/text, so the end-of-document token is scored as "
                             "`hindi-lm evaluate` does (default: %(default)s); '' for models with no end token")


def phenomenon_task(phenomenon: str) -> str:
    """Harness task name of one phenomenon: "bhs_hindi/S_O_V" -> "hindi_minimal_pairs_bhs_hindi_S_O_V"."""
    return f"{GROUP}_{re.sub(r'[^0-9A-Za-z]+', '_', phenomenon).strip('_')}"


def _phenomena(path: Path) -> list[str]:
    """The phenomena of a pairs file in file order, read (and checked) by `load_minimal_pairs`."""
    if path.suffix.lower() not in (".jsonl", ".json"):
        raise ValueError(f"{path}: the harness task files read JSON lines; got a {path.suffix or 'suffix-less'} file")
    phenomena = list(dict.fromkeys(pair["phenomenon"] for pair in load_minimal_pairs(path)))
    tasks = [phenomenon_task(p) for p in phenomena]
    if len(set(tasks)) < len(tasks):
        raise ValueError(f"{path}: phenomena {phenomena} give clashing task names {tasks}")
    return phenomena


def _template(name: str, **values) -> str:
    """A file of `training/lm_eval_templates/`, its `$name` placeholders filled with `values`."""
    text = resources.files("training").joinpath("lm_eval_templates", name).read_text(encoding="utf-8")
    return Template(text).substitute(values) if values else text


def _function(name: str, arg: str, call: str) -> str:
    """Source of a one-line helper that binds values of this run (the YAML can only name a function)."""
    return f"\n\ndef {name}({arg}):\n    return {call}\n"


def _check_replaceable(folder: Path, header: str) -> None:
    """Refuse to replace a folder that holds anything but the task files of an earlier run (told by `header`, the
    first line of their utils.py)."""
    if not folder.exists() or not any(folder.iterdir()):
        return
    helper = folder / "utils.py"
    if not (helper.is_file() and helper.read_text(encoding="utf-8").startswith(header)):
        raise ValueError(f"{folder}: folder exists and does not hold task files of `hindi-lm lm-eval-tasks`; "
                         "pass a new or empty --output-dir")


def _pair_tasks(folder: Path, path: Path, sentence_end: str) -> tuple[list[str], str]:
    """Write the group and one task per phenomenon; return their names and the helpers they call."""
    helpers = _function("doc_to_choice", "doc", f"pair_choices(doc, end={sentence_end!r}, "
                                              f"good_keys={GOOD_KEYS!r}, bad_keys={BAD_KEYS!r})")
    tasks = []
    for phenomenon in _phenomena(path):
        task = phenomenon_task(phenomenon)
        helpers += _function(f"docs_{task}", "dataset",
                             f"only_phenomenon(dataset, {phenomenon!r}, keys={PHENOMENON_KEYS!r})")
        (folder / f"{task}.yaml").write_text(_template(
            "minimal_pairs_task.yaml", task=task, data_file=json.dumps(str(path)), process_docs=f"docs_{task}",
            description=f"Minimal pairs of phenomenon {phenomenon!r}."), encoding="utf-8")
        tasks.append(task)
    group = _template("minimal_pairs_group.yaml", data_file=path, tasks="\n".join(f"  - {t}" for t in tasks))
    (folder / f"{GROUP}.yaml").write_text(group, encoding="utf-8")
    return [GROUP, *tasks], helpers


def write_tasks(output_dir, minimal_pairs=None, eval_text=None, sentence_end: str = SEP_TOKEN) -> list[str]:
    """Write the harness task files for a pairs JSONL and/or a text file (one text per line) into `output_dir`;
    return the task and group names (`hindi_minimal_pairs`, its subtasks, `hindi_heldout_text`)."""
    if minimal_pairs is None and eval_text is None:
        raise ValueError("nothing to write: both the minimal pairs and the eval text are 'none'")
    pairs = Path(minimal_pairs).resolve() if minimal_pairs is not None else None
    text = Path(eval_text).resolve() if eval_text is not None else None
    for kind, path in (("minimal pairs", pairs), ("eval text", text)):
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"{kind} file not found: {path}")
    out, helpers, names = Path(output_dir), _template("utils.py"), []
    _check_replaceable(out, helpers.splitlines()[0])
    with atomic_directory(out) as folder:
        if pairs is not None:
            pair_names, pair_helpers = _pair_tasks(folder, pairs, sentence_end)
            names, helpers = pair_names, helpers + pair_helpers
        if text is not None:
            helpers += _function("text_to_score", "doc", f"scored_text(doc, end={sentence_end!r})")
            (folder / f"{TEXT_TASK}.yaml").write_text(_template("heldout_text.yaml", data_file=json.dumps(str(text))),
                                                      encoding="utf-8")
            names.append(TEXT_TASK)
        (folder / "utils.py").write_text(helpers, encoding="utf-8")
    return names


def run(args: argparse.Namespace) -> int:
    """Write the task files and print how to run them."""
    shared = shared_data_dir(args.shared_data)
    pairs = input_or_default(args.minimal_pairs, DEFAULT_PAIRS, shared)
    text = input_or_default(args.eval_text, DEFAULT_EVAL_TEXT, shared)
    names = write_tasks(args.output_dir, pairs, text, sentence_end=args.sentence_end)
    print(f"wrote {len(names)} tasks/groups to {args.output_dir}: {', '.join(names)}")
    if GROUP in names:
        print(f"run: lm_eval --model hf --model_args pretrained=MODEL --tasks {GROUP} --include_path {args.output_dir}")
    if TEXT_TASK in names:
        print(f"run: lm_eval --model hf --model_args pretrained=MODEL,add_bos_token=False --tasks {TEXT_TASK} "
              f"--include_path {args.output_dir}")
    return 0


def main(argv=None) -> int:
    """`python -m training.lm_eval_tasks`: the same as `hindi-lm lm-eval-tasks`."""
    return options.standalone_main("lm-eval-tasks", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
