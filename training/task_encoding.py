"""What fine-tuning and linear probes share: the task metrics and floors, word-level encoding (which sub-token
carries a word's tag), mapping predictions back to words, and loading a model with a new task head."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
from datasets import Dataset
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics import precision_score as seqeval_precision
from seqeval.metrics import recall_score as seqeval_recall
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score as sklearn_f1
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer, set_seed
from transformers.utils import logging as hf_logging

from hindi_models.architectures import architecture_of
from training.tasks import TASKS, load_out_of_domain_tests, load_task

IGNORE_INDEX = -100
logger = hf_logging.get_logger("hindi_models.finetune")

# The first metric of each kind picks the epoch (early stopping), the learning rate and the probe's C. For the
# classification tasks that is macro-F1, the score the targets use: BBC topic is imbalanced (the majority
# class is 40.6% of its test split), and accuracy can rise while the rare topics are still never predicted.
MAIN_METRICS = {"pos": ("accuracy",), "ner": ("f1", "precision", "recall"), "classification": ("macro_f1", "accuracy")}


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


def tag_accuracy(gold: list[list[str]], predicted: list[list[str | None]]) -> dict:
    """Accuracy over words; a word without a prediction (`None`, cut off by truncation) counts as wrong."""
    pairs = [(g, p) for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True)]
    return {"accuracy": sum(g == p for g, p in pairs) / len(pairs), "n_words": len(pairs),
            "n_words_truncated": sum(p is None for _, p in pairs)}


def majority_baseline(kind: str, train: list[dict], test: list[dict]) -> dict:
    """The frequency floor on `test`, scored like the models: the train split's most frequent label
    (classification), each word's most frequent train tag and the most frequent tag for unseen words (POS), all `O`
    (NER, whose entity F1 is then 0)."""
    if kind == "classification":
        top = Counter(e["label"] for e in train).most_common(1)[0][0]
        return accuracy_and_macro_f1([e["label"] for e in test], [top] * len(test))
    gold = [e["tags"] for e in test]
    if kind == "ner":
        return entity_f1(gold, [["O"] * len(tags) for tags in gold])
    per_word, overall = defaultdict(Counter), Counter()
    for example in train:
        for word, tag in zip(example["tokens"], example["tags"]):
            per_word[word][tag] += 1
            overall[tag] += 1
    fallback = overall.most_common(1)[0][0]
    predicted = [[per_word[w].most_common(1)[0][0] if w in per_word else fallback for w in e["tokens"]]
                 for e in test]
    return tag_accuracy(gold, predicted)


# --------------------------------------------------------------------------- encoding


def encode_tagged(tokenizer, examples: list[dict], label2id: dict, max_length: int,
                  subtoken: str = "first") -> tuple[Dataset, list]:
    """Tokenize word lists; one sub-token of each word (`subtoken`: the first, or the last) gets its tag id, the
    rest -100.

    Also returns, per example, the indices of the words that kept a labelled sub-token (in order), so predictions
    can be mapped back to words after truncation (a word cut mid-way is labelled at its last kept sub-token).
    """
    if subtoken not in ("first", "last"):
        raise ValueError(f"subtoken must be 'first' or 'last', got {subtoken!r}")
    encoded = tokenizer([e["tokens"] for e in examples], is_split_into_words=True, truncation=True,
                        max_length=max_length, return_token_type_ids=False)
    all_labels, all_words = [], []
    for row, example in enumerate(examples):
        word_ids = encoded.word_ids(row)
        # A word's labelled position: where the word id differs from the one before (first) or after (last).
        neighbours = [None, *word_ids[:-1]] if subtoken == "first" else [*word_ids[1:], None]
        labels, words = [], []
        for word, neighbour in zip(word_ids, neighbours):
            if word is None or word == neighbour:
                labels.append(IGNORE_INDEX)
            else:
                labels.append(label2id[example["tags"][word]])
                words.append(word)
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


def argmax_predictions(logits, labels):
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


def load_task_model(model_dir, auto_class, labels: list[str], max_length: int, seed: int, from_scratch: bool = False,
                    revision: str | None = None, trust_remote_code: bool = False):
    """The tokenizer and `auto_class` model of `model_dir` with a new head over `labels` (from scratch: the same
    config, randomly initialised, seeded by `seed`), and `max_length` capped at the model's positions."""
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), revision=revision)
    if not tokenizer.is_fast and auto_class is AutoModelForTokenClassification:
        raise ValueError(f"{model_dir}: word-level tagging needs a fast tokenizer (word_ids)")
    config = AutoConfig.from_pretrained(str(model_dir), revision=revision, trust_remote_code=trust_remote_code,
                                        num_labels=len(labels), id2label=dict(enumerate(labels)),
                                        label2id={label: i for i, label in enumerate(labels)})
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id  # GPT-2 sequence classification needs it
    max_length = min(max_length, getattr(config, "max_position_embeddings", None) or max_length)  # e.g. tiny: 128
    set_seed(seed)  # seeds the new head's (or, from scratch, the whole model's) initialisation
    if from_scratch:
        model = auto_class.from_config(config, trust_remote_code=trust_remote_code)
    else:
        model = load_with_new_head(auto_class, model_dir, config=config, revision=revision,
                                   trust_remote_code=trust_remote_code)
    return tokenizer, model, max_length


def task_kind(task: str) -> str:
    """`pos`, `ner` or `classification` for a kind or a suite task name."""
    if task in MAIN_METRICS:
        return task
    if task in TASKS:
        return TASKS[task][0]
    raise ValueError(f"unknown task {task!r} (kinds: {', '.join(MAIN_METRICS)}; suite tasks: {', '.join(TASKS)})")


def word_subtoken(config) -> str:
    """Which sub-token of a word carries its tag: the first (as `run_ner.py`) for bidirectional models, the last for
    causal-only ones (GPT), whose first sub-token has not yet seen the rest of the word. Measured with the POS
    linear probe on a `mini` GPT after 1M words: 78.0% (first) vs 81.1% (last)."""
    found = architecture_of(config)
    return "last" if found and found[0].causal_only else "first"


def encode_task(task: str, tokenizer, splits: dict[str, list[dict]], labels: list[str], max_length: int,
                subtoken: str = "first") -> dict:
    """Each named split encoded as (dataset, kept words per example or None); tags outside `labels` are refused;
    `subtoken` as in `encode_tagged`."""
    label2id = {label: i for i, label in enumerate(labels)}
    if task_kind(task) == "classification":
        return {name: (encode_texts(tokenizer, split, label2id, max_length), None) for name, split in splits.items()}
    unknown = sorted({t for split in splits.values() for e in split for t in e["tags"]} - set(label2id))
    if unknown:
        raise ValueError(f"{task}: tags {', '.join(unknown)} are not among the labels ({', '.join(labels)})")
    return {name: encode_tagged(tokenizer, split, label2id, max_length, subtoken) for name, split in splits.items()}


def make_compute_metrics(kind: str, eval_examples: list[dict], kept_words, id2label: dict):
    """The `compute_metrics` of a task kind: word accuracy (pos), entity F1 (ner), accuracy + macro-F1."""

    def compute_metrics(prediction) -> dict:
        predictions, labels = prediction.predictions, prediction.label_ids
        if kind == "classification":
            return accuracy_and_macro_f1(labels, predictions)
        gold = [e["tags"] for e in eval_examples]
        predicted = word_predictions(predictions, labels, kept_words, eval_examples, id2label,
                                     missing="O" if kind == "ner" else None)
        return entity_f1(gold, predicted) if kind == "ner" else tag_accuracy(gold, predicted)

    return compute_metrics



def task_splits(task: str, shared_data=None, max_train_examples: int | None = None,
                max_eval_examples: int | None = None):
    """(train, dev, test, labels, out-of-domain tests) of a suite task, each split cut to its first N examples."""
    train, dev, test, labels = load_task(task, shared_data)
    extra = {k: v[:max_eval_examples] for k, v in load_out_of_domain_tests(task, shared_data).items()}
    return train[:max_train_examples], dev[:max_eval_examples], test[:max_eval_examples], labels, extra
