"""Train and load the Devanagari-safe Hindi tokenizer.

The tokenizer is a character-level BPE (`tokenizers` library) with byte fallback:

* normalizer: Unicode NFC, so the same word always has the same code points, then one space prepended to the
  text (as `add_prefix_space` / SentencePiece do), so the first word of a line has the same tokens as the same
  word anywhere else; the decoder drops exactly that space again;
* pre-tokenizer: a GPT-2-style regex in which letters *and combining marks* (matras, virama, nukta,
  anusvara, chandrabindu; Unicode category M) and ZWJ/ZWNJ form one chunk. GPT-2's own regex uses
  `\\p{L}+`, which cuts every Hindi word at each matra (1.57 chars/token at vocab 8000 on Hindi; this one
  gets about 3.6);
* model: BPE over characters, a space being part of the word that follows it (like GPT-2's "Ġ");
  characters never seen in training (emoji, other scripts) fall back to the 256 byte tokens
  `<0x00>`..`<0xFF>` at ids 5-260, so there is never an [UNK] and `decode(encode(x)) == NFC(x)` exactly;
* special tokens: they absorb the spaces written around them (`lstrip`/`rstrip`), so "एक [MASK] है" and
  "[CLS] text [SEP]" give no separate space token;
* post-processor: `[CLS] $A [SEP]` (pairs: `[CLS] $A [SEP] $B [SEP]`), the one document convention
  of every architecture's training data (see `BOS_ID`/`EOS_ID` below). A saved model folder gets the template of
  its architecture (`tokenizer_for_model`): causal models `[CLS] $A`, so a prompt does not end the document.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

# Special tokens at fixed ids 0-4, shared by every architecture and by the presets' model configs.
PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN]
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
# Every document is encoded as `[CLS] text [SEP]` for all three architectures: [CLS] doubles as the
# causal models' BOS and [SEP] as their EOS / document boundary, so one packed stream serves GPT, BERT
# and both branches of the hybrid.
BOS_ID, EOS_ID = CLS_ID, SEP_ID

# Byte-fallback tokens come right after the special tokens: ids 5..260 are <0x00>..<0xFF>.
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]
DEFAULT_MODEL_MAX_LENGTH = 1024

# Letters+marks (+ZWNJ/ZWJ, which sit inside Devanagari conjuncts) | numbers | other symbols, each with
# an optional leading space; then whitespace runs. `\s+(?!\S)` leaves the last space of a run to the
# next word, as GPT-2 does, so "a  b" -> ["a", " ", " b"].
PRETOKENIZE_PATTERN = (
    r" ?[\p{L}\p{M}\u200c\u200d]+"
    r"| ?\p{N}+"
    r"| ?[^\s\p{L}\p{M}\p{N}\u200c\u200d]+"
    r"|\s+(?!\S)"
    r"|\s+"
)


def _initial_alphabet() -> list[str]:
    """Characters kept as single tokens even if the training text lacks them.

    Printable ASCII and the (NFC-stable, assigned) Devanagari block: the shared corpus has no
    punctuation or Latin, yet evaluation text has "।", digits and English words.
    """
    chars = [chr(c) for c in range(0x20, 0x7F)]
    chars += [
        chr(c)
        for c in range(0x0900, 0x0980)
        if unicodedata.category(chr(c)) != "Cn" and unicodedata.normalize("NFC", chr(c)) == chr(c)
    ]
    chars += list("\u200c\u200d“”‘’–—…₹")
    return chars


def build_backend(byte_fallback: bool = True) -> Tokenizer:
    """The untrained `tokenizers.Tokenizer` pipeline (normalizer, pre-tokenizer, model, decoder)."""
    tok = Tokenizer(models.BPE(unk_token=UNK_TOKEN, byte_fallback=byte_fallback))
    # Each piece of text between special tokens gets the prefix space; the special tokens strip the spaces around
    # them (see `train_tokenizer`), so a piece never starts with two.
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Prepend(" ")])
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated")
    # Tokens carry their own spaces, so decoding is byte fallback + concatenation, minus the prefix space.
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    return tok


def _iter_batches(texts, batch_size: int = 1000) -> Iterable[list[str]]:
    """Yield lists of strings from an iterable of str, a `datasets` Dataset/IterableDataset (its `text`
    column) or a Dataset column (`ds["text"]`), reading datasets in Arrow batches rather than row by row."""
    from datasets import Column, Dataset, IterableDataset

    column = "text"
    if isinstance(texts, Column) and isinstance(texts.source, Dataset):
        texts, column = texts.source.select_columns([texts.column_name]), texts.column_name
    if isinstance(texts, (Dataset, IterableDataset)):
        for batch in texts.iter(batch_size=batch_size):
            yield batch[column]
        return
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of strings, not a single string")
    batch = []
    for text in texts:
        batch.append(text)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _with_byte_tokens(tok: Tokenizer) -> Tokenizer:
    """Re-number the trained vocab as [specials, <0x00>..<0xFF>, learned tokens] and enable byte fallback.

    BpeTrainer cannot add byte tokens itself; merges refer to token strings, so re-numbering is safe.
    """
    state = json.loads(tok.to_str())
    old_vocab = state["model"]["vocab"]
    ordered = SPECIAL_TOKENS + BYTE_TOKENS + [t for t, _ in sorted(old_vocab.items(), key=lambda kv: kv[1])]
    vocab: dict[str, int] = {}
    for token in ordered:
        vocab.setdefault(token, len(vocab))
    state["model"]["vocab"] = vocab
    state["model"]["byte_fallback"] = True
    for added in state["added_tokens"]:  # the specials keep ids 0-4
        added["id"] = vocab[added["content"]]
    return Tokenizer.from_str(json.dumps(state))


def tokenizer_for_model(tokenizer, template: str, model_max_length: int) -> PreTrainedTokenizerFast:
    """A copy of a trained tokenizer for one saved model folder: the post-processor of its architecture
    (`document` or `causal`, see TEMPLATES) and the model's own length, so truncation never exceeds its positions."""
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    copy = _wrap(backend, model_max_length, template)
    if hasattr(tokenizer, "fertility"):
        copy.fertility = tokenizer.fertility
    return copy


def save_tokenizer(tokenizer, folder: str | Path) -> None:
    """`save_pretrained`, naming the class `PreTrainedTokenizerFast` in `tokenizer_config.json`: the name
    transformers 4.x knows too (5.x writes `TokenizersBackend`, which 4.x cannot load), and one `AutoTokenizer`
    resolves without asking for remote code."""
    tokenizer.save_pretrained(str(folder))
    config_file = Path(folder) / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# Post-processor templates: `document` wraps every text as the training data does; `causal` leaves a prompt open.
TEMPLATES = {
    "document": dict(single=f"{CLS_TOKEN} $A {SEP_TOKEN}", pair=f"{CLS_TOKEN} $A {SEP_TOKEN} $B:1 {SEP_TOKEN}:1"),
    "causal": dict(single=f"{CLS_TOKEN} $A", pair=f"{CLS_TOKEN} $A {SEP_TOKEN} $B:1"),
}


def _post_processor(template: str) -> processors.TemplateProcessing:
    return processors.TemplateProcessing(**TEMPLATES[template],
                                         special_tokens=[(CLS_TOKEN, CLS_ID), (SEP_TOKEN, SEP_ID)])


def _wrap(backend: Tokenizer, model_max_length: int, template: str = "document") -> PreTrainedTokenizerFast:
    """Wrap a trained backend as a transformers fast tokenizer with the special-token roles set."""
    backend.post_processor = _post_processor(template)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        cls_token=CLS_TOKEN,
        sep_token=SEP_TOKEN,
        mask_token=MASK_TOKEN,
        bos_token=CLS_TOKEN,
        eos_token=SEP_TOKEN,
        model_max_length=model_max_length,
        padding_side="right",
        clean_up_tokenization_spaces=False,  # "।" and "," keep the spaces the text had
    )


def train_tokenizer(
    texts,
    vocab_size: int = 32000,
    output_dir: str | Path | None = None,
    min_frequency: int = 2,
    show_progress: bool = True,
    *,
    held_out=None,
    model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
) -> PreTrainedTokenizerFast:
    """Train the Hindi BPE tokenizer on `texts` (iterable of str, or a `datasets` split with `text`).

    `vocab_size` counts everything: 5 special tokens, 256 byte tokens and the learned vocabulary.
    If `held_out` texts are given, their fertility is printed (when `show_progress`), stored as
    `tokenizer.fertility` and, with `output_dir`, written to `fertility.json`. With `output_dir`
    the tokenizer is saved there with `save_pretrained` (reload with `load_tokenizer`).
    """
    alphabet = _initial_alphabet()
    smallest = len(SPECIAL_TOKENS) + len(BYTE_TOKENS) + len(alphabet) + 1
    if vocab_size < smallest:
        raise ValueError(f"vocab_size={vocab_size} is too small: need at least {smallest} (specials+bytes+alphabet)")
    backend = build_backend()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(BYTE_TOKENS),
        min_frequency=min_frequency,
        # A special token takes the spaces written around it (`lstrip`/`rstrip`), so the text after it starts without
        # one and gets the prefix space like any text: "एक [MASK] है" is " एक" [MASK] " है", no lone space token.
        special_tokens=[AddedToken(t, special=True, normalized=False, lstrip=True, rstrip=True)
                        for t in SPECIAL_TOKENS],
        initial_alphabet=alphabet,
        # Rare characters beyond the initial alphabet (other scripts) may take at most a quarter of the
        # learned vocabulary; the rest fall back to bytes. Keeps len(tokenizer) <= vocab_size always.
        limit_alphabet=len(alphabet) + (vocab_size - smallest) // 4,
        show_progress=show_progress and hf_logging.is_progress_bar_enabled(),
    )
    length = len(texts) if hasattr(texts, "__len__") and not isinstance(texts, str) else None
    backend.train_from_iterator(_iter_batches(texts), trainer=trainer, length=length)
    tokenizer = _wrap(_with_byte_tokens(backend), model_max_length)

    if held_out is not None:
        stats = tokenizer_fertility(tokenizer, held_out)
        tokenizer.fertility = stats
        if show_progress:
            print(
                f"held-out fertility @ vocab {len(tokenizer)}: {stats['chars_per_token']:.3f} chars/token, "
                f"{stats['tokens_per_word']:.3f} tokens/word, unk rate {stats['unk_rate']:.2g}"
            )
    if output_dir is not None:
        save_tokenizer(tokenizer, output_dir)
        if held_out is not None:
            (Path(output_dir) / "fertility.json").write_text(json.dumps(stats, indent=2) + "\n")
    return tokenizer


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a saved tokenizer (folder or Hub id) with AutoTokenizer and check the special-token ids."""
    local = Path(path)
    if local.exists() and not (local / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{local}: no tokenizer.json in this folder (save one with train_tokenizer)")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if not tokenizer.is_fast:
        raise ValueError(f"{path}: loaded a slow tokenizer ({type(tokenizer).__name__}); a fast one is required")
    vocab = tokenizer.get_vocab()
    for expected_id, token in enumerate(SPECIAL_TOKENS):
        if vocab.get(token) != expected_id:
            raise ValueError(f"{path}: special token {token} has id {vocab.get(token)}, expected {expected_id}")
    return tokenizer


def check_tokenizer_matches(model_config, tokenizer, where: str = "model") -> None:
    """Refuse a tokenizer with more tokens than the model's embeddings, or special-token ids that disagree."""
    if len(tokenizer) > model_config.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens but the {where}'s embeddings hold only "
                         f"{model_config.vocab_size} (vocab_size)")
    for name in ("pad", "bos", "eos"):
        ours, theirs = getattr(model_config, f"{name}_token_id", None), getattr(tokenizer, f"{name}_token_id", None)
        if ours is not None and theirs is not None and ours != theirs:
            raise ValueError(f"special token ids disagree: tokenizer {name}_token_id={theirs}, "
                             f"{where} config {name}_token_id={ours}")


def encode_batch(tokenizer, texts: list[str], add_special_tokens: bool = True) -> list[list[int]]:
    """Token ids of `texts`, the same as `tokenizer(texts)["input_ids"]` but about 2x faster.

    For a fast tokenizer this calls the Rust backend's `encode_batch_fast` (no offsets, no BatchEncoding),
    which still applies the post-processor ([CLS] ... [SEP]). Falls back to `__call__` for slow tokenizers
    or when truncation/padding is switched on in the backend, so the ids never differ.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.truncation is not None or backend.padding is not None:
        return tokenizer(texts, add_special_tokens=add_special_tokens, return_attention_mask=False,
                         return_token_type_ids=False, verbose=False)["input_ids"]
    return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=add_special_tokens)]


def encode_documents(tokenizer, texts: list[str]) -> list[list[int]]:
    """`[CLS] text [SEP]` per text, the training documents of every architecture, whatever template the
    tokenizer's post-processor has (a causal model folder's adds no [SEP])."""
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    return [[cls_id, *ids, sep_id] for ids in encode_batch(tokenizer, texts, add_special_tokens=False)]


def tokenizer_fertility(tokenizer, texts, batch_size: int = 1000) -> dict:
    """Characters and words per token on `texts`, without special tokens.

    n_chars counts every character of the NFC text, spaces included; n_words counts whitespace-separated
    words. unk_rate is the share of [UNK] tokens (0 for byte-fallback tokenizers); byte_fallback_rate the
    share of <0xXX> tokens (characters the vocabulary lacks).
    """
    unk_id = tokenizer.unk_token_id
    vocab = tokenizer.get_vocab()
    byte_ids = {vocab[t] for t in BYTE_TOKENS if t in vocab}
    n_chars = n_words = n_tokens = n_unk = n_bytes = 0
    for batch in _iter_batches(texts, batch_size):
        batch = [unicodedata.normalize("NFC", t) for t in batch]
        n_chars += sum(len(t) for t in batch)
        n_words += sum(len(t.split()) for t in batch)
        for seq in encode_batch(tokenizer, batch, add_special_tokens=False):
            n_tokens += len(seq)
            n_unk += seq.count(unk_id) if unk_id is not None else 0
            n_bytes += sum(1 for i in seq if i in byte_ids)
    if n_tokens == 0:
        raise ValueError("tokenizer_fertility: the texts produced no tokens (empty input?)")
    return {
        "chars_per_token": n_chars / n_tokens,
        "tokens_per_word": n_tokens / max(n_words, 1),
        "unk_rate": n_unk / n_tokens,
        "byte_fallback_rate": n_bytes / n_tokens,
        "n_words": n_words,
        "n_tokens": n_tokens,
        "n_chars": n_chars,
    }
