"""Evaluate a saved causal or masked model: held-out bits per character, and minimal pairs, per section.

The scoring itself is in `scoring.py` (causal log-probabilities, pseudo-log-likelihoods) and the minimal pairs in
`minimal_pairs.py`; this module adds the held-out metrics and the rules for loading a model per section. Their
public names are re-exported here, so `hindi_models.evaluation` is the one import for evaluation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError

from .architectures import architecture_of
from .minimal_pairs import load_minimal_pairs, remove_final_danda, score_minimal_pairs
from .scoring import (
    KINDS,
    SentenceScore,
    causal_sentence_scores,
    causal_start_id,
    causal_windows,
    masked_sentence_scores,
    model_max_length,
    sentence_scores,
)
from .tokenizer import check_tokenizer_matches


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


# Stored with every result, so a number in a JSON file says what it measures.
SCORING_NOTES = {
    "causal": "sum of log p (nats) of every token after the leading BOS/[CLS], the closing [SEP] included",
    "masked": "pseudo-log-likelihood (Salazar et al. 2020): each non-special token masked in turn",
    "bits_per_char": "total NLL / ln 2 / characters of the texts (the [SEP] adds no character)",
    "minimal_pairs": "correct only if score(good) > score(bad); ties count as wrong",
}


def detect_kinds(config) -> dict[str, str]:
    """Sections to evaluate, {section name: kind}, from a config object or raw config dict.

    The registry's remote-code architectures give their own sections (the hybrid: its decoder through
    AutoModelForCausalLM and its encoder through AutoModelForMaskedLM, reported separately). Any other model,
    ours or not, is told by its saved `architectures`, then the Auto mappings (bert-like types, which also have
    a causal head class, count as masked unless the config says `is_decoder`).
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    model_type = get("model_type")
    found = architecture_of(config)
    if found is not None and found[0].remote_code:
        return dict(found[0].sections)
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
    found = architecture_of(config_dict)
    by_kind = {kind: name for name, kind in found[0].sections.items()} if found else {}
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


def _load_tokenizer(tokenizer, name: str, revision: str | None, remote: bool):
    """The tokenizer object to score with: the one given, or loaded from a name/path (default: the model's)."""
    from transformers import AutoTokenizer

    if tokenizer is not None and not isinstance(tokenizer, (str, Path)):
        return tokenizer
    tok_name = str(tokenizer or name)
    tok_revision = revision if tokenizer is None else None
    tokenizer = AutoTokenizer.from_pretrained(tok_name, revision=tok_revision, trust_remote_code=remote)
    # transformers builds an empty tokenizer from the config when a folder has no tokenizer files.
    if not tokenizer("नमस्ते", add_special_tokens=False)["input_ids"]:
        raise ValueError(
            f"{tok_name}: the tokenizer found there encodes text to nothing (vocabulary of {len(tokenizer)}); "
            "save the tokenizer next to the model or pass tokenizer= (--tokenizer)"
        )
    return tokenizer


def _load_for_kind(name: str, kind: str, revision, remote: bool, dtype, device, tokenizer, max_length):
    """The model behind one evaluation section (AutoModelForCausalLM / AutoModelForMaskedLM), checked against the
    tokenizer and the requested window length."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    auto_class = {"causal": AutoModelForCausalLM, "masked": AutoModelForMaskedLM}[kind]
    try:
        model = auto_class.from_pretrained(name, revision=revision, trust_remote_code=remote, dtype=dtype).to(device)
    except SafetensorError as err:
        raise ValueError(f"{name}: corrupted or truncated safetensors weights ({err})") from err
    check_tokenizer_matches(model.config, tokenizer, where=name)
    context = model_max_length(model)
    if max_length is not None and context is not None and max_length > context:
        raise ValueError(f"max_length {max_length} is above {name}'s {context} positions")
    return model


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
    from transformers import PreTrainedConfig

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
    tokenizer = _load_tokenizer(tokenizer, name, revision, remote)
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
    for section, kind in sections.items():
        model = _load_for_kind(name, kind, revision, remote, dtype, device, tokenizer, max_length)
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
