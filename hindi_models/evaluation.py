"""Score any causal or masked Hugging Face language model: bits per character, pseudo-log-likelihood and
minimal pairs.

Two scoring functions do all the work and everything else is built on them:

* `causal_sentence_scores`: the sum of log p(token | left context) over every token after the leading BOS
  ([CLS] in this project), the closing [SEP] included, with a sliding window for texts longer than the model.
* `masked_sentence_scores`: the pseudo-log-likelihood of Salazar et al. 2020 ("Masked Language Model
  Scoring"): each non-special token is masked in turn and scored with everything else visible.

All scores are natural-log (nats); bits = nats / ln 2.
"""

from __future__ import annotations

import contextlib
import csv
import inspect
import json
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from tqdm.auto import tqdm

from .factory import check_tokenizer_matches

KINDS = ("causal", "masked")
DANDA = "\u0964"  # "।", the Devanagari full stop

# Column names accepted for minimal pairs: ours / BLiMP on the Hub / MultiBLiMP.
GOOD_KEYS = ("good", "sentence_good", "sen")
BAD_KEYS = ("bad", "sentence_bad", "wrong_sen")
PHENOMENON_KEYS = ("phenomenon", "UID")

# Config attributes that hold the longest input a model accepts, in the order we trust them.
_CONTEXT_ATTRS = ("n_positions", "max_position_embeddings", "n_ctx", "block_size", "max_sequence_length", "seq_length")


@dataclass
class SentenceScore:
    """Score of one text: `logprob` in nats (a PLL for masked models), over `tokens` scored tokens."""

    logprob: float
    tokens: int
    chars: int
    words: int


# --------------------------------------------------------------------------------------------------------------
# Shared plumbing
# --------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _eval_mode(model):
    """Run in eval mode (dropout off) without gradients, and give the caller its model back as it was."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _forward_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """One forward pass returning float logits. Right padding keeps every real token at positions 0..n-1,
    which is each model's default `position_ids`, so none are passed (remote-code models may not take them)."""
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
    # A KV cache is useless for scoring and costs memory; only pass the flag to models that know it.
    if "use_cache" in inspect.signature(model.forward).parameters:
        kwargs["use_cache"] = False
    return model(**kwargs).logits.float()


def _pad_batch(rows: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into (input_ids, attention_mask)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids.to(device), mask.to(device)


def model_max_length(model, tokenizer=None) -> int | None:
    """Longest input the model accepts (from its config, capped by the tokenizer's limit), or None if unbounded."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    limits = [getattr(config, a) for a in _CONTEXT_ATTRS if isinstance(getattr(config, a, None), int)]
    tok_limit = getattr(tokenizer, "model_max_length", None)
    # Tokenizers without a limit report a huge sentinel (int(1e30)); only a realistic one counts.
    if isinstance(tok_limit, int) and tok_limit < 1_000_000:
        limits.append(tok_limit)
    return min(limits) if limits else None


def _encode(tokenizer, texts: Sequence[str], **kwargs) -> list[dict]:
    """Tokenize with the tokenizer's own special tokens (for ours: `[CLS] text [SEP]`)."""
    enc = tokenizer(list(texts), add_special_tokens=True, return_attention_mask=False, **kwargs)
    keys = list(enc.keys())
    return [{k: enc[k][i] for k in keys} for i in range(len(texts))]


def _pad_id(tokenizer) -> int:
    # Padded positions are masked out and never scored, so any valid id works when there is no pad token.
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def _text_score(text: str, logprob: float, tokens: int) -> SentenceScore:
    return SentenceScore(logprob=logprob, tokens=tokens, chars=len(text), words=len(text.split()))


# --------------------------------------------------------------------------------------------------------------
# Causal scoring
# --------------------------------------------------------------------------------------------------------------


def causal_start_id(tokenizer) -> int:
    """The token a causal text is conditioned on: BOS, else [CLS] (ours: both are id 2), else EOS (GPT-2's
    `<|endoftext|>` is its BOS and EOS at once, the convention of lm-evaluation-harness)."""
    for tok_id in (tokenizer.bos_token_id, tokenizer.cls_token_id, tokenizer.eos_token_id):
        if tok_id is not None:
            return tok_id
    raise ValueError(
        f"{type(tokenizer).__name__} has no bos/cls/eos token: the first token of a text would have no context"
    )


def _with_start_token(ids: list[int], tokenizer) -> list[int]:
    """Prepend the start token unless the tokenizer already added one (ours adds [CLS] itself)."""
    starts = {t for t in (tokenizer.bos_token_id, tokenizer.cls_token_id) if t is not None}
    if ids and ids[0] in starts:
        return ids
    return [causal_start_id(tokenizer)] + ids


def causal_windows(ids: Sequence[int], max_length: int | None, stride: int | None = None):
    """Split one id sequence into model-sized windows, as in the HF perplexity guide.

    Yields `(window_ids, first)`: the tokens at window positions >= `first` are scored there. Every token after
    ids[0] is scored exactly once; windows advance `stride` tokens, and each is as long as the model allows, so
    a token sees at least `max_length - stride` tokens of left context.
    """
    n = len(ids)
    if max_length is None or n <= max_length:
        yield list(ids), 1
        return
    stride = stride or max_length // 2
    if not 1 <= stride < max_length:
        raise ValueError(f"stride must be in [1, max_length={max_length}), got {stride}")
    end = max_length
    yield list(ids[:end]), 1
    while end < n:
        new_end = min(end + stride, n)
        begin = new_end - max_length
        yield list(ids[begin:new_end]), end - begin
        end = new_end


def causal_sentence_scores(
    model,
    tokenizer,
    texts: Sequence[str],
    batch_size: int = 32,
    max_length: int | None = None,
    stride: int | None = None,
    progress: bool = True,
) -> list[SentenceScore]:
    """Log-probability (nats) of each text under a causal LM.

    Each text is encoded by the tokenizer with its special tokens; if it did not add a BOS, `causal_start_id`
    is prepended. Every token after that first one is scored, including a closing [SEP]/EOS when the tokenizer
    adds one (ours does: it is the document boundary the models were trained with; GPT-2's tokenizer adds none,
    so there only the text's tokens count). Texts longer than `max_length` (default: the model's context) are
    scored with `causal_windows`. Windows of all texts are batched together, longest first, right-padded.
    """
    max_length = max_length or model_max_length(model, tokenizer)
    rows = []  # (text index, window ids, first scored position)
    for i, enc in enumerate(_encode(tokenizer, texts)):
        ids = _with_start_token(list(enc["input_ids"]), tokenizer)
        rows += [(i, w, first) for w, first in causal_windows(ids, max_length, stride)]
    rows.sort(key=lambda r: -len(r[1]))  # similar lengths together: less padding

    logprob, tokens = [0.0] * len(texts), [0] * len(texts)
    device = _device(model)
    with _eval_mode(model):
        for start in tqdm(range(0, len(rows), batch_size), desc="causal scoring", disable=not progress):
            batch = rows[start : start + batch_size]
            ids, mask = _pad_batch([r[1] for r in batch], _pad_id(tokenizer), device)
            logits = _forward_logits(model, ids, mask)
            # Position t predicts token t+1: `token_logp[:, t-1]` is log p(ids[t] | ids[:t]).
            # gather - logsumexp is log_softmax without materialising a second (batch, length, vocab) tensor.
            logits = logits[:, :-1]
            token_logp = logits.gather(-1, ids[:, 1:, None]).squeeze(-1) - logits.logsumexp(-1)
            for b, (i, window, first) in enumerate(batch):
                logprob[i] += token_logp[b, first - 1 : len(window) - 1].sum().item()
                tokens[i] += len(window) - first
    return [_text_score(t, lp, n) for t, lp, n in zip(texts, logprob, tokens)]


# --------------------------------------------------------------------------------------------------------------
# Masked scoring (pseudo-log-likelihood)
# --------------------------------------------------------------------------------------------------------------


def _pll_rows(text_index: int, ids: list[int], special: list[int], max_length: int | None):
    """One row per maskable token: (text index, window ids, masked position, original id).

    Texts longer than the model are cut to a `max_length` window centred on the masked token."""
    n = len(ids)
    for pos in range(n):
        if special[pos]:
            continue
        begin = 0 if max_length is None or n <= max_length else min(max(pos - max_length // 2, 0), n - max_length)
        window = ids[begin : begin + max_length] if max_length else ids
        yield text_index, window, pos - begin, ids[pos]


def masked_sentence_scores(
    model,
    tokenizer,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int | None = None,
    progress: bool = True,
) -> list[SentenceScore]:
    """Pseudo-log-likelihood (nats) of each text under a masked LM (Salazar et al. 2020).

    Every token the tokenizer did not add itself ([CLS]/[SEP] are not scored) is replaced by [MASK] in its own
    copy of the text, and log p(original token) is read at that position, all other tokens visible. The copies
    are consecutive rows, so a sentence's copies share one forward pass when they fit in `batch_size` rows.
    """
    if tokenizer.mask_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no mask token: pseudo-log-likelihood needs one")
    max_length = max_length or model_max_length(model, tokenizer)
    encodings = _encode(tokenizer, texts, return_special_tokens_mask=True)
    order = sorted(range(len(texts)), key=lambda i: -len(encodings[i]["input_ids"]))
    rows = []
    for i in order:
        enc = encodings[i]
        rows += _pll_rows(i, list(enc["input_ids"]), enc["special_tokens_mask"], max_length)

    logprob, tokens = [0.0] * len(texts), [0] * len(texts)
    device = _device(model)
    only_masked = isinstance(getattr(model, "get_output_embeddings", lambda: None)(), torch.nn.Module)
    with _eval_mode(model):
        for start in tqdm(range(0, len(rows), batch_size), desc="PLL scoring", disable=not progress):
            batch = rows[start : start + batch_size]
            ids, mask = _pad_batch([r[1] for r in batch], _pad_id(tokenizer), device)
            positions = torch.tensor([r[2] for r in batch], device=device)
            targets = torch.tensor([r[3] for r in batch], device=device)
            rows_idx = torch.arange(len(batch), device=device)
            ids[rows_idx, positions] = tokenizer.mask_token_id
            logp = _masked_logprobs(model, ids, mask, rows_idx, positions, only_masked)
            if only_masked and start == 0:
                # The shortcut assumes the head maps hidden state i to logits i; check that once on this model.
                full = _masked_logprobs(model, ids, mask, rows_idx, positions, only_masked=False)
                only_masked = torch.allclose(logp, full, atol=1e-3)
                logp = full
            token_logp = logp[rows_idx, targets]
            for (i, *_), lp in zip(batch, token_logp.tolist()):
                logprob[i] += lp
                tokens[i] += 1
    return [_text_score(t, lp, n) for t, lp, n in zip(texts, logprob, tokens)]


@contextlib.contextmanager
def _project_only_at(model, rows: torch.Tensor, positions: torch.Tensor, shape: torch.Size):
    """Run the output projection (hidden -> vocab) only at one position per row.

    PLL needs one position per row, and the d x vocab matmul at every position is much of the cost of a small
    model (2 CPU cores, vocab 16k: PLL 5x faster at hidden 64, 1.3-1.8x at hidden 512). The hook sits on
    `get_output_embeddings()`, which HF LM heads expose; a call it does not recognise (other shape, keyword
    input) passes through unchanged and the caller gets full logits.
    """
    def keep_positions(module, args):
        if args and args[0].dim() == 3 and args[0].shape[:2] == shape:
            return (args[0][rows, positions].unsqueeze(1), *args[1:])
        return None

    handle = model.get_output_embeddings().register_forward_pre_hook(keep_positions)
    try:
        yield
    finally:
        handle.remove()


def _masked_logprobs(model, ids, mask, rows, positions, only_masked: bool) -> torch.Tensor:
    """Log-probabilities (batch, vocab) at each row's masked position."""
    hook = _project_only_at(model, rows, positions, ids.shape) if only_masked else contextlib.nullcontext()
    with hook:
        logits = _forward_logits(model, ids, mask)
    # (batch, 1, vocab) when the hook ran, else (batch, length, vocab).
    logits = logits[:, 0] if logits.shape[1] == 1 else logits[rows, positions]
    return logits.log_softmax(-1)


def sentence_scores(model, tokenizer, texts: Sequence[str], kind: str = "causal", **kwargs) -> list[SentenceScore]:
    """Dispatch to `causal_sentence_scores` or `masked_sentence_scores`."""
    if kind == "causal":
        return causal_sentence_scores(model, tokenizer, texts, **kwargs)
    if kind == "masked":
        kwargs.pop("stride", None)  # windows of masked scoring are centred on the masked token
        return masked_sentence_scores(model, tokenizer, texts, **kwargs)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


# --------------------------------------------------------------------------------------------------------------
# Held-out text quality
# --------------------------------------------------------------------------------------------------------------


def language_model_metrics(model, tokenizer, texts: Sequence[str], kind: str = "causal", **kwargs) -> dict:
    """Bits per character / per word and perplexity per token of held-out texts, each scored on its own.

    bits_per_char = (sum over texts of -log p, in nats) / ln 2 / (sum of len(text)): the characters (Unicode
    code points) of the texts as given; the [SEP] that closes each text is scored in the numerator but adds no
    character. Words are whitespace-separated. For `kind="masked"` the same numbers come from the PLL and are
    prefixed `pseudo_`: a PLL is not a probability of the text, so they are not comparable to causal bits.
    """
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError("no non-empty texts to evaluate")
    start = time.perf_counter()
    scores = sentence_scores(model, tokenizer, texts, kind=kind, **kwargs)
    seconds = time.perf_counter() - start
    nll = -sum(s.logprob for s in scores)
    tokens, chars, words = (sum(getattr(s, f) for s in scores) for f in ("tokens", "chars", "words"))
    if tokens == 0:
        raise ValueError(f"{type(tokenizer).__name__} produced no scorable tokens for {len(texts)} texts")
    prefix = "" if kind == "causal" else "pseudo_"
    return {
        f"{prefix}bits_per_char": nll / math.log(2) / chars,
        f"{prefix}bits_per_word": nll / math.log(2) / words,
        f"{prefix}perplexity": math.exp(nll / tokens),
        f"{prefix}nll_nats": nll,
        "texts": len(texts),
        "tokens": tokens,
        "chars": chars,
        "words": words,
        "chars_per_token": chars / tokens,
        "texts_per_second": len(texts) / seconds,
    }


# --------------------------------------------------------------------------------------------------------------
# Minimal pairs
# --------------------------------------------------------------------------------------------------------------


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


def iter_jsonl(path: str | Path) -> Iterable[tuple[int, object]]:
    """(line number, parsed record) for each non-empty line; invalid JSON raises naming `path:line`."""
    path = Path(path)
    with path.open(encoding="utf-8-sig") as f:  # -sig: tolerate a byte-order mark
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{line_no}: invalid JSON ({e.msg})") from None


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


# --------------------------------------------------------------------------------------------------------------
# Whole-model evaluation
# --------------------------------------------------------------------------------------------------------------

HYBRID_MODEL_TYPE = "hybrid_gpt_bert"
# Stored with every result, so a number in a JSON file says what it measures.
SCORING_NOTES = {
    "causal": "sum of log p (nats) of every token after the leading BOS/[CLS], the closing [SEP] included",
    "masked": "pseudo-log-likelihood (Salazar et al. 2020): each non-special token masked in turn",
    "bits_per_char": "total NLL / ln 2 / characters of the texts (the [SEP] adds no character)",
    "minimal_pairs": "correct only if score(good) > score(bad); ties count as wrong",
}


def detect_kinds(config) -> dict[str, str]:
    """Sections to evaluate, {section name: kind}, from a config object or raw config dict.

    The hybrid is both: its decoder (AutoModelForCausalLM) and encoder (AutoModelForMaskedLM) are reported
    separately. Otherwise the saved `architectures` decide, then the Auto mappings (bert-like types, which
    also have a causal head class, count as masked unless the config says `is_decoder`).
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    model_type = get("model_type")
    if model_type == HYBRID_MODEL_TYPE:
        return {"decoder": "causal", "encoder": "masked"}
    archs = get("architectures") or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return {"causal": "causal"}
    if any(a.endswith("ForMaskedLM") for a in archs):
        return {"masked": "masked"}
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not get("is_decoder", False):
        return {"masked": "masked"}
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return {"causal": "causal"}
    raise ValueError(f"cannot tell whether model_type {model_type!r} (architectures {archs}) is causal or masked")


def _sections(config_dict: dict, kinds) -> dict[str, str]:
    if kinds in (None, "auto"):
        return detect_kinds(config_dict)
    if kinds == "both":
        kinds = list(KINDS)
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"kinds must be 'auto', 'both' or among {KINDS}, got {unknown}")
    names = detect_kinds(config_dict) if config_dict.get("model_type") == HYBRID_MODEL_TYPE else {}
    by_kind = {kind: name for name, kind in names.items()}
    return {by_kind.get(k, k): k for k in kinds}


def _needs_remote_code(config_dict: dict) -> bool:
    """True when only the checkpoint's own Python code can build it (model_type unknown to transformers)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    return "auto_map" in config_dict and config_dict.get("model_type") not in CONFIG_MAPPING


def _read_texts(source, max_texts: int | None) -> list[str]:
    """Eval texts from a list or a text file (one text per line, blank lines skipped)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"eval text file not found: {path}")
        with path.open(encoding="utf-8") as f:
            texts = [line.strip() for line in f if line.strip()]
    else:
        texts = [t for t in source if t.strip()]
    return texts[:max_texts] if max_texts else texts


def _resolve_dtype(dtype):
    """torch.dtype from a name ("float32", "bfloat16"); None and "auto" pass through to from_pretrained."""
    if dtype is None or dtype == "auto" or isinstance(dtype, torch.dtype):
        return dtype
    if not isinstance(getattr(torch, str(dtype), None), torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}: use float32, bfloat16, float16 or auto")
    return getattr(torch, dtype)


def evaluate_model(
    model_name_or_path: str | Path,
    tokenizer=None,
    eval_texts: Sequence[str] | str | Path | None = None,
    minimal_pairs: Sequence[dict] | str | Path | None = None,
    kinds: str | Sequence[str] = "auto",
    trust_remote_code: bool = False,
    revision: str | None = None,
    batch_size: int = 32,
    max_length: int | None = None,
    stride: int | None = None,
    max_texts: int | None = None,
    max_pairs: int | None = None,
    strip_final_danda: bool = False,
    dtype: str | torch.dtype | None = torch.float32,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Evaluate a saved model (folder or Hub repo) and return a JSON-serialisable results dict.

    `kinds="auto"` reads the config: causal models get a "causal" section, masked ones a "masked" section, our
    hybrid a "decoder" (causal) and an "encoder" (masked) section. Each section holds `language_model` (from
    `language_model_metrics` on `eval_texts`) and `minimal_pairs` (from `score_minimal_pairs`). Custom-code
    models load only when `trust_remote_code=True`, and the flag is passed on only to models that need it.
    `tokenizer` is a tokenizer object or a name/path (default: the model's own). `dtype` defaults to float32
    for exact scores; "auto" keeps the checkpoint's dtype.
    """
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer, PreTrainedConfig

    name = str(model_name_or_path)
    dtype = _resolve_dtype(dtype)
    config_dict, _ = PreTrainedConfig.get_config_dict(name, revision=revision)
    remote = _needs_remote_code(config_dict)
    if remote and not trust_remote_code:
        raise ValueError(
            f"{name}: model_type {config_dict.get('model_type')!r} runs the checkpoint's own Python code; "
            "review it, then pass trust_remote_code=True (--trust-remote-code)"
        )
    sections = _sections(config_dict, kinds)
    if tokenizer is None or isinstance(tokenizer, (str, Path)):
        tok_name = str(tokenizer or name)
        tok_revision = revision if tokenizer is None else None
        tokenizer = AutoTokenizer.from_pretrained(tok_name, revision=tok_revision, trust_remote_code=remote)
        # transformers builds an empty tokenizer from the config when a folder has no tokenizer files.
        if not tokenizer("नमस्ते", add_special_tokens=False)["input_ids"]:
            raise ValueError(
                f"{tok_name}: the tokenizer found there encodes text to nothing (vocabulary of {len(tokenizer)}); "
                "save the tokenizer next to the model or pass tokenizer= (--tokenizer)"
            )
    texts = _read_texts(eval_texts, max_texts) if eval_texts is not None else None
    pairs = minimal_pairs
    if isinstance(pairs, (str, Path)):
        pairs = load_minimal_pairs(pairs, limit=max_pairs)
    elif pairs is not None and max_pairs:
        pairs = list(pairs)[:max_pairs]
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    score_kwargs = {"batch_size": batch_size, "max_length": max_length, "stride": stride, "progress": progress}

    results = {
        "model": name,
        "revision": revision,
        "model_type": config_dict.get("model_type"),
        "tokenizer": type(tokenizer).__name__,
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "scoring": SCORING_NOTES,
        "sections": {},
    }
    auto_classes = {"causal": AutoModelForCausalLM, "masked": AutoModelForMaskedLM}
    for section, kind in sections.items():
        try:
            model = auto_classes[kind].from_pretrained(
                name, revision=revision, trust_remote_code=remote, dtype=dtype
            ).to(device)
        except SafetensorError as err:
            raise ValueError(f"{name}: corrupted or truncated safetensors weights ({err})") from err
        check_tokenizer_matches(model.config, tokenizer, where=name)
        context = model_max_length(model)
        if max_length is not None and context is not None and max_length > context:
            raise ValueError(f"max_length {max_length} is above {name}'s {context} positions")
        out = {"kind": kind, "class": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters())}
        if texts is not None:
            out["language_model"] = language_model_metrics(model, tokenizer, texts, kind=kind, **score_kwargs)
        if pairs is not None:
            out["minimal_pairs"] = score_minimal_pairs(
                model, tokenizer, pairs, kind=kind, strip_final_danda=strip_final_danda, **score_kwargs
            )
        results["sections"][section] = out
        del model  # one model in memory at a time
    return results


__all__ = [
    "SentenceScore",
    "causal_sentence_scores",
    "masked_sentence_scores",
    "sentence_scores",
    "causal_windows",
    "causal_start_id",
    "model_max_length",
    "language_model_metrics",
    "load_minimal_pairs",
    "remove_final_danda",
    "score_minimal_pairs",
    "detect_kinds",
    "evaluate_model",
]
