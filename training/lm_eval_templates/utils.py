"""Helpers of the Hindi task files for lm-evaluation-harness, written by `hindi-lm lm-eval-tasks` (hindi-models).

Self-contained on purpose: the harness imports this file by path, where `hindi_models` may not be installed. The
functions at the end, written per data file, bind the values of that run (end token, column names, phenomena).
"""


def first_value(doc, keys):
    """The first non-empty column of `keys`, as `hindi_models.minimal_pairs` reads a record."""
    return next((doc[k] for k in keys if doc.get(k) not in (None, "")), None)


def only_phenomenon(dataset, phenomenon: str, keys):
    """The pairs of one phenomenon; a pair without one belongs to "all", as in `hindi_models.minimal_pairs`."""
    return dataset.filter(lambda doc: str(first_value(doc, keys) or "all") == phenomenon)


def pair_choices(doc, end: str, good_keys, bad_keys) -> list[str]:
    """[bad, good], each closed by `end` so the end-of-document token is scored too."""
    return [first_value(doc, bad_keys) + end, first_value(doc, good_keys) + end]


def nonblank_lines(dataset):
    """Stripped non-blank lines, the texts `hindi-lm evaluate` scores."""
    return dataset.filter(lambda doc: doc["text"].strip()).map(lambda doc: {"text": doc["text"].strip()})


def scored_text(doc, end: str) -> str:
    return doc["text"] + end


def text_results(doc, results) -> dict:
    """(log p, characters) and (log p, words) per text; the harness sums both parts over texts."""
    (logprob,) = results
    text = doc["text"]
    return {"bits_per_char": (logprob, len(text)), "bits_per_word": (logprob, len(text.split()))}


# ---- written by `hindi-lm lm-eval-tasks` for this folder ----
