"""Corpus loading, cleaning, hash splitting, and tokenize + pack for pretraining.

Sources (one interface, `load_corpus`):

* None: the bundled sample, `hindi_models/data/sample/*.txt`;
* local `.txt` (one document per line) / `.jsonl` (a `text` field per line) files, globs or folders;
* `"shared"`: the shared Hindi corpus (`$HINDI_MODELS_SHARED_DATA/hindi_aesthetics_corpus/`, with its own
  validation.txt);
* `"hf://name"` or `"hf://name:config"`: a Hugging Face dataset (`datasets.load_dataset`), optionally streamed.

Every line is NFC-normalised and whitespace-collapsed, empty lines and exact duplicates are dropped, and
lines go to train or validation by a hash of their cleaned text, so adding data never moves a line from
one split to the other. Tokenizing and packing the splits into blocks is `training/packing.py`.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import json
import os
import re
import unicodedata
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from datasets import (
    Dataset,
    DatasetDict,
    Features,
    IterableDataset,
    IterableDatasetDict,
    Value,
    concatenate_datasets,
    load_dataset,
)


REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA_ENV = "HINDI_MODELS_SHARED_DATA"
SHARED_CORPUS = "hindi_aesthetics_corpus"
HF_PREFIX = "hf://"
TEXT_SUFFIXES = {".txt": "text", ".jsonl": "json"}  # suffix -> datasets builder
# Devanagari, Devanagari Extended and Vedic Extensions blocks.
_DEVANAGARI = re.compile("[\u0900-\u097f\ua8e0-\ua8ff\u1cd0-\u1cff]")
_STREAM_PEEK = 1000  # lines a streamed corpus is checked on (emptiness, Devanagari)


# --------------------------------------------------------------------------- locations


def sample_dir() -> Path:
    """Folder of the bundled sample corpus (hindi_models/data/sample)."""
    return Path(str(resources.files("hindi_models").joinpath("data", "sample")))


def describe_corpus(corpus) -> str:
    """A human-readable name of a `load_corpus` source, for reports and model cards."""
    if corpus is None:
        return "hindi-models bundled sample corpus (19,595 words of original prose)"
    if corpus == "shared":
        return f"shared Hindi corpus ({SHARED_CORPUS}/train.txt, 6.9M words, one sentence per line)"
    return str(corpus)


def corpus_datasets(corpus) -> list[str] | None:
    """The model card's `datasets:` entry for a `load_corpus` source (None where it is not a known dataset)."""
    return ["hindi-aesthetics-corpus"] if corpus == "shared" else None


def shared_data_dir(path: str | Path | None = None) -> Path:
    """The read-only shared data folder: `path`, else $HINDI_MODELS_SHARED_DATA, else ../shared/data."""
    return Path(path or os.environ.get(SHARED_DATA_ENV) or REPO_ROOT.parent / "shared" / "data")


def shared_corpus_files(shared_dir: str | Path | None = None) -> dict[str, Path]:
    """Paths of the shared pretraining corpus: {"train": .../train.txt, "validation": .../validation.txt}."""
    folder = shared_data_dir(shared_dir) / SHARED_CORPUS
    files = {split: folder / f"{split}.txt" for split in ("train", "validation")}
    for path in files.values():
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (set {SHARED_DATA_ENV} to the folder holding {SHARED_CORPUS}/)")
    return files


# --------------------------------------------------------------------------- cleaning


def clean_text(text: str | None) -> str:
    """NFC, drop a BOM, collapse every whitespace run (incl. newlines, NBSP) to one space, strip."""
    if not text:
        return ""
    return " ".join(unicodedata.normalize("NFC", text).replace("\ufeff", "").split())


def devanagari_fraction(text: str) -> float:
    """Share of the non-space characters of `text` that are Devanagari (0.0 for an empty string)."""
    n = len(text) - text.count(" ")
    return len(_DEVANAGARI.findall(text)) / n if n else 0.0


def text_hash(text: str) -> int:
    """64-bit blake2b of the cleaned text: the dedup key and the train/validation bucket."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def is_validation(text: str, validation_fraction: float) -> bool:
    """Whether a cleaned line belongs to validation; depends on the line alone, never on the rest."""
    return text_hash(text) < int(validation_fraction * 2**64)


def _clean_batch(batch: dict) -> dict:
    texts = [clean_text(t) for t in batch["text"]]
    return {
        "text": texts,
        "_hash": np.array([text_hash(t) for t in texts], dtype=np.uint64),  # > int64: numpy, not int
        "_deva": [devanagari_fraction(t) for t in texts],
    }


_CLEAN_FEATURES = Features({"text": Value("string"), "_hash": Value("uint64"), "_deva": Value("float32")})


# --------------------------------------------------------------------------- reading sources


def _describe(sources) -> str:
    if isinstance(sources, (Dataset, IterableDataset)):
        return "the given dataset"
    items = [str(s) for s in sources] if isinstance(sources, (list, tuple)) else [str(sources)]
    return ", ".join(items) if len(items) <= 3 else ", ".join(items[:3]) + f" (+{len(items) - 3} more)"


def resolve_files(sources) -> list[Path]:
    """Expand files, globs and folders (their *.txt/*.jsonl, recursively) into a sorted list of files."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if glob.has_magic(str(source)):
            matches = sorted(Path(p) for p in glob.glob(str(source), recursive=True) if Path(p).is_file())
            if not matches:
                raise FileNotFoundError(f"{source}: the pattern matches no file")
            files += matches
        elif path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.suffix in TEXT_SUFFIXES and p.is_file())
            if not matches:
                raise FileNotFoundError(f"{path}: folder has no .txt or .jsonl file")
            files += matches
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    for path in files:
        if path.suffix not in TEXT_SUFFIXES:
            raise ValueError(f"{path}: unsupported file type {path.suffix!r} (use .txt or .jsonl)")
    return files


def _check_utf8(path: Path, max_bytes: int | None = None) -> None:
    """Raise a one-line ValueError naming `path` if it is not valid UTF-8 (only its head if max_bytes)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            try:
                decoder.decode(chunk, final=False)
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}: not UTF-8 (bad byte near offset {done + err.start})") from None
            done += len(chunk)
            if max_bytes is not None and done >= max_bytes:
                return
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 (truncated character at the end)") from None


def _check_jsonl(path: Path, text_column: str) -> None:
    """Check the first record of a .jsonl file is an object with `text_column`."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{number}: not valid JSON ({err.msg})") from None
                if not isinstance(record, dict) or text_column not in record:
                    keys = sorted(record) if isinstance(record, dict) else type(record).__name__
                    raise ValueError(f"{path}:{number}: no {text_column!r} field (found {keys})")
                return


def _read_local(files: list[Path], text_column: str, streaming: bool, cache_dir) -> Dataset | IterableDataset:
    """Read .txt and .jsonl files with `datasets`' text/json builders into one `text` column.

    The .txt files come first, then the .jsonl files (one builder each); empty files are skipped.
    """
    parts = []
    for builder in ("text", "json"):
        group = [f for f in files if TEXT_SUFFIXES[f.suffix] == builder and f.stat().st_size > 0]
        if not group:
            continue
        for path in group:
            # Checked up front: datasets' own error on bad bytes does not name the file.
            _check_utf8(path, max_bytes=(1 << 20) if streaming else None)
            if builder == "json":
                _check_jsonl(path, text_column)
        part = load_dataset(
            builder, data_files=[str(f) for f in group], split="train", streaming=streaming, cache_dir=cache_dir
        )
        parts.append(_text_only(part, text_column if builder == "json" else "text", _describe(group)))
    if not parts:
        raise ValueError(f"empty corpus: {_describe(files)} holds no text")
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


def _text_only(ds, column: str, name: str):
    """Keep only `column`, renamed to `text`, as strings."""
    columns = ds.column_names
    if columns is None:  # a streamed dataset without declared features: look at the first row
        columns = list(next(iter(ds), {}).keys())
    if column not in columns:
        raise ValueError(f"{name}: no {column!r} column (found {columns})")
    ds = ds.select_columns([column])
    if column != "text":
        ds = ds.rename_column(column, "text")
    return ds.cast_column("text", Value("string")) if ds.features and ds.features["text"] != Value("string") else ds


def load_hf_texts(name: str, config: str | None = None, split: str = "train", text_column: str = "text",
                  streaming: bool = False, cache_dir=None) -> Dataset | IterableDataset:
    """One split of a Hugging Face dataset (Hub name or local dataset folder) as a `text` column."""
    ds = load_dataset(name, config, split=split, streaming=streaming, cache_dir=cache_dir)
    return _text_only(ds, text_column, f"{name}{':' + config if config else ''} [{split}]")


def read_texts(sources=None, *, text_column: str = "text", hf_split: str = "train", streaming: bool = False,
               cache_dir=None) -> Dataset | IterableDataset:
    """Raw (uncleaned) lines of `sources` as a one-column (`text`) Dataset, or IterableDataset if streaming."""
    if isinstance(sources, (Dataset, IterableDataset)):  # already loaded, e.g. by load_hf_texts
        return _text_only(sources, text_column, "the given dataset")
    if sources is None:
        folder = sample_dir()
        files = sorted(folder.glob("*.txt"))
        if not files:
            raise FileNotFoundError(f"{folder}: the bundled sample corpus has no .txt file")
        return _read_local(files, text_column, streaming, cache_dir)
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    parts, local = [], []
    for source in sources:
        if isinstance(source, str) and source.startswith(HF_PREFIX):
            name, _, config = source[len(HF_PREFIX):].partition(":")
            parts.append(load_hf_texts(name, config or None, hf_split, text_column, streaming, cache_dir))
        else:
            local.append(source)
    if local:
        parts.insert(0, _read_local(resolve_files(local), text_column, streaming, cache_dir))
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


# --------------------------------------------------------------------------- the corpus


def load_corpus(
    sources=None,
    *,
    validation_sources=None,
    validation_fraction: float = 0.01,
    min_devanagari_fraction: float = 0.0,
    dedup: bool = True,
    text_column: str = "text",
    hf_split: str = "train",
    streaming: bool = False,
    num_proc: int | None = None,
    cache_dir: str | None = None,
) -> DatasetDict | IterableDatasetDict:
    """Cleaned corpus lines as a DatasetDict with `train` and `validation` (one `text` column).

    sources: None (bundled sample), "shared" (shared corpus with its validation.txt), a loaded
    Dataset/IterableDataset (e.g. from `load_hf_texts`), or one / a list of files, globs, folders and
    "hf://name[:config]" specs (split `hf_split`). Lines go to validation when the blake2b hash of
    their cleaned text falls below `validation_fraction`, unless `validation_sources` are given; then
    train lines that also occur in validation are dropped. Lines whose Devanagari share is below
    `min_devanagari_fraction` are dropped (0.0 keeps all). `streaming=True` (or an IterableDataset
    source) returns an IterableDatasetDict read lazily: dedup keeps a set of 64-bit hashes in memory,
    and train lines repeated in explicit validation sources are not removed.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction={validation_fraction} must be in [0, 1)")
    if isinstance(sources, str) and sources == "shared":
        shared = shared_corpus_files()
        sources, validation_sources = shared["train"], validation_sources or shared["validation"]
    name = _describe(sources if sources is not None else sample_dir())
    kwargs = dict(text_column=text_column, hf_split=hf_split, streaming=streaming, cache_dir=cache_dir)
    raw = read_texts(sources, **kwargs)
    raw_val = read_texts(validation_sources, **kwargs) if validation_sources is not None else None
    if isinstance(raw, IterableDataset):
        return _stream_corpus(raw, raw_val, name, validation_fraction, min_devanagari_fraction, dedup)

    train, train_keep = _clean(raw, name, min_devanagari_fraction, dedup, num_proc)
    if raw_val is None:
        bucket = train.data.column("_hash").to_numpy()[train_keep] < np.uint64(int(validation_fraction * 2**64))
        val_keep, train_keep = train_keep[bucket], train_keep[~bucket]
        val = train
    else:
        val, val_keep = _clean(raw_val, _describe(validation_sources), min_devanagari_fraction, dedup, num_proc)
        val_hashes = val.data.column("_hash").to_numpy()[val_keep]
        train_keep = train_keep[~np.isin(train.data.column("_hash").to_numpy()[train_keep], val_hashes)]
    wants_validation = raw_val is not None or validation_fraction > 0
    if len(train_keep) == 0 or (wants_validation and len(val_keep) == 0):
        empty, kept = ("train", len(val_keep)) if len(train_keep) == 0 else ("validation", len(train_keep))
        how = (f"{_describe(validation_sources)} removed every train line" if raw_val is not None and empty == "train"
               else f"a {validation_fraction:.0%} hash split of {kept:,} kept line(s) leaves none for {empty}")
        raise ValueError(f"corpus {name} is too small to split: {how}; give more text, or --validation-corpus")
    return DatasetDict(
        train=train.select(train_keep).select_columns(["text"]),
        validation=val.select(val_keep).select_columns(["text"]),
    )


def _clean(raw: Dataset, name: str, min_deva: float, dedup: bool, num_proc) -> tuple[Dataset, np.ndarray]:
    """Clean every line (cached `map`), then return it with the indices of the lines to keep."""
    ds = raw.map(_clean_batch, batched=True, num_proc=num_proc, features=_CLEAN_FEATURES, desc="cleaning")
    lengths = pc.utf8_length(ds.data.column("text")).to_numpy(zero_copy_only=False)
    deva = ds.data.column("_deva").to_numpy()
    if not (lengths > 0).any():
        raise ValueError(f"empty corpus: {name} has no non-empty line")
    if not (deva > 0).any():
        raise ValueError(f"no Devanagari text in {name}")
    keep = np.flatnonzero((lengths > 0) & (deva >= min_deva))
    if dedup and len(keep):
        _, first = np.unique(ds.data.column("_hash").to_numpy()[keep], return_index=True)
        keep = keep[np.sort(first)]  # first occurrence of each line, original order kept
    if not len(keep):
        raise ValueError(f"empty corpus: no line of {name} has a Devanagari share >= {min_deva}")
    return ds, keep


def _stream_corpus(raw, raw_val, name, validation_fraction, min_deva, dedup) -> IterableDatasetDict:
    """The streaming twin of load_corpus: a generator cleans and dedups; hash filters split."""

    def lines(source):
        seen = set()  # fresh per pass, so every epoch sees the same lines
        for row in source:
            text = clean_text(row["text"])
            if not text or devanagari_fraction(text) < min_deva:
                continue
            key = text_hash(text)
            if dedup:
                if key in seen:
                    continue
                seen.add(key)
            yield {"text": text, "_hash": key}

    def stream(source):
        return IterableDataset.from_generator(lines, gen_kwargs={"source": source}, features=_STREAM_FEATURES)

    peek = [row["text"] for row in stream(raw).take(_STREAM_PEEK)]
    if not peek:
        raise ValueError(f"empty corpus: {name} has no non-empty line")
    if not any(_DEVANAGARI.search(t) for t in peek):
        raise ValueError(f"no Devanagari text in the first {len(peek)} lines of {name}")
    threshold = int(validation_fraction * 2**64)
    train = stream(raw)
    if raw_val is None:
        val = train.filter(lambda h: h < threshold, input_columns="_hash")
        train = train.filter(lambda h: h >= threshold, input_columns="_hash")
    else:
        val = stream(raw_val)
        # Unlike the in-memory path, train lines repeated in validation are not removed here: that
        # would need the whole validation set's hashes before the first train line.
    return IterableDatasetDict(train=train.select_columns(["text"]), validation=val.select_columns(["text"]))


_STREAM_FEATURES = Features({"text": Value("string"), "_hash": Value("uint64")})


# --------------------------------------------------------------------------- tokenize + pack

__all__ = [
    "clean_text",
    "devanagari_fraction",
    "is_validation",
    "load_corpus",
    "load_hf_texts",
    "read_texts",
    "resolve_files",
    "sample_dir",
    "shared_corpus_files",
    "shared_data_dir",
    "text_hash",
]
