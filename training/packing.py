"""Tokenize + pack for pretraining, as `run_clm.py`'s `group_texts`: concatenate `[CLS] line [SEP]` encodings and
cut them into `block_size` blocks, dropping each batch's remainder; no padding. Cached by fingerprint."""

from __future__ import annotations

from itertools import chain
from pathlib import Path

import pyarrow.compute as pc
from datasets import Dataset, DatasetDict, Features, IterableDataset, IterableDatasetDict, List, Value
from datasets.fingerprint import Hasher

from hindi_models.tokenizer import encode_documents

_TOKENIZED = Features({"input_ids": List(Value("int32")), "n_chars": Value("int64"), "n_words": Value("int64")})
_PACKED = Features({"input_ids": List(Value("int32"))})


def _cache_file(dataset: Dataset, cache_dir, name: str, *parts) -> str | None:
    """A cache file named by the input's fingerprint and the step's parameters (None: datasets decides)."""
    if cache_dir is None:
        return None
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    return str(Path(cache_dir) / f"{name}-{Hasher.hash([dataset._fingerprint, *parts])}.arrow")


def _map(ds, fn, features, num_proc, desc: str, cache_file: str | None):
    """Batched `map` dropping the input columns; a streamed dataset maps lazily (no processes, no cache)."""
    if isinstance(ds, IterableDataset):
        return ds.map(fn, batched=True, remove_columns=list(ds.column_names or []), features=features)
    return ds.map(fn, batched=True, remove_columns=ds.column_names, features=features, num_proc=num_proc,
                  desc=desc, cache_file_name=cache_file)


def _tokenize_split(dataset, tokenizer, block_size: int, num_proc, cache_dir):
    def tokenize(batch):
        # Every line is a document `[CLS] ... [SEP]`; lines longer than the model are fine here, they are cut into
        # blocks below.
        return {
            "input_ids": encode_documents(tokenizer, batch["text"]),
            "n_chars": [len(t) for t in batch["text"]],
            "n_words": [len(t.split()) for t in batch["text"]],
        }

    def group_texts(batch):
        # run_clm.py's group_texts: concatenate the batch (1000 lines), drop its remainder, cut into blocks.
        ids = list(chain.from_iterable(batch["input_ids"]))
        total = len(ids) // block_size * block_size
        return {"input_ids": [ids[i : i + block_size] for i in range(0, total, block_size)]}

    streaming = isinstance(dataset, IterableDataset)
    tokenized = _map(dataset, tokenize, _TOKENIZED, num_proc, "tokenizing",
                     None if streaming else _cache_file(dataset, cache_dir, "tokenized", tokenizer, "documents"))
    packed = _map(tokenized, group_texts, _PACKED, num_proc, f"packing into blocks of {block_size}",
                  None if streaming else _cache_file(tokenized, cache_dir, "packed", block_size))
    if streaming:
        return packed, None
    table = tokenized.data  # fresh map output: no indices mapping, so Arrow sums see exactly these rows
    stats = {
        "n_lines": len(tokenized),
        "n_words": int(pc.sum(table.column("n_words")).as_py() or 0),
        "n_chars": int(pc.sum(table.column("n_chars")).as_py() or 0),
        "n_tokens": int(pc.sum(pc.list_value_length(table.column("input_ids"))).as_py() or 0),
        "n_blocks": len(packed),
        "block_size": block_size,
    }
    stats["n_tokens_packed"] = stats["n_blocks"] * block_size
    return packed, stats


def tokenize_and_pack(dataset, tokenizer, block_size: int, num_proc: int | None = None, cache_dir=None):
    """Tokenize lines (`[CLS] line [SEP]` each) and pack them into `block_size` blocks of `input_ids`.

    Works on a Dataset, DatasetDict, IterableDataset or IterableDatasetDict; returns `(packed, stats)`,
    stats being {n_lines, n_words, n_chars, n_tokens, n_blocks, block_size, n_tokens_packed} (a dict
    per split for a DatasetDict; None for streamed data). Blocks carry no padding and no attention_mask
    (all ones; the collators add it). Both `map` steps are cached by fingerprint (in `cache_dir` if
    given, else next to the dataset's own cache files), so a second call reads them back.
    """
    if block_size < 2:
        raise ValueError(f"block_size={block_size} must be at least 2")
    if isinstance(dataset, (DatasetDict, IterableDatasetDict)):
        results = {k: _tokenize_split(v, tokenizer, block_size, num_proc, cache_dir) for k, v in dataset.items()}
        cls = IterableDatasetDict if isinstance(dataset, IterableDatasetDict) else DatasetDict
        return cls({k: r[0] for k, r in results.items()}), {k: r[1] for k, r in results.items()}
    return _tokenize_split(dataset, tokenizer, block_size, num_proc, cache_dir)
