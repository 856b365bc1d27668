"""The two scoring functions every evaluation is built on, for any causal or masked Hugging Face LM.

* `causal_sentence_scores`: the sum of log p(token | left context) over every token after the leading BOS
  ([CLS] in this project), the closing [SEP] included, with a sliding window for texts longer than the model.
* `masked_sentence_scores`: the pseudo-log-likelihood of Salazar et al. 2020 ("Masked Language Model
  Scoring"): each non-special token is masked in turn and scored with everything else visible.

All scores are natural-log (nats); bits = nats / ln 2. Held-out metrics (`evaluation.py`) and minimal pairs
(`minimal_pairs.py`) only sum these scores.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers.utils import logging as hf_logging

KINDS = ("causal", "masked")

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


def _bars(progress: bool) -> bool:
    """Progress bars when asked for and not switched off library-wide (`hindi-lm` does so off a terminal)."""
    return progress and hf_logging.is_progress_bar_enabled()


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


def _text_ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """The texts' own tokens, without any special token (those are placed by the scoring functions)."""
    return tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False)["input_ids"]


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


def causal_document(ids: list[int], tokenizer) -> list[int]:
    """`start + text + end`: the start token (`causal_start_id`), the text, and the token that closes a document:
    the EOS when it is a token of its own, else [SEP] after a [CLS] start. Ours: `[CLS] text [SEP]`, the training
    documents, whatever the folder's post-processor adds; GPT-2's `<|endoftext|>` is its start too, so there the
    text is scored without an end, as lm-evaluation-harness does."""
    start, eos, sep = causal_start_id(tokenizer), tokenizer.eos_token_id, tokenizer.sep_token_id
    if eos is not None and eos != start:
        return [start, *ids, eos]
    if eos is None and sep is not None and start == tokenizer.cls_token_id:
        return [start, *ids, sep]
    return [start, *ids]


def masked_document(ids: list[int], tokenizer) -> tuple[list[int], list[int]]:
    """(`[CLS] text [SEP]`, special-token mask) where the tokenizer has both (BERT, RoBERTa's `<s> … </s>`,
    ours), else the tokenizer's own template."""
    if tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None:
        return [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id], [1] + [0] * len(ids) + [1]
    full = tokenizer.build_inputs_with_special_tokens(list(ids))
    return full, tokenizer.get_special_tokens_mask(list(ids), already_has_special_tokens=False)


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


def causal_sentence_scores(model, tokenizer, texts: Sequence[str], batch_size: int = 32, max_length: int | None = None,
                           stride: int | None = None, progress: bool = True) -> list[SentenceScore]:
    """Log-probability (nats) of each text under a causal LM.

    Each text is scored as `causal_document`: start token, the text's tokens, and the EOS where it is a token
    of its own. Every token after the start is scored, the closing [SEP] included (ours: it is the document
    boundary the models were trained with; GPT-2 has none, so there only the text's tokens count). Texts longer
    than `max_length` (default: the model's context) are scored with `causal_windows`. Windows of all texts are
    batched together, longest first, right-padded.
    """
    max_length = max_length or model_max_length(model, tokenizer)
    rows = []  # (text index, window ids, first scored position)
    for i, text_ids in enumerate(_text_ids(tokenizer, texts)):
        ids = causal_document(list(text_ids), tokenizer)
        rows += [(i, w, first) for w, first in causal_windows(ids, max_length, stride)]
    rows.sort(key=lambda r: -len(r[1]))  # similar lengths together: less padding

    logprob, tokens = [0.0] * len(texts), [0] * len(texts)
    device = _device(model)
    with _eval_mode(model):
        for start in tqdm(range(0, len(rows), batch_size), desc="causal scoring", disable=not _bars(progress)):
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


def masked_sentence_scores(model, tokenizer, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None,
                           progress: bool = True) -> list[SentenceScore]:
    """Pseudo-log-likelihood (nats) of each text under a masked LM (Salazar et al. 2020).

    Each text is scored as `masked_document` (`[CLS] text [SEP]`); every token of the text (not [CLS]/[SEP]) is
    replaced by [MASK] in its own copy of the text, and log p(original token) is read at that position, all other tokens visible. The copies
    are consecutive rows, so a sentence's copies share one forward pass when they fit in `batch_size` rows.
    """
    if tokenizer.mask_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no mask token: pseudo-log-likelihood needs one")
    max_length = max_length or model_max_length(model, tokenizer)
    documents = [masked_document(list(ids), tokenizer) for ids in _text_ids(tokenizer, texts)]
    order = sorted(range(len(texts)), key=lambda i: -len(documents[i][0]))
    rows = []
    for i in order:
        rows += _pll_rows(i, *documents[i], max_length)

    logprob, tokens = [0.0] * len(texts), [0] * len(texts)
    device = _device(model)
    only_masked = isinstance(getattr(model, "get_output_embeddings", lambda: None)(), torch.nn.Module)
    with _eval_mode(model):
        for start in tqdm(range(0, len(rows), batch_size), desc="PLL scoring", disable=not _bars(progress)):
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


__all__ = [
    "KINDS",
    "SentenceScore",
    "causal_sentence_scores",
    "causal_document",
    "causal_start_id",
    "causal_windows",
    "masked_document",
    "masked_sentence_scores",
    "model_max_length",
    "sentence_scores",
]
