"""Fine-tune a saved GPT, BERT, hybrid or GPT-BERT on Hindi POS tagging, NER and text classification with
`transformers.Trainer`, in the style of the BabyLM evaluation pipeline.

    hindi-lm finetune --model runs/bert --output results.json                 # the protocol, all four tasks
    hindi-lm finetune --model runs/bert --tasks pos --quick                    # one epoch on 800 examples
    python -m training.finetune --model runs/hybrid --tasks bbc_topic --seeds 0 --learning-rates 3e-4

The protocol (default): each task's full train split, up to 10 epochs with early stopping on its dev split's main
metric (POS accuracy, NER F1, classification macro-F1; patience 3; the best epoch's weights are restored), the
learning rate picked on dev among 1e-4, 3e-4, 1e-3 with the first seed, batch 32, mean ± std over seeds 0 1 2 on
the test split. Every task also reports two floors: the majority class (most frequent tag per word for POS) and the
same architecture randomly initialised and fine-tuned with the same protocol (`from_scratch`), so the gain from
pretraining is a number (`pretraining_gain`).
`--quick` is the fast setting of the default `make compare`: one epoch on at most 800 examples, learning rate
5e-5, batch 16, no dev split, no from-scratch twin.

Tasks (files under the shared data folder, `$HINDI_MODELS_SHARED_DATA` or ../shared/data; train / dev / test):

* `pos`: UD Hindi-HDTB 2015, UPOS (UD v1 tags, `CONJ` not `CCONJ`): trained on `hi-ud-dev.conllu` (the only
  training data there is) minus a tenth carved off by a fixed hash as dev, tested on `hi-ud-test.public.conllu`
  and, out of domain, on UD Hindi-PUD (`pud`; v2's `CCONJ` read as `CONJ`); metric: accuracy over words.
* `ner`: IL-NER Hindi, BIO tags over `NEP NEL NEO NEN NETI NEAR NED NEU`; metric: entity-level micro F1 with
  seqeval's default (IOB2, non-strict) span rules.
* `bbc_topic`, `iitp_sentiment`: MIDAS Hindi classification, `text` → `label`; metrics: accuracy and macro-F1.

Word-level tags label the first sub-token of each word (others -100, as in `run_ner.py`), the last one for GPT
(causal: its first sub-token has not seen the rest of the word); a word cut off by `max_length` counts as wrong (POS)
or as `O` (NER), so truncation never flatters a score. Training batches are drawn at random (`--length-grouping`:
from examples of similar length, 1.5-1.95× faster per epoch, IL-NER 1.4-2.5 F1 points lower) and every batch is
padded to its longest example. GPT uses the stock `GPT2For{Token,Sequence}Classification` heads (the sequence head
reads the last non-pad token, `[SEP]`), BERT the stock Bert heads, the hybrid and GPT-BERT their bidirectional heads
(served by the installed package: no remote code runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import SequentialSampler
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Trainer,
    TrainingArguments,
)
from transformers.trainer_callback import PrinterCallback

from training import options
from training.allocator import process_allocator
from training.pretrain import resolve_precision
from training.probe import probe_suite
from training.task_encoding import (
    MAIN_METRICS,
    TASKS,
    argmax_predictions,
    encode_task,
    load_task_model,
    majority_baseline,
    make_compute_metrics,
    task_kind,
    task_splits,
    word_subtoken,
)

DEFAULTS = dict(epochs=3.0, batch_size=16, learning_rate=5e-5, max_length=256)  # one `finetune()` call
PROTOCOL = dict(epochs=10.0, batch_size=32, learning_rates=(1e-4, 3e-4, 1e-3), patience=3, seeds=(0, 1, 2))
QUICK = dict(epochs=1.0, batch_size=16, learning_rates=(5e-5,), max_examples=800)
FINETUNE_ALLOCATORS = ("mimalloc", "stock")  # `hindi-lm finetune --allocator` (training.allocator)


# --------------------------------------------------------------------------- fine-tuning


class InOrderEvaluationTrainer(Trainer):
    """Trainer whose evaluation keeps the dataset's order while training batches are grouped by length.

    `train_sampling_strategy="group_by_length"` (transformers 5.2 and later) also shuffles the evaluation sampler; the
    word-level metrics map each prediction row back to its sentence by position, so evaluation must stay in order.
    """

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None or self.args.world_size > 1:
            return super()._get_eval_sampler(eval_dataset)
        return SequentialSampler(eval_dataset)


def finetune(
    model_dir: str | Path,
    task: str,
    train: list[dict],
    eval: list[dict],
    labels: list[str],
    seed: int = 0,
    epochs: float = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    learning_rate: float = DEFAULTS["learning_rate"],
    max_length: int = DEFAULTS["max_length"],
    output_dir: str | Path | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
    device: str | None = None,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
    evaluate_before: bool = False,
    dev: list[dict] | None = None,
    patience: int = PROTOCOL["patience"],
    from_scratch: bool = False,
    extra_eval: dict[str, list[dict]] | None = None,
    precision: str = "fp32",
    length_grouping: bool = False,
) -> dict:
    """Fine-tune `model_dir` on one task and evaluate at the end; returns a JSON-serialisable dict.

    `task` is a kind (`pos`, `ner`, `classification`) or a suite task name; `train` / `eval` (the test split) are
    loader outputs; `labels` the label names (index = class id). With `dev`, Trainer scores it every epoch, stops
    after `patience` epochs without a better main metric (`EarlyStoppingCallback`) and restores the best epoch's
    weights before the test (key `dev`: the best epoch's dev scores). `from_scratch` trains the same architecture
    from a random initialisation instead of the pretrained weights. `extra_eval` (name → examples) are further test
    sets scored at the end (key `extra`). `output_dir`, when given, receives the fine-tuned model, tokenizer and
    `finetune_results.json`. `evaluate_before` also scores the untouched model on the test split (key `before`).
    `revision` / `trust_remote_code` are `from_pretrained`'s; `device="cpu"` keeps Trainer off a GPU; `precision`
    is `fp32`, `bf16` or `fp16` (autocast through Trainer). `length_grouping` draws each training batch from
    examples of similar length (Trainer's `group_by_length` sampler: a random order, sorted within windows of 50
    batches), so batches pad to about 1.05× their real tokens instead of 1.7-2.6×: 1.5-1.95× faster per epoch, POS
    unchanged, but IL-NER F1 1.4-2.5 points lower at the same seed (BENCHMARKS.md), so it is off by default.
    """
    kind = task_kind(task)
    train, eval = train[:max_train_examples], eval[:max_eval_examples]
    if not train or not eval:
        raise ValueError(f"{task}: empty train ({len(train)}) or eval ({len(eval)}) split")
    if dev is not None and not dev:
        raise ValueError(f"{task}: empty dev split")
    id2label = dict(enumerate(labels))
    auto_class = AutoModelForSequenceClassification if kind == "classification" else AutoModelForTokenClassification
    tokenizer, model, max_length = load_task_model(model_dir, auto_class, labels, max_length, seed, from_scratch,
                                                   revision=revision, trust_remote_code=trust_remote_code)
    examples = {"test": eval, **({"dev": dev} if dev is not None else {}), **(extra_eval or {})}
    encoded = encode_task(task, tokenizer, {"train": train, **examples}, labels, max_length,
                          word_subtoken(model.config))
    collator = (DataCollatorWithPadding(tokenizer) if kind == "classification"
                else DataCollatorForTokenClassification(tokenizer))

    early_stopping = dev is not None
    with tempfile.TemporaryDirectory(prefix="finetune-") as scratch:
        args = TrainingArguments(
            output_dir=scratch, num_train_epochs=epochs, per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=2 * batch_size, learning_rate=learning_rate, weight_decay=0.01,
            warmup_steps=0.1, lr_scheduler_type="linear", seed=seed, data_seed=seed,
            eval_strategy="epoch" if early_stopping else "no", save_strategy="epoch" if early_stopping else "no",
            load_best_model_at_end=early_stopping, metric_for_best_model=MAIN_METRICS[kind][0],
            greater_is_better=True, save_total_limit=1, save_only_model=True, logging_strategy="no", report_to=[],
            disable_tqdm=True, use_cpu=device == "cpu" or not torch.cuda.is_available(),
            bf16=precision == "bf16", fp16=precision == "fp16",
            train_sampling_strategy="group_by_length" if length_grouping else "random",
        )
        trainer = InOrderEvaluationTrainer(
            model=model, args=args, data_collator=collator, train_dataset=encoded["train"][0],
            processing_class=tokenizer, preprocess_logits_for_metrics=argmax_predictions,
            eval_dataset=encoded["dev"][0] if early_stopping else None,
            callbacks=[EarlyStoppingCallback(early_stopping_patience=patience)] if early_stopping else None,
        )
        trainer.remove_callback(PrinterCallback)  # keep stdout for the summary; metrics come back in the result

        def metrics_of(split: str):
            return make_compute_metrics(kind, examples[split], encoded[split][1], id2label)

        def score(split: str) -> dict:
            trainer.compute_metrics = metrics_of(split)
            return _strip(trainer.evaluate(encoded[split][0]))

        result = {"task": task, "kind": kind, "model_dir": str(model_dir), "seed": seed, "from_scratch": from_scratch,
                  "n_train": len(train), "n_eval": len(eval), "n_dev": len(dev or []), "labels": list(labels),
                  "hyperparameters": dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                          max_length=max_length, patience=patience if early_stopping else None,
                                          precision=precision, length_grouping=length_grouping)}
        if evaluate_before:
            result["before"] = score("test")
        if early_stopping:
            trainer.compute_metrics = metrics_of("dev")  # what Trainer scores after each epoch
        start = time.perf_counter()
        train_output = trainer.train()
        result["train_seconds"] = round(time.perf_counter() - start, 2)
        result["train_loss"] = float(train_output.training_loss)
        result["epochs_trained"] = float(trainer.state.epoch)
        if early_stopping:
            steps_per_epoch = trainer.state.global_step / trainer.state.epoch
            result["best_epoch"] = round(trainer.state.best_global_step / steps_per_epoch, 2)
            result["dev"] = score("dev")
        result["metrics"] = score("test")
        if extra_eval:
            result["extra"] = {name: score(name) for name in extra_eval}
        if output_dir is not None:
            trainer.save_model(str(output_dir))
            Path(output_dir, "finetune_results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _strip(metrics: dict) -> dict:
    """Trainer's `eval_*` metrics without the prefix, as plain floats / ints."""
    return {key.removeprefix("eval_"): (int(v) if float(v).is_integer() and "n_" in key else float(v))
            for key, v in metrics.items()}


def _mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def runs_with_learning_rate_choice(model_dir, task: str, seeds, learning_rates, **common) -> dict:
    """One `finetune` run per seed at one learning rate: with several rates, each is tried with the first seed and
    the best on the dev split's main metric is kept (its run counts as that seed's); returns the runs, per-seed
    scores with mean ± std of the main metrics, the rate used and, when chosen, every rate's dev score."""
    kind, main_metric = task_kind(task), MAIN_METRICS[task_kind(task)][0]
    label = "from scratch" if common.get("from_scratch") else "pretrained"
    first = {}
    for learning_rate in learning_rates:
        first[learning_rate] = finetune(model_dir, task, seed=seeds[0], learning_rate=learning_rate, **common)
        _progress(task, label, first[learning_rate])
    chosen = max(learning_rates, key=lambda lr: first[lr]["dev"][main_metric]) if len(first) > 1 \
        else learning_rates[0]
    runs = [first[chosen]]
    for seed in seeds[1:]:
        runs.append(finetune(model_dir, task, seed=seed, learning_rate=chosen, **common))
        _progress(task, label, runs[-1])
    summary = {"learning_rate": chosen, "per_seed": [{"seed": r["seed"], **r["metrics"]} for r in runs],
               **{metric: _mean_std([r["metrics"][metric] for r in runs]) for metric in MAIN_METRICS[kind]}}
    if len(first) > 1:
        summary["learning_rate_choice"] = {f"{lr:g}": first[lr]["dev"][main_metric] for lr in learning_rates}
    if "best_epoch" in runs[0]:
        summary["best_epoch"] = _mean_std([r["best_epoch"] for r in runs])
    for name in runs[0].get("extra", {}):
        summary.setdefault("out_of_domain", {})[name] = {
            metric: _mean_std([r["extra"][name][metric] for r in runs]) for metric in MAIN_METRICS[kind]}
    return summary


def _progress(task: str, label: str, run: dict) -> None:
    scores = ", ".join(f"{m}={run['metrics'][m]:.4f}" for m in MAIN_METRICS[run["kind"]])
    stopped = f", {run['epochs_trained']:g} epochs, best {run['best_epoch']:g}" if "best_epoch" in run else ""
    print(f"[finetune] {task} {label} seed={run['seed']} lr={run['hyperparameters']['learning_rate']:g}: {scores} "
          f"({run['train_seconds']:.1f}s{stopped})", file=sys.stderr, flush=True)


def finetune_suite(
    model_dir: str | Path,
    shared_data: str | Path | None = None,
    tasks=tuple(TASKS),
    seeds=PROTOCOL["seeds"],
    quick: bool = False,
    epochs: float | None = None,
    batch_size: int | None = None,
    learning_rates=None,
    patience: int | None = None,
    from_scratch: bool | None = None,
    max_length: int = DEFAULTS["max_length"],
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
    precision: str = "auto",
    length_grouping: bool = False,
    **load,
) -> dict:
    """The fine-tuning protocol (module docstring) over `tasks`; `quick=True` is the fast setting. Per task: the
    mean ± std over seeds of its main metrics on the test split (`pos` also on PUD, `out_of_domain`), the learning
    rate used, the majority floor and, unless `from_scratch=False` (default: on for the protocol, off for quick),
    the from-scratch twin's scores and `pretraining_gain` (pretrained minus from-scratch means), and the seconds
    it took. `None` settings take the protocol's or quick's value; `length_grouping` as in `finetune`. Progress goes
    to stderr, one line per run, so stdout stays the JSON summary. `load` holds `finetune`'s `revision`,
    `trust_remote_code` and `device`.
    """
    setting = QUICK if quick else PROTOCOL
    epochs = setting["epochs"] if epochs is None else epochs
    batch_size = setting["batch_size"] if batch_size is None else batch_size
    learning_rates = tuple(setting["learning_rates"] if learning_rates is None else learning_rates)
    patience = PROTOCOL["patience"] if patience is None else patience
    from_scratch = not quick if from_scratch is None else from_scratch
    if quick:
        max_train_examples = QUICK["max_examples"] if max_train_examples is None else max_train_examples
        max_eval_examples = QUICK["max_examples"] if max_eval_examples is None else max_eval_examples
    check_protocol(tasks, seeds, epochs, batch_size, learning_rates, patience, quick)
    precision = resolve_precision(precision)
    started = time.perf_counter()
    summary = {"model_dir": str(model_dir), "protocol": "quick" if quick else "full", "seeds": list(seeds),
               "settings": dict(epochs=epochs, batch_size=batch_size, learning_rates=list(learning_rates),
                                patience=None if quick else patience, from_scratch=from_scratch,
                                max_train_examples=max_train_examples, max_eval_examples=max_eval_examples,
                                precision=precision, length_grouping=length_grouping,
                                allocator=process_allocator()),
               "tasks": {}}
    for name in tasks:
        task_started = time.perf_counter()
        train, dev, test, labels, extra = task_splits(name, shared_data, max_train_examples, max_eval_examples)
        kind = task_kind(name)
        common = dict(train=train, eval=test, labels=labels, dev=None if quick else dev, patience=patience,
                      epochs=epochs, batch_size=batch_size, max_length=max_length, extra_eval=extra,
                      precision=precision, length_grouping=length_grouping, **load)
        entry = {"n_train": len(train), "n_dev": 0 if quick else len(dev), "n_eval": len(test), "labels": labels,
                 **runs_with_learning_rate_choice(model_dir, name, seeds, learning_rates, **common),
                 "majority": majority_baseline(kind, train, test)}
        if extra:
            entry["majority_out_of_domain"] = {k: majority_baseline(kind, train, v) for k, v in extra.items()}
        if from_scratch:
            entry["from_scratch"] = runs_with_learning_rate_choice(model_dir, name, seeds, learning_rates,
                                                                   from_scratch=True, **common)
            entry["pretraining_gain"] = {m: entry[m]["mean"] - entry["from_scratch"][m]["mean"]
                                         for m in MAIN_METRICS[kind]}
        entry["seconds"] = round(time.perf_counter() - task_started, 1)
        summary["tasks"][name] = entry
        means = ", ".join(f"{m}={entry[m]['mean']:.4f}±{entry[m]['std']:.4f}" for m in MAIN_METRICS[kind])
        gain = f", gain over from scratch {entry['pretraining_gain']}" if from_scratch else ""
        print(f"[finetune] {name}: {means} over {len(seeds)} seed(s), n_train={entry['n_train']}, "
              f"n_eval={entry['n_eval']}{gain} ({entry['seconds']:.0f}s)", file=sys.stderr, flush=True)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary


def check_protocol(tasks, seeds, epochs, batch_size, learning_rates, patience, quick: bool) -> None:
    """Refuse settings that cannot fine-tune, before any model or data is loaded."""
    if quick and len(learning_rates) > 1:
        raise ValueError("choosing among several learning rates needs a dev split (not with --quick)")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task {unknown[0]!r} (known: {', '.join(TASKS)})")
    if not seeds:
        raise ValueError("--seeds needs at least one seed")
    for name, value in (("epochs", epochs), ("batch-size", batch_size), ("patience", patience),
                        *(("learning-rates", lr) for lr in learning_rates)):
        if value <= 0:
            raise ValueError(f"--{name} must be positive, got {value}")


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `hindi-lm finetune` options."""
    options.add_model_arguments(parser, help="saved model folder or Hub repo id (GPT, BERT, hybrid or GPT-BERT) "
                                             "with its tokenizer")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS), help="tasks to fine-tune on")
    parser.add_argument("--seeds", nargs="+", type=int,
                        help="one fine-tuning run per seed (default: "
                             f"{' '.join(map(str, PROTOCOL['seeds']))}; --linear-probe: one seed, 0, for its floor)")
    parser.add_argument("--quick", action="store_true",
                        help=f"the fast setting: {QUICK['epochs']:g} epoch on at most {QUICK['max_examples']} "
                             f"examples, learning rate {QUICK['learning_rates'][0]:g}, batch {QUICK['batch_size']}, "
                             "no dev split, no from-scratch twin")
    parser.add_argument("--linear-probe", action="store_true",
                        help="instead of fine-tuning, fit a logistic-regression probe on the frozen model's states "
                             "(full splits, C chosen on dev, one forward pass per sentence; training/probe.py), with "
                             "the same probe on a random initialisation as the floor")
    parser.add_argument("--epochs", type=float,
                        help=f"most epochs over the training split (default: {PROTOCOL['epochs']:g}; "
                             f"--quick {QUICK['epochs']:g})")
    parser.add_argument("--patience", type=int,
                        help=f"epochs without a better dev score before stopping (default: {PROTOCOL['patience']})")
    parser.add_argument("--learning-rates", "--learning-rate", type=float, nargs="+", dest="learning_rates",
                        help="peak learning rates; with several, the best on dev (first seed) is used (default: "
                             f"{' '.join(f'{lr:g}' for lr in PROTOCOL['learning_rates'])}; "
                             f"--quick {QUICK['learning_rates'][0]:g})")
    parser.add_argument("--batch-size", type=int,
                        help=f"examples per step (default: {PROTOCOL['batch_size']}; --quick {QUICK['batch_size']})")
    parser.add_argument("--from-scratch", action=argparse.BooleanOptionalAction, default=None,
                        help="also fine-tune a randomly initialised twin, the floor that shows what pretraining adds "
                             "(default: on; off with --quick)")
    parser.add_argument("--length-grouping", action=argparse.BooleanOptionalAction, default=False,
                        help="draw each training batch from examples of similar length: 1.5-1.95x faster per epoch, "
                             "POS unchanged, IL-NER F1 1.4-2.5 points lower (default: off, uniformly random batches)")
    parser.add_argument("--max-length", type=int, default=DEFAULTS["max_length"],
                        help="tokens per example, capped at the model's positions")
    parser.add_argument("--max-train-examples", type=int,
                        help=f"first N training examples (default: all; --quick {QUICK['max_examples']})")
    parser.add_argument("--max-eval-examples", type=int,
                        help=f"first N dev and test examples (default: all; --quick {QUICK['max_examples']})")
    options.add_precision_argument(parser)
    options.add_shared_data_argument(parser)
    # glibc-keep is left out: measured for pretraining's fixed-size blocks only, and its heap grows without a trim
    options.add_allocator_argument(parser, choices=FINETUNE_ALLOCATORS)
    parser.add_argument("--output", type=Path, help="JSON file to write the summary to (default: print only)")


def run(args: argparse.Namespace) -> int:
    """Run `hindi-lm finetune` from parsed arguments; prints the summary as JSON (and writes --output)."""
    if args.linear_probe:
        if args.quick:
            raise options.UserError("--linear-probe and --quick are two different protocols; give one")
        # A probe has no gradient steps and no seed noise: refuse what only fine-tuning reads rather than ignore it.
        given = [flag for flag, value in (("--epochs", args.epochs), ("--patience", args.patience),
                                          ("--learning-rates", args.learning_rates), ("--batch-size", args.batch_size))
                 if value is not None]
        if args.seeds and len(args.seeds) > 1:
            given.append("--seeds (more than one)")
        if given:
            raise options.UserError(f"--linear-probe fits a logistic regression, not fine-tuning: "
                                    f"{', '.join(given)} would be ignored; drop them (one --seeds value sets the "
                                    "from-scratch initialisation)")
        summary = probe_suite(options.resolve_model(args.model), shared_data=args.shared_data, tasks=tuple(args.tasks),
                              from_scratch=args.from_scratch is not False, seed=(args.seeds or [0])[0],
                              max_length=args.max_length, max_train_examples=args.max_train_examples,
                              max_eval_examples=args.max_eval_examples, precision=args.precision,
                              revision=args.revision, trust_remote_code=args.trust_remote_code)
    else:
        summary = finetune_suite(
            options.resolve_model(args.model), shared_data=args.shared_data, tasks=tuple(args.tasks),
            seeds=tuple(args.seeds or PROTOCOL["seeds"]), quick=args.quick, epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rates=args.learning_rates, patience=args.patience, from_scratch=args.from_scratch,
            max_length=args.max_length, max_train_examples=args.max_train_examples,
            max_eval_examples=args.max_eval_examples, precision=args.precision,
            length_grouping=args.length_grouping,
            revision=args.revision, trust_remote_code=args.trust_remote_code, device=args.device,
        )
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def main(argv=None) -> int:
    """`python -m training.finetune`: the same as `hindi-lm finetune`."""
    return options.standalone_main("finetune", sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
