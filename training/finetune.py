"""Fine-tune a saved GPT, BERT or hybrid on Hindi POS tagging, NER and text classification with `transformers.Trainer`.

    hindi-lm finetune --model runs/bert --tasks pos ner --seeds 0 1 2 --output results.json
    python -m training.finetune --model runs/hybrid --tasks bbc_topic --max-train-examples 500

Tasks (files under the shared data folder, `$HINDI_MODELS_SHARED_DATA` or ../shared/data; train → eval):

* `pos`: UD Hindi-HDTB 2015, UPOS (UD v1 tags, `CONJ` not `CCONJ`), train on `hi-ud-dev.conllu`, evaluate on
  `hi-ud-test.public.conllu`; metric: accuracy over words.
* `ner`: IL-NER Hindi, BIO tags over `NEP NEL NEO NEN NETI NEAR NED NEU`, train → test; metric: entity-level micro
  F1 with seqeval's default (IOB2, non-strict) span rules.
* `bbc_topic`, `iitp_sentiment`: MIDAS Hindi classification, `text` → `label`, train → test; metrics: accuracy
  and macro-F1.

Word-level tags label the first sub-token of each word (others -100, as in `run_ner.py`); a word cut off by
`max_length` counts as wrong (POS) or as `O` (NER), so truncation never flatters a score.
GPT uses the stock `GPT2For{Token,Sequence}Classification` heads (the sequence head reads the last non-pad token,
`[SEP]`), BERT the stock Bert heads, the hybrid and GPT-BERT their bidirectional heads (served by the installed
package: no remote code runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from datasets import Dataset
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics import precision_score as seqeval_precision
from seqeval.metrics import recall_score as seqeval_recall
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score as sklearn_f1
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_callback import PrinterCallback
from transformers.utils import logging as hf_logging

from training import options
from training.tasks import TASKS, load_task

IGNORE_INDEX = -100
logger = hf_logging.get_logger("hindi_models.finetune")

MAIN_METRICS = {"pos": ("accuracy",), "ner": ("f1", "precision", "recall"), "classification": ("accuracy", "macro_f1")}
DEFAULTS = dict(epochs=3.0, batch_size=16, learning_rate=5e-5, max_length=256)


# --------------------------------------------------------------------------- metrics


def entity_f1(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Entity-level micro precision / recall / F1 over sentences, computed by `seqeval` (default mode: IOB2 spans,
    non-strict, as conlleval: an `I-` after `O` or after another type opens an entity)."""
    scores = {name: float(score(gold, predicted, zero_division=0))
              for name, score in (("precision", seqeval_precision), ("recall", seqeval_recall), ("f1", seqeval_f1))}
    return {**scores, "n_gold_entities": sum(len(get_entities(tags)) for tags in gold)}


def accuracy_and_macro_f1(gold, predicted) -> dict:
    """Accuracy and macro-F1 (unweighted mean over the labels in gold ∪ predicted), computed by scikit-learn."""
    if len(gold) == 0:
        return {"accuracy": 0.0, "macro_f1": 0.0}
    return {"accuracy": float(accuracy_score(gold, predicted)),
            "macro_f1": float(sklearn_f1(gold, predicted, average="macro", zero_division=0))}


# --------------------------------------------------------------------------- encoding


def encode_tagged(tokenizer, examples: list[dict], label2id: dict, max_length: int) -> tuple[Dataset, list]:
    """Tokenize word lists; the first sub-token of each word gets its tag id, the rest -100.

    Also returns, per example, the indices of the words that kept a labelled sub-token (in order), so predictions
    can be mapped back to words after truncation.
    """
    encoded = tokenizer([e["tokens"] for e in examples], is_split_into_words=True, truncation=True,
                        max_length=max_length, return_token_type_ids=False)
    all_labels, all_words = [], []
    for row, example in enumerate(examples):
        labels, words, previous = [], [], None
        for word in encoded.word_ids(row):
            if word is None or word == previous:
                labels.append(IGNORE_INDEX)
            else:
                labels.append(label2id[example["tags"][word]])
                words.append(word)
            previous = word
        all_labels.append(labels)
        all_words.append(words)
    data = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "labels": all_labels}
    return Dataset.from_dict(data), all_words


def encode_texts(tokenizer, examples: list[dict], label2id: dict, max_length: int) -> Dataset:
    """Tokenize texts (`[CLS] text [SEP]`, truncated) with their label ids."""
    encoded = tokenizer([e["text"] for e in examples], truncation=True, max_length=max_length,
                        return_token_type_ids=False)
    data = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
            "labels": [label2id[e["label"]] for e in examples]}
    return Dataset.from_dict(data)


def word_predictions(predictions: np.ndarray, labels: np.ndarray, kept_words: list, examples: list[dict],
                     id2label: dict, missing: str | None) -> list[list[str | None]]:
    """Per-word predicted tags from token-level ids; words lost to truncation get `missing`."""
    out = []
    for row, example in enumerate(examples):
        tags = [missing] * len(example["tokens"])
        ids = predictions[row][labels[row] != IGNORE_INDEX]
        for word, label_id in zip(kept_words[row], ids, strict=True):
            tags[word] = id2label[int(label_id)]
        out.append(tags)
    return out


def _argmax(logits, labels):
    """Keep only predicted ids during evaluation (less memory than full logits)."""
    return logits.argmax(dim=-1)


def load_with_new_head(auto_class, model_dir, **kwargs):
    """`auto_class.from_pretrained` for a task head that is new by design: transformers' table of MISSING head and
    UNEXPECTED pretraining-head weights is not printed; one line still warns if weights of the body are missing."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model, info = auto_class.from_pretrained(str(model_dir), output_loading_info=True, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    # The new head is the modules the checkpoint has no weight for at all (`classifier`, `score`); a key missing
    # under a module that did get weights (`transformer.`, `encoder.`) is a gap in the pretrained body.
    loaded = set(model.state_dict()) - set(info["missing_keys"])
    modules_with_weights = {key.split(".", 1)[0] for key in loaded}
    missing_body = sorted(key for key in info["missing_keys"] if key.split(".", 1)[0] in modules_with_weights)
    if missing_body:
        logger.warning("%s: %d weights of the pretrained body were not in the checkpoint and are newly initialised: %s",
                       model_dir, len(missing_body), ", ".join(missing_body[:5]))
    return model


def task_kind(task: str) -> str:
    """`pos`, `ner` or `classification` for a kind or a suite task name."""
    if task in MAIN_METRICS:
        return task
    if task in TASKS:
        return TASKS[task][0]
    raise ValueError(f"unknown task {task!r} (kinds: {', '.join(MAIN_METRICS)}; suite tasks: {', '.join(TASKS)})")


def encode_task(task: str, tokenizer, train: list[dict], eval: list[dict], labels: list[str], max_length: int):
    """(train set, eval set, kept words per eval example or None) of a task; tags outside `labels` are refused."""
    label2id = {label: i for i, label in enumerate(labels)}
    if task_kind(task) == "classification":
        train_set, eval_set = (encode_texts(tokenizer, split, label2id, max_length) for split in (train, eval))
        return train_set, eval_set, None
    unknown = sorted({t for split in (train, eval) for e in split for t in e["tags"]} - set(label2id))
    if unknown:
        raise ValueError(f"{task}: tags {', '.join(unknown)} are not among the labels ({', '.join(labels)})")
    train_set, _ = encode_tagged(tokenizer, train, label2id, max_length)
    eval_set, kept_words = encode_tagged(tokenizer, eval, label2id, max_length)
    return train_set, eval_set, kept_words


def make_compute_metrics(kind: str, eval_examples: list[dict], kept_words, id2label: dict):
    """The `compute_metrics` of a task kind: word accuracy (pos), entity F1 (ner), accuracy + macro-F1."""

    def compute_metrics(prediction) -> dict:
        predictions, labels = prediction.predictions, prediction.label_ids
        if kind == "classification":
            return accuracy_and_macro_f1(labels, predictions)
        gold = [e["tags"] for e in eval_examples]
        predicted = word_predictions(predictions, labels, kept_words, eval_examples, id2label,
                                     missing="O" if kind == "ner" else None)
        if kind == "ner":
            return entity_f1(gold, predicted)
        pairs = [(g, p) for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps)]
        return {"accuracy": sum(g == p for g, p in pairs) / len(pairs), "n_words": len(pairs),
                "n_words_truncated": sum(p is None for _, p in pairs)}

    return compute_metrics


# --------------------------------------------------------------------------- fine-tuning


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
) -> dict:
    """Fine-tune `model_dir` on one task and evaluate at the end; returns a JSON-serialisable dict.

    `task` is a kind (`pos`, `ner`, `classification`) or a suite task name; `train` / `eval` are loader outputs;
    `labels` the label names (index = class id). `output_dir`, when given, receives the fine-tuned model,
    tokenizer and `finetune_results.json`. `evaluate_before` also scores the untouched model (key `before`).
    `revision` / `trust_remote_code` are `from_pretrained`'s; `device="cpu"` keeps Trainer off a GPU.
    """
    kind = task_kind(task)
    train, eval = train[:max_train_examples], eval[:max_eval_examples]
    if not train or not eval:
        raise ValueError(f"{task}: empty train ({len(train)}) or eval ({len(eval)}) split")
    label2id = {label: i for i, label in enumerate(labels)}
    id2label = dict(enumerate(labels))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), revision=revision)
    if not tokenizer.is_fast and kind != "classification":
        raise ValueError(f"{model_dir}: word-level tagging needs a fast tokenizer (word_ids)")

    config = AutoConfig.from_pretrained(str(model_dir), revision=revision, trust_remote_code=trust_remote_code)
    max_length = min(max_length, getattr(config, "max_position_embeddings", None) or max_length)  # e.g. tiny: 128
    train_set, eval_set, kept_words = encode_task(task, tokenizer, train, eval, labels, max_length)
    if kind == "classification":
        collator, auto_class = DataCollatorWithPadding(tokenizer), AutoModelForSequenceClassification
    else:
        collator, auto_class = DataCollatorForTokenClassification(tokenizer), AutoModelForTokenClassification

    set_seed(seed)  # seeds the new head's initialisation
    model = load_with_new_head(auto_class, model_dir, num_labels=len(labels), id2label=id2label, label2id=label2id,
                               revision=revision, trust_remote_code=trust_remote_code)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id  # GPT-2 sequence classification needs it

    with tempfile.TemporaryDirectory(prefix="finetune-") as scratch:
        args = TrainingArguments(
            output_dir=str(output_dir or scratch), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=2 * batch_size, learning_rate=learning_rate, weight_decay=0.01,
            warmup_steps=0.1, lr_scheduler_type="linear", seed=seed, data_seed=seed, eval_strategy="no",
            save_strategy="no", logging_strategy="no", report_to=[], disable_tqdm=True,
            use_cpu=device == "cpu",
        )
        trainer = Trainer(
            model=model, args=args, data_collator=collator, train_dataset=train_set, eval_dataset=eval_set,
            processing_class=tokenizer, compute_metrics=make_compute_metrics(kind, eval, kept_words, id2label),
            preprocess_logits_for_metrics=_argmax,
        )
        trainer.remove_callback(PrinterCallback)  # keep stdout for the summary; metrics come back in the result
        result = {"task": task, "kind": kind, "model_dir": str(model_dir), "seed": seed, "n_train": len(train),
                  "n_eval": len(eval), "labels": list(labels),
                  "hyperparameters": dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                          max_length=max_length)}
        if evaluate_before:
            result["before"] = _strip(trainer.evaluate())
        start = time.perf_counter()
        train_output = trainer.train()
        result["train_seconds"] = round(time.perf_counter() - start, 2)
        result["train_loss"] = float(train_output.training_loss)
        result["metrics"] = _strip(trainer.evaluate())
        if output_dir is not None:
            trainer.save_model(str(output_dir))
            Path(output_dir, "finetune_results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _strip(metrics: dict) -> dict:
    """Trainer's `eval_*` metrics without the prefix, as plain floats / ints."""
    return {key.removeprefix("eval_"): (int(v) if float(v).is_integer() and "n_" in key else float(v))
            for key, v in metrics.items()}


def finetune_suite(
    model_dir: str | Path,
    shared_data: str | Path | None = None,
    tasks=("pos", "ner", "bbc_topic", "iitp_sentiment"),
    seeds=(0, 1, 2),
    epochs: float = DEFAULTS["epochs"],
    batch_size: int = DEFAULTS["batch_size"],
    learning_rate: float = DEFAULTS["learning_rate"],
    max_length: int = DEFAULTS["max_length"],
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
    **load,
) -> dict:
    """Fine-tune once per (task, seed); per task the mean and std over seeds of its main metrics, n_train / n_eval.

    Progress goes to stderr, one line per run and per task, so stdout stays the JSON summary. `load` holds
    `finetune`'s `revision`, `trust_remote_code` and `device`.
    """
    summary = {"model_dir": str(model_dir), "seeds": list(seeds), "tasks": {}}
    for name in tasks:
        train, evaluation, labels = load_task(name, shared_data)
        runs = []
        for seed in seeds:
            start = time.perf_counter()
            run_result = finetune(model_dir, name, train, evaluation, labels, seed=seed, epochs=epochs,
                                  batch_size=batch_size, learning_rate=learning_rate, max_length=max_length,
                                  max_train_examples=max_train_examples, max_eval_examples=max_eval_examples, **load)
            runs.append(run_result)
            scores = ", ".join(f"{m}={run_result['metrics'][m]:.4f}" for m in MAIN_METRICS[task_kind(name)])
            seconds = time.perf_counter() - start
            print(f"[finetune] {name} seed={seed}: {scores} ({seconds:.1f}s)", file=sys.stderr, flush=True)
        entry = {"n_train": runs[0]["n_train"], "n_eval": runs[0]["n_eval"], "labels": labels,
                 "per_seed": [{"seed": r["seed"], **r["metrics"]} for r in runs]}
        for metric in MAIN_METRICS[task_kind(name)]:
            values = [r["metrics"][metric] for r in runs]
            entry[metric] = {"mean": statistics.fmean(values),
                             "std": statistics.stdev(values) if len(values) > 1 else 0.0}
        summary["tasks"][name] = entry
        means = ", ".join(f"{m}={entry[m]['mean']:.4f}±{entry[m]['std']:.4f}" for m in MAIN_METRICS[task_kind(name)])
        print(f"[finetune] {name}: {means} over {len(seeds)} seed(s), n_train={entry['n_train']}, "
              f"n_eval={entry['n_eval']}", file=sys.stderr, flush=True)
    return summary


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `hindi-lm finetune` options."""
    options.add_model_arguments(parser, help="saved model folder or Hub repo id (GPT, BERT or hybrid) with its "
                                             "tokenizer")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS), help="tasks to fine-tune on")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="one fine-tuning run per seed")
    parser.add_argument("--epochs", type=float, default=DEFAULTS["epochs"], help="epochs over the training split")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="examples per step")
    parser.add_argument("--learning-rate", type=float, default=DEFAULTS["learning_rate"], help="peak learning rate")
    parser.add_argument("--max-length", type=int, default=DEFAULTS["max_length"],
                        help="tokens per example, capped at the model's positions")
    parser.add_argument("--max-train-examples", type=int, help="first N training examples (default: all)")
    parser.add_argument("--max-eval-examples", type=int, help="first N evaluation examples (default: all)")
    options.add_shared_data_argument(parser)
    parser.add_argument("--output", type=Path, help="JSON file to write the summary to (default: print only)")


def run(args: argparse.Namespace) -> int:
    """Run `hindi-lm finetune` from parsed arguments; prints the summary as JSON (and writes --output)."""
    summary = finetune_suite(
        options.resolve_model(args.model), shared_data=args.shared_data, tasks=tuple(args.tasks),
        seeds=tuple(args.seeds),
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate, max_length=args.max_length,
        max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples,
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
