"""Linear probes: what a frozen pretrained model's states already encode, scored on the fine-tuning tasks.

    hindi-lm finetune --model runs/gpt --linear-probe --tasks pos ner

The model is run once over each split with its weights frozen; the states its task head would read (the input of
the token-classification `classifier`: GPT's last layer, BERT's, the hybrid's encoder, GPT-BERT's bidirectional
mode) are kept per word for POS and NER (the sub-token fine-tuning labels: the first, GPT's last) and averaged over
the text's tokens for classification. A multinomial logistic regression (scikit-learn, standardised features) is
fitted on the train split (a seeded sample of `MAX_FIT_ITEMS` words where it has more), its inverse
regularisation `C` chosen on the dev split, and scored on the test split with the fine-tuning metrics. The same
probe on the randomly initialised architecture is the floor (`from_scratch`), so the gain of pretraining is a
number. No gradient reaches the model: a probe costs a forward pass per sentence and the fits (seconds for POS,
minutes for IL-NER on 2 cores), and it has no seed noise (the lbfgs fit is deterministic).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from transformers import AutoModelForTokenClassification, DataCollatorWithPadding

from training.pretrain import resolve_precision
from training.task_encoding import (
    IGNORE_INDEX,
    MAIN_METRICS,
    accuracy_and_macro_f1,
    encode_task,
    entity_f1,
    load_task_model,
    majority_baseline,
    tag_accuracy,
    task_kind,
    task_splits,
    word_predictions,
    word_subtoken,
)

PROBE_C = (0.1, 1.0, 10.0)  # inverse L2 strength of the logistic regression, chosen on dev
# Words (or texts) the probe is fitted on, at most: a seeded sample of a larger train split. IL-NER's 10,712 train
# sentences give ~250k words, whose three fits took over 15 min on 2 cores; a linear probe of 256 features is
# settled long before 50k (POS trains on ~30k words).
MAX_FIT_ITEMS = 50_000


@torch.no_grad()
def head_inputs(model, tokenizer, dataset, batch_size: int = 64, precision: str = "fp32") -> list[torch.Tensor]:
    """Per example, the states the model's `classifier` reads, one row per real (unpadded) token, in order.
    Examples are batched by length (little padding); `precision` bf16 or fp16 runs the forward passes under autocast."""
    captured = []
    hook = model.classifier.register_forward_hook(lambda module, args, output: captured.append(args[0]))
    model.eval()
    collator = DataCollatorWithPadding(tokenizer)
    rows = dataset.remove_columns("labels")
    order = np.argsort([len(ids) for ids in rows["input_ids"]], kind="stable")
    states = [None] * len(rows)
    autocast = torch.autocast(model.device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16,
                              enabled=precision in ("bf16", "fp16"))
    try:
        for start in range(0, len(order), batch_size):
            indices = order[start:start + batch_size]
            batch = collator([rows[int(i)] for i in indices])
            with autocast:
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            hidden = captured.pop().float()
            for i, row, mask in zip(indices, hidden, batch["attention_mask"]):
                states[i] = row[mask.bool()]
    finally:
        hook.remove()
    return states


def features(kind: str, states: list[torch.Tensor], dataset) -> tuple[np.ndarray, np.ndarray]:
    """(X, y): per labelled word (its labelled sub-token) for tagging, the mean over tokens for classification."""
    if kind == "classification":
        return torch.stack([s.mean(0) for s in states]).numpy(), np.asarray(dataset["labels"])
    rows = [(s[torch.tensor(labels) != IGNORE_INDEX], [l for l in labels if l != IGNORE_INDEX])
            for s, labels in zip(states, dataset["labels"])]
    return torch.cat([x for x, _ in rows]).numpy(), np.asarray([l for _, ls in rows for l in ls])


def score(kind: str, predicted: np.ndarray, dataset, kept_words, examples: list[dict], labels: list[str]) -> dict:
    """The fine-tuning metric of `kind` for probe predictions (one id per labelled word, or per text)."""
    id2label = dict(enumerate(labels))
    if kind == "classification":
        return accuracy_and_macro_f1([e["label"] for e in examples], [id2label[int(p)] for p in predicted])
    padded_labels = [np.asarray(l) for l in dataset["labels"]]
    padded_predictions, start = [], 0
    for row in padded_labels:  # predictions back in the token layout `word_predictions` reads
        ids = np.zeros_like(row)
        n = int((row != IGNORE_INDEX).sum())
        ids[row != IGNORE_INDEX] = predicted[start:start + n]
        padded_predictions.append(ids)
        start += n
    words = word_predictions(padded_predictions, padded_labels, kept_words, examples, id2label,
                             missing="O" if kind == "ner" else None)
    gold = [e["tags"] for e in examples]
    return entity_f1(gold, words) if kind == "ner" else tag_accuracy(gold, words)


def linear_probe(model_dir, task: str, train: list[dict], dev: list[dict], test: list[dict], labels: list[str],
                 from_scratch: bool = False, extra_eval: dict[str, list[dict]] | None = None, seed: int = 0,
                 max_length: int = 256, batch_size: int = 64, precision: str = "fp32", revision: str | None = None,
                 trust_remote_code: bool = False) -> dict:
    """Fit a logistic-regression probe on `model_dir`'s frozen states for one task (C chosen on `dev`) and score it
    on `test` and each `extra_eval` split; `from_scratch` probes the randomly initialised architecture (`seed`)."""
    kind = task_kind(task)
    if not train or not dev or not test:
        raise ValueError(f"{task}: a probe needs train, dev and test examples "
                         f"(got {len(train)}, {len(dev)}, {len(test)})")
    started = time.perf_counter()
    tokenizer, model, max_length = load_task_model(model_dir, AutoModelForTokenClassification, labels, max_length,
                                                   seed, from_scratch, revision, trust_remote_code)
    splits = {"train": train, "dev": dev, "test": test, **(extra_eval or {})}
    encoded = encode_task(task, tokenizer, splits, labels, max_length, word_subtoken(model.config))
    xy = {name: features(kind, head_inputs(model, tokenizer, data, batch_size, precision), data)
          for name, (data, _) in encoded.items()}
    forward_seconds = time.perf_counter() - started
    n_train_items = len(xy["train"][1])
    if n_train_items > MAX_FIT_ITEMS:
        keep = np.sort(np.random.default_rng(seed).choice(n_train_items, MAX_FIT_ITEMS, replace=False))
        xy["train"] = (xy["train"][0][keep], xy["train"][1][keep])
    main_metric = MAIN_METRICS[kind][0]
    fits, dev_scores = {}, {}
    for c in PROBE_C:
        # One BLAS/OpenMP thread: after torch's forward passes, its spinning OpenMP threads starve scikit-learn's,
        # and a fit took 12 s instead of 0.06 s (2 cores, 2,000 words).
        # At most 300 lbfgs iterations (a large C may stop short of convergence: dev decides whether it is used).
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits[c] = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=300)).fit(*xy["train"])
        dev_scores[c] = score(kind, fits[c].predict(xy["dev"][0]), encoded["dev"][0], encoded["dev"][1],
                              dev, labels)[main_metric]
    chosen = max(PROBE_C, key=lambda c: dev_scores[c])

    def scores_on(name: str) -> dict:
        data, kept = encoded[name]
        return score(kind, fits[chosen].predict(xy[name][0]), data, kept, splits[name], labels)

    result = {"task": task, "kind": kind, "from_scratch": from_scratch, "C": chosen,
              "C_choice": {f"{c:g}": dev_scores[c] for c in PROBE_C}, "n_features": int(xy["train"][0].shape[1]),
              "n_train_items": n_train_items, "n_fit_items": int(len(xy["train"][1])), "metrics": scores_on("test"),
              "extra": {name: scores_on(name) for name in (extra_eval or {})},
              "forward_seconds": round(forward_seconds, 1),
              "seconds": round(time.perf_counter() - started, 1)}
    return result


def _as_protocol(metrics: dict, kind: str) -> dict:
    return {m: {"mean": metrics[m], "std": 0.0} for m in MAIN_METRICS[kind]}


def probe_suite(model_dir, shared_data=None, tasks=("pos",), from_scratch: bool = True, seed: int = 0,
                max_length: int = 256, max_train_examples: int | None = None, max_eval_examples: int | None = None,
                precision: str = "auto", revision: str | None = None, trust_remote_code: bool = False) -> dict:
    """Probe `model_dir` on the suite's tasks (the full train/dev/test splits, or their first N examples), with the
    majority floor and, unless `from_scratch=False`, the random-initialisation floor and the pretraining gain."""
    started = time.perf_counter()
    precision = resolve_precision(precision)
    summary = {"model_dir": str(model_dir), "protocol": "linear probe", "settings": {"precision": precision,
        "C": list(PROBE_C), "from_scratch": from_scratch, "seed": seed, "max_length": max_length,
        "max_train_examples": max_train_examples, "max_eval_examples": max_eval_examples}, "tasks": {}}
    for name in tasks:
        task_started = time.perf_counter()
        train, dev, test, labels, extra = task_splits(name, shared_data, max_train_examples, max_eval_examples)
        kind = task_kind(name)
        common = dict(train=train, dev=dev, test=test, labels=labels, extra_eval=extra, seed=seed,
                      max_length=max_length, precision=precision, revision=revision,
                      trust_remote_code=trust_remote_code)
        probe = linear_probe(model_dir, name, **common)
        # The protocol's layout (mean ± std per metric), so reports read probes and fine-tuning alike; a probe
        # has no seed noise, hence std 0.
        entry = {"n_train": len(train), "n_dev": len(dev), "n_eval": len(test), "C": probe["C"],
                 "C_choice": probe["C_choice"], "n_words": probe["metrics"].get("n_words"),
                 **_as_protocol(probe["metrics"], kind), "majority": majority_baseline(kind, train, test)}
        if extra:
            entry["out_of_domain"] = {k: _as_protocol(v, kind) for k, v in probe["extra"].items()}
            entry["majority_out_of_domain"] = {k: majority_baseline(kind, train, v) for k, v in extra.items()}
        if from_scratch:
            floor = linear_probe(model_dir, name, from_scratch=True, **common)
            entry["from_scratch"] = {**_as_protocol(floor["metrics"], kind), "C": floor["C"]}
            if extra:
                entry["from_scratch"]["out_of_domain"] = {k: _as_protocol(v, kind) for k, v in floor["extra"].items()}
            entry["pretraining_gain"] = {m: probe["metrics"][m] - floor["metrics"][m] for m in MAIN_METRICS[kind]}
        entry["seconds"] = round(time.perf_counter() - task_started, 1)
        summary["tasks"][name] = entry
        gain = f", gain over from scratch {entry['pretraining_gain']}" if from_scratch else ""
        main = ", ".join(f"{m}={entry[m]['mean']:.4f}" for m in MAIN_METRICS[kind])
        print(f"[probe] {name}: {main} (C={probe['C']:g}){gain} ({entry['seconds']:.0f}s)", file=sys.stderr,
              flush=True)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary
