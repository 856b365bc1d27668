"""The fine-tuning tasks' data: which shared files each task reads, and their loaders (CoNLL-U UPOS, IL-NER BIO
JSONL, text/label JSONL), each refusing bad input with the file and line named."""

from __future__ import annotations

import re
from pathlib import Path

from hindi_models.files import iter_jsonl
from training.data import shared_data_dir

# Universal POS tags of UD v1 (the 2015 HDTB files predate v2: CONJ, not CCONJ).
UD_V1_UPOS = ("ADJ", "ADP", "ADV", "AUX", "CONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
              "PUNCT", "SCONJ", "SYM", "VERB", "X")
_BIO = re.compile(r"^(O|[BI]-\S+)$")

# Suite tasks: kind ("pos", "ner", "classification") and train / eval files relative to the shared data folder.
TASKS = {
    "pos": ("pos", "ud_hindi_hdtb_2015/hi-ud-dev.conllu", "ud_hindi_hdtb_2015/hi-ud-test.public.conllu"),
    "ner": ("ner", "il_ner_hindi/train.jsonl", "il_ner_hindi/test.jsonl"),
    "bbc_topic": ("classification", "midas_hindi_classification/bbc_topic/train.jsonl",
                  "midas_hindi_classification/bbc_topic/test.jsonl"),
    "iitp_sentiment": ("classification", "midas_hindi_classification/iitp_product_review_sentiment/train.jsonl",
                       "midas_hindi_classification/iitp_product_review_sentiment/test.jsonl"),
}


def load_conllu_upos(path: str | Path) -> list[dict]:
    """Sentences of a CoNLL-U file as {tokens, tags} (FORM, UPOS); comments, `1-2` ranges and `1.1` nodes skipped."""
    path = Path(path)
    sentences, tokens, tags = [], [], []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line.strip():
                if tokens:
                    sentences.append({"tokens": tokens, "tags": tags})
                tokens, tags = [], []
                continue
            if line.startswith("#"):
                continue
            columns = line.split("\t")
            if len(columns) != 10:
                raise ValueError(f"{path}:{number}: expected 10 tab-separated CoNLL-U columns, got {len(columns)}")
            if "-" in columns[0] or "." in columns[0]:  # multiword token range or empty node
                continue
            if columns[3] not in UD_V1_UPOS:
                raise ValueError(f"{path}:{number}: UPOS {columns[3]!r} is not a UD v1 tag ({' '.join(UD_V1_UPOS)})")
            tokens.append(columns[1])
            tags.append(columns[3])
    if tokens:
        sentences.append({"tokens": tokens, "tags": tags})
    if not sentences:
        raise ValueError(f"{path}: no sentence found")
    return sentences


def _read_jsonl(path: Path, fields: tuple[str, ...]):
    """Yield (line number, record) for each non-empty line, checking that every field in `fields` is there."""
    for number, record in iter_jsonl(path):
        missing = [f for f in fields if not isinstance(record, dict) or f not in record]
        if missing:
            raise ValueError(f"{path}:{number}: missing field {', '.join(map(repr, missing))}")
        yield number, record


def repair_bio_tag(tag: str) -> str:
    """IL-NER's malformed tags: `-` (no annotation) → `O`, `-TYPE` (missing prefix) → `B-TYPE`; others unchanged."""
    if tag == "-":
        return "O"
    if tag.startswith("-") and len(tag) > 1:
        return "B" + tag
    return tag


def load_ner_jsonl(path: str | Path) -> list[dict]:
    """Sentences of a {tokens, ner_tags} JSONL file as {tokens, tags}; malformed tags repaired (`repair_bio_tag`)."""
    path = Path(path)
    sentences = []
    for number, record in _read_jsonl(path, ("tokens", "ner_tags")):
        tokens, tags = record["tokens"], [repair_bio_tag(t) for t in record["ner_tags"]]
        if len(tokens) != len(tags):
            raise ValueError(f"{path}:{number}: {len(tokens)} tokens but {len(tags)} ner_tags")
        bad = [t for t in tags if not _BIO.match(t)]
        if bad:
            raise ValueError(f"{path}:{number}: tag {bad[0]!r} is not BIO (O, B-TYPE or I-TYPE)")
        if tokens:
            sentences.append({"tokens": tokens, "tags": tags})
    if not sentences:
        raise ValueError(f"{path}: no sentence found")
    return sentences


def load_classification_jsonl(path: str | Path, labels=None) -> list[dict]:
    """Examples of a {text, label} JSONL file; with `labels` (the train split's set), an unknown label is an error."""
    path = Path(path)
    known = set(labels) if labels is not None else None
    examples = []
    for number, record in _read_jsonl(path, ("text", "label")):
        label = str(record["label"])
        if known is not None and label not in known:
            raise ValueError(f"{path}:{number}: label {label!r} is not in the train split's labels "
                             f"({', '.join(sorted(known))})")
        examples.append({"text": record["text"], "label": label})
    if not examples:
        raise ValueError(f"{path}: no example found")
    return examples


def bio_labels(*splits: list[dict]) -> list[str]:
    """`O` then B-/I- of every entity type seen in the given splits, sorted by type."""
    types = sorted({tag[2:] for split in splits for example in split for tag in example["tags"] if tag != "O"})
    return ["O"] + [f"{prefix}-{name}" for name in types for prefix in "BI"]


def load_task(name: str, shared_data=None) -> tuple[list[dict], list[dict], list[str]]:
    """(train, eval, labels) of a suite task from the shared data folder."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    kind, train_file, eval_file = TASKS[name]
    folder = shared_data_dir(shared_data)
    train_path, eval_path = folder / train_file, folder / eval_file
    for path in (train_path, eval_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (set --shared-data or HINDI_MODELS_SHARED_DATA)")
    if kind == "pos":
        return load_conllu_upos(train_path), load_conllu_upos(eval_path), list(UD_V1_UPOS)
    if kind == "ner":
        train, evaluation = load_ner_jsonl(train_path), load_ner_jsonl(eval_path)
        return train, evaluation, bio_labels(train, evaluation)  # eval-only types stay gold (counted as misses)
    train = load_classification_jsonl(train_path)
    labels = sorted({example["label"] for example in train})
    return train, load_classification_jsonl(eval_path, labels), labels
