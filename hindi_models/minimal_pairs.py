"""BLiMP-style minimal pairs: reading them (JSONL, CSV/TSV, Hub datasets) and scoring them with one model.

A pair is right only if score(good) > score(bad); the scores are the sentence log-probabilities (causal) or PLLs
(masked) of `scoring.sentence_scores`, of the sentences as written.
"""

from __future__ import annotations

import csv
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .files import iter_jsonl
from .scoring import sentence_scores

DANDA = "\u0964"  # "।", the Devanagari full stop

# Column names accepted for minimal pairs: ours / BLiMP on the Hub / MultiBLiMP.
GOOD_KEYS = ("good", "sentence_good", "sen")
BAD_KEYS = ("bad", "sentence_bad", "wrong_sen")
PHENOMENON_KEYS = ("phenomenon", "UID")


def _first_key(record: dict, keys: Iterable[str]):
    return next((record[k] for k in keys if record.get(k) not in (None, "")), None)


def _pair_from_record(record, where: str) -> dict:
    """Normalise one JSON object / table row to {"good", "bad", "phenomenon"}; `where` is "file:line" for errors."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object with 'good' and 'bad', got {type(record).__name__}")
    pair = {"good": _first_key(record, GOOD_KEYS), "bad": _first_key(record, BAD_KEYS)}
    for field, keys in (("good", GOOD_KEYS), ("bad", BAD_KEYS)):
        if not isinstance(pair[field], str):
            raise ValueError(f"{where}: missing key {field!r} (accepted: {', '.join(keys)})")
    pair["phenomenon"] = str(_first_key(record, PHENOMENON_KEYS) or "all")
    return pair


def _read_jsonl(path: Path) -> Iterable[dict]:
    for line_no, record in iter_jsonl(path):
        yield _pair_from_record(record, f"{path}:{line_no}")


def _read_table(path: Path) -> Iterable[dict]:
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    with path.open(encoding="utf-8-sig", newline="") as f:  # -sig: spreadsheets often write a byte-order mark
        reader = csv.DictReader(f, delimiter=delimiter)
        for row in reader:
            yield _pair_from_record(row, f"{path}:{reader.line_num}")


def load_minimal_pairs(
    path_or_name: str | Path,
    config: str | None = None,
    split: str = "train",
    limit: int | None = None,
    revision: str | None = None,
) -> list[dict]:
    """Load minimal pairs as a list of {"good", "bad", "phenomenon"}.

    Accepts a JSONL file (`good`, `bad`, optional `phenomenon`, e.g. the shared BHS pairs), a CSV/TSV table in
    MultiBLiMP's layout (`sen`, `wrong_sen`, `phenomenon`; `.csv` is comma-, anything else tab-separated), or the
    name of a Hugging Face dataset (loaded with `datasets.load_dataset(name, config, split=split)`). BLiMP's
    `sentence_good` / `sentence_bad` / `UID` columns are accepted too. A pair without a phenomenon goes to "all".
    """
    path = Path(path_or_name)
    if path.is_file():
        reader = _read_jsonl if path.suffix.lower() in (".jsonl", ".json") else _read_table
        records = reader(path)
    elif path.exists():
        raise ValueError(f"{path}: expected a .jsonl, .csv or .tsv file, got a directory")
    else:
        if path.suffix.lower() in (".jsonl", ".json", ".csv", ".tsv") or str(path_or_name).startswith((".", "/")):
            raise FileNotFoundError(f"minimal pairs file not found: {path}")
        import datasets  # only for Hub datasets

        dataset = datasets.load_dataset(str(path_or_name), config, split=split, revision=revision)
        records = (_pair_from_record(r, f"{path_or_name}[{split}]:{i}") for i, r in enumerate(dataset))
    pairs = []
    for pair in records:
        if limit is not None and len(pairs) >= limit:
            break
        pairs.append(pair)
    if not pairs:
        raise ValueError(f"{path_or_name}: no minimal pairs found")
    return pairs


@dataclass
class _PairCounts:
    correct: int = 0
    ties: int = 0
    total: int = 0

    def add(self, good: float, bad: float) -> None:
        self.correct += good > bad  # strictly greater: a tie is wrong
        self.ties += good == bad
        self.total += 1

    def as_dict(self) -> dict:
        return {"accuracy": self.correct / self.total, "correct": self.correct, "ties": self.ties, "total": self.total}


def remove_final_danda(text: str) -> str:
    """Drop a sentence-final danda (and the space before it): a diagnostic, as our corpus has almost none."""
    text = text.rstrip()
    return text[: -len(DANDA)].rstrip() if text.endswith(DANDA) else text


def score_minimal_pairs(
    model,
    tokenizer,
    pairs: Sequence[dict],
    kind: str = "causal",
    strip_final_danda: bool = False,
    **kwargs,
) -> dict:
    """Accuracy on minimal pairs: a pair is right only if score(good) > score(bad).

    Scores are sentence log-probabilities (causal) or PLLs (masked) of the sentences as written, punctuation
    kept (`strip_final_danda=True` removes a final "।" first). Ties count as WRONG: a model that cannot tell the two
    apart (e.g. both sentences map to the same tokens) gets no credit; BabyLM 2025 counts ties as right.
    Each distinct sentence is scored once. Returns overall and per-phenomenon accuracy with counts.
    """
    if not pairs:
        raise ValueError("no minimal pairs to score")
    prep = remove_final_danda if strip_final_danda else (lambda s: s)
    goods, bads = [prep(p["good"]) for p in pairs], [prep(p["bad"]) for p in pairs]
    unique = list(dict.fromkeys(goods + bads))
    start = time.perf_counter()
    scores = dict(zip(unique, (s.logprob for s in sentence_scores(model, tokenizer, unique, kind=kind, **kwargs))))
    seconds = time.perf_counter() - start

    overall, per_phenomenon = _PairCounts(), defaultdict(_PairCounts)
    for pair, good, bad in zip(pairs, goods, bads):
        for counts in (overall, per_phenomenon[pair.get("phenomenon") or "all"]):
            counts.add(scores[good], scores[bad])
    return {
        **overall.as_dict(),
        "per_phenomenon": {name: c.as_dict() for name, c in sorted(per_phenomenon.items())},
        "pairs_per_second": len(pairs) / seconds,
        "ties_count_as": "wrong",
        "final_danda": "removed" if strip_final_danda else "as written",
    }


__all__ = ["load_minimal_pairs", "remove_final_danda", "score_minimal_pairs"]
