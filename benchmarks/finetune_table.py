"""The fine-tuning protocol's table for models fine-tuned one task at a time by `benchmarks/finetune_protocol.sh`.

    python benchmarks/finetune_table.py --results benchmarks/results/finetune_protocol_1h_twins \
        benchmarks/results/finetune_protocol_1h_grouped --models gpt bert hybrid gpt_bert

Reads `<dir>/<model>.<task>.json` (each the JSON of one `hindi-lm finetune --tasks <task>` run; the first folder
that has the file wins) and prints, in Markdown, the table `hindi-lm compare`'s report shows
(`training.report.finetune_protocol_table`), then where each cell came from and its settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.finetune import TASKS  # noqa: E402
from training.report import finetune_protocol_table  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", nargs="+", type=Path, required=True, metavar="DIR")
    parser.add_argument("--models", nargs="+", default=["gpt", "bert", "hybrid", "gpt_bert"])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    args = parser.parse_args(argv)

    models, sources = {}, []
    for model in args.models:
        for task in args.tasks:
            name = f"{model}.{task}.json"
            path = next((d / name for d in args.results if (d / name).is_file()), None)
            if path is None:
                continue
            run = json.loads(path.read_text(encoding="utf-8"))
            if task not in run.get("tasks", {}):
                parser.error(f"{path}: no task {task!r} in its 'tasks' (is it a `hindi-lm finetune` result?)")
            models.setdefault(model, {"finetune": {}})["finetune"][task] = run["tasks"][task]
            settings = run["settings"]
            sources.append(f"- {model} / {task}: `{path}`; seeds {run['seeds']}, learning rates "
                           f"{settings['learning_rates']}, length grouping {settings.get('length_grouping', False)}")
    if not models:
        parser.error(f"no <model>.<task>.json for {args.models} × {args.tasks} in {[str(d) for d in args.results]}")
    table = finetune_protocol_table({"models": models})
    if table is None:
        parser.error("no result has a from-scratch twin; run the protocol without --no-from-scratch")
    print(table, "", *sources, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
