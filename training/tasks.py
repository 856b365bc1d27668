"""The fine-tuning tasks' data: which shared files each task reads, and their loaders (CoNLL-U UPOS, IL-NER BIO
JSONL, text/label JSONL), each refusing bad input with the file and line named."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from hindi_models.files import iter_jsonl
from training.data import shared_data_dir

# Universal POS tags of UD v1 (the 2015 HDTB files predate v2: CONJ, not CCONJ).
UD_V1_UPOS = ("ADJ", "ADP", "ADV", "AUX", "CONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
              "PUNCT", "SCONJ", "SYM", "VERB", "X")
_BIO = re.compile(r"^(O|[BI]-\S+)$")

# Suite tasks: kind ("pos", "ner", "classification") and train / dev / test files relative to the shared data folder
# (dev None: carved off the train file by `split_off_dev`, as HDTB's only training data is its dev file).
TASKS = {
    "pos": ("pos", "ud_hindi_hdtb_2015/hi-ud-dev.conllu", None, "ud_hindi_hdtb_2015/hi-ud-test.public.conllu"),
    "ner": ("ner", "il_ner_hindi/train.jsonl", "il_ner_hindi/dev.jsonl", "il_ner_hindi/test.jsonl"),
    "bbc_topic": ("classification", "midas_hindi_classification/bbc_topic/train.jsonl",
                  "midas_hindi_classification/bbc_topic/dev.jsonl", "midas_hindi_classification/bbc_topic/test.jsonl"),
    "iitp_sentiment": ("classification", "midas_hindi_classification/iitp_product_review_sentiment/train.jsonl",
                       "midas_hindi_classification/iitp_product_review_sentiment/dev.jsonl",
                       "midas_hindi_classification/iitp_product_review_sentiment/test.jsonl"),
}
# Out-of-domain test sets scored by the model a task trained (no extra training): PUD's UPOS is UD v2, whose only
# tag outside UD v1 is CCONJ (v1: CONJ); any other tag outside UD v1 is refused.
OUT_OF_DOMAIN_TESTS = {"pos": {"pud": ("ud_hindi_pud/hi_pud-ud-test.public.conllu", {"CCONJ": "CONJ"})}}
DEV_FRACTION = 0.1


def _text(example: dict) -> str:
    return " ".join(example["tokens"]) if "tokens" in example else example["text"]


def without_overlap(examples: list[dict], *others: list[dict]) -> list[dict]:
    """`examples` minus those whose text (words joined by spaces, or `text`) is also in one of `others`."""
    seen = {_text(e) for other in others for e in other}
    return [e for e in examples if _text(e) not in seen]


def split_off_dev(examples: list[dict], fraction: float = DEV_FRACTION) -> tuple[list[dict], list[dict]]:
    """(train, dev): an example goes to dev when the sha256 of its text falls in the first `fraction` of the hash
    range, so the split is fixed by the data alone (not by order or seed); duplicates of a text stay together."""
    def in_dev(example) -> bool:
        return int(hashlib.sha256(_text(example).encode("utf-8")).hexdigest()[:8], 16) < fraction * 16 ** 8

    return [e for e in examples if not in_dev(e)], [e for e in examples if in_dev(e)]


def load_conllu_upos(path: str | Path, tag_map: dict | None = None) -> list[dict]:
    """Sentences of a CoNLL-U file as {tokens, tags} (FORM, UPOS); comments, `1-2` ranges and `1.1` nodes skipped.

    `tag_map` renames tags first (e.g. UD v2 `CCONJ` → v1 `CONJ`); a tag outside UD v1 after it is an error."""
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
            columns[3] = (tag_map or {}).get(columns[3], columns[3])
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


def _require(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (set --shared-data or HINDI_MODELS_SHARED_DATA)")
    return path


def load_task(name: str, shared_data=None) -> tuple[list[dict], list[dict], list[dict], list[str]]:
    """(train, dev, test, labels) of a suite task from the shared data folder.

    The test split never overlaps the others: an example whose text is also in test is dropped from train and dev,
    and one in dev from train (IL-NER repeats 235 test sentences in train and 59 in dev, BBC 2). Labels come from
    the train split (POS: the UD v1 tagset) and a dev or test label outside them is refused, except NER entity
    types seen only in dev or test, which stay gold and count as misses (IL-NER's dev has `NED`, train has not)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    kind, train_file, dev_file, test_file = TASKS[name]
    folder = shared_data_dir(shared_data)
    paths = [_require(folder / f) for f in (train_file, dev_file, test_file) if f is not None]
    if kind == "pos":
        train, dev = split_off_dev(load_conllu_upos(folder / train_file))
        test, labels = load_conllu_upos(folder / test_file), list(UD_V1_UPOS)
    elif kind == "ner":
        train, dev, test = (load_ner_jsonl(path) for path in paths)
        labels = bio_labels(train, dev, test)
    else:
        train = load_classification_jsonl(folder / train_file)
        labels = sorted({example["label"] for example in train})
        dev, test = (load_classification_jsonl(folder / f, labels) for f in (dev_file, test_file))
    dev = without_overlap(dev, test)
    return without_overlap(train, dev, test), dev, test, labels


def load_out_of_domain_tests(name: str, shared_data=None) -> dict[str, list[dict]]:
    """The out-of-domain test sets of a suite task (name → examples); tasks without one give {}."""
    folder = shared_data_dir(shared_data)
    tests = {}
    for test_name, (file, tag_map) in OUT_OF_DOMAIN_TESTS.get(name, {}).items():
        tests[test_name] = load_conllu_upos(_require(folder / file), tag_map)
    return tests
