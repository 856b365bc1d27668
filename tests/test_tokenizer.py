"""Tokenizer: special ids, Devanagari-safe pre-tokenization, exact round trips, reload, fertility."""

import itertools
import os
import time
import unicodedata
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from hindi_models.tokenizer import (
    BYTE_TOKENS,
    CLS_ID,
    MASK_ID,
    PAD_ID,
    SEP_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    encode_batch,
    load_tokenizer,
    tokenizer_fertility,
    train_tokenizer,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HINDI_MODELS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
CORPUS = SHARED / "hindi_aesthetics_corpus"

# A small self-contained Hindi text, so these tests need neither the sample nor the shared data.
HINDI = [
    "भारत एक विशाल देश है। यहाँ अनेक भाषाएँ बोली जाती हैं।",
    "हिंदी भारत की राजभाषा है और करोड़ों लोग इसे बोलते हैं।",
    "बच्चे स्कूल में पढ़ाई करते हैं और शाम को खेलते हैं।",
    "दिल्ली भारत की राजधानी है, जहाँ संसद भवन स्थित है।",
    "गंगा नदी हिमालय से निकलकर बंगाल की खाड़ी में गिरती है।",
    "क्षत्रिय, ब्राह्मण और वैश्य प्राचीन वर्ण व्यवस्था के अंग थे।",
    "ज़िंदगी में संघर्ष और सफलता दोनों आते हैं।",
    "हँसना स्वास्थ्य के लिए अच्छा माना जाता है।",
    "संस्कृत भाषा में अनेक प्राचीन ग्रंथ लिखे गए॥",
    "उसने कहा कि वह कल सुबह आठ बजे आएगा।",
]
MIXED = [
    "नमस्ते  दुनिया",  # double space
    "GPT-2 और BERT दोनों transformer मॉडल हैं।",
    "वर्ष 2024 में १२३ लोग आए॥ फिर 45 और।",
    "मुझे चाय पसंद है 😀☕ और तुम्हें? 🇮🇳",
    "  आगे और पीछे के स्पेस  ",
    "पंक्ति एक\nपंक्ति दो\tटैब",
    "क़िला ख़ुशी ग़ज़ल फ़िल्म ड़ ढ़",  # nukta letters (NFC decomposes U+0958..U+095F)
    "\u0915\u093c\u093e\u0902",  # decomposed input, NFC-normalised on the way in
    "日本語 العربية Ελληνικά — “quotes” … ₹100",
    "",
]
MARK_WORDS = ["किताब", "क्षत्रिय", "प्रश्न", "ज़िंदगी", "हँसना", "संस्कृत", "पढ़ाई", "श्रृंगार", "ऋषि", "कृष्ण",
              "क्\u200dष", "क्\u200cष"]  # with ZWJ / ZWNJ inside the conjunct


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    return train_tokenizer(HINDI * 20, vocab_size=1000, show_progress=False)


@pytest.fixture(scope="module")
def saved(tok, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(folder)
    return folder


def test_special_tokens_at_fixed_ids(tok):
    assert tok.convert_ids_to_tokens(list(range(5))) == SPECIAL_TOKENS
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (
        PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID)
    assert (tok.bos_token_id, tok.eos_token_id) == (CLS_ID, SEP_ID)
    assert tok.convert_ids_to_tokens([5, 260]) == [BYTE_TOKENS[0], BYTE_TOKENS[-1]]
    assert len(tok) <= 1000
    assert tok.is_fast and tok.clean_up_tokenization_spaces is False and tok.padding_side == "right"


def test_post_processor_wraps_cls_sep(tok):
    ids = tok("भारत एक देश है")["input_ids"]
    assert ids[0] == CLS_ID and ids[-1] == SEP_ID and CLS_ID not in ids[1:-1] and SEP_ID not in ids[1:-1]
    assert tok("")["input_ids"] == [CLS_ID, SEP_ID]
    pair = tok("भारत", "देश", return_token_type_ids=True)
    a = tok("भारत", add_special_tokens=False)["input_ids"]
    b = tok("देश", add_special_tokens=False)["input_ids"]
    assert pair["input_ids"] == [CLS_ID, *a, SEP_ID, *b, SEP_ID]
    assert pair["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)


@pytest.mark.parametrize("text", HINDI + MIXED)
def test_exact_round_trip_and_no_unk(tok, text):
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == unicodedata.normalize("NFC", text)
    assert UNK_ID not in ids
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == unicodedata.normalize("NFC", text)


def test_unseen_characters_use_byte_fallback(tok):
    tokens = tok.tokenize("😀")
    # the prefix space (see test_first_word_is_tokenized_like_anywhere_else), then the character's UTF-8 bytes
    assert tokens == [" ", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"]
    # Danda, digits and Latin are in the initial alphabet: single tokens even if training text lacks them.
    assert not any(t.startswith("<0x") for t in tok.tokenize("। ॥ 7 ७ Q"))


@pytest.mark.parametrize("word", MARK_WORDS)
def test_marks_never_split_from_previous_letter(tok, word):
    pre = tok.backend_tokenizer.pre_tokenizer
    pieces = [p for p, _ in pre.pre_tokenize_str(f"{word} {word}। x{word}")]
    assert pieces[:2] == [word, f" {word}"]
    for before, after in itertools.pairwise(pieces):
        assert not (unicodedata.category(after[0]).startswith("M") and unicodedata.category(before[-1])[0] == "L")
    assert all(not unicodedata.category(p[0]).startswith("M") for p in pieces)


def test_gpt2_regex_would_split_marks():
    # Why the custom regex exists: GPT-2's `\p{L}+` alone cuts words at every matra.
    from tokenizers import pre_tokenizers

    pieces = [p for p, _ in pre_tokenizers.ByteLevel(use_regex=True).pre_tokenize_str("किताब")]
    assert len(pieces) > 1


def test_autotokenizer_reload_is_identical(tok, saved):
    fresh = AutoTokenizer.from_pretrained(saved)
    assert fresh.is_fast
    texts = HINDI + MIXED
    assert fresh(texts)["input_ids"] == tok(texts)["input_ids"]
    assert [fresh.decode(x) for x in fresh(texts)["input_ids"]] == [tok.decode(x) for x in tok(texts)["input_ids"]]
    assert fresh.get_vocab() == tok.get_vocab()
    assert fresh.all_special_tokens == tok.all_special_tokens
    assert (fresh.bos_token, fresh.eos_token, fresh.model_max_length) == (tok.bos_token, tok.eos_token, 1024)
    assert fresh("क", "ख", return_token_type_ids=True) == tok("क", "ख", return_token_type_ids=True)
    loaded = load_tokenizer(saved)
    assert loaded(texts)["input_ids"] == tok(texts)["input_ids"]


def test_encode_batch_matches_call(tok):
    texts = HINDI + MIXED
    assert encode_batch(tok, texts) == tok(texts)["input_ids"]
    assert encode_batch(tok, texts, add_special_tokens=False) == tok(texts, add_special_tokens=False)["input_ids"]


def test_train_writes_folder_and_fertility(tmp_path):
    out = tmp_path / "t"
    tok = train_tokenizer(HINDI * 5, vocab_size=800, output_dir=out, show_progress=False, held_out=HINDI[:3])
    assert (out / "tokenizer.json").is_file() and (out / "fertility.json").is_file()
    assert set(tok.fertility) >= {"chars_per_token", "tokens_per_word", "unk_rate", "n_words", "n_tokens", "n_chars"}
    assert load_tokenizer(out).get_vocab() == tok.get_vocab()


def test_trains_from_a_dataset_column():
    from datasets import Dataset

    ds = Dataset.from_dict({"text": HINDI * 5})
    a = train_tokenizer(ds["text"], vocab_size=800, show_progress=False)
    b = train_tokenizer(HINDI * 5, vocab_size=800, show_progress=False)
    assert a.get_vocab() == b.get_vocab()


def test_many_distinct_characters_stay_within_vocab_size():
    cjk = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 1500))
    texts = HINDI * 5 + [cjk[i : i + 30] for i in range(0, len(cjk), 30)] * 2
    tok = train_tokenizer(texts, vocab_size=800, show_progress=False)
    assert len(tok) <= 800
    assert tok.decode(tok.encode(cjk, add_special_tokens=False)) == cjk  # dropped characters use bytes


def test_vocab_too_small_is_an_error():
    with pytest.raises(ValueError, match="vocab_size=300"):
        train_tokenizer(HINDI, vocab_size=300, show_progress=False)


def test_fertility_counts(tok):
    stats = tokenizer_fertility(tok, ["भारत देश", "एक"])
    n_tokens = len(tok.encode("भारत देश", add_special_tokens=False)) + len(tok.encode("एक", add_special_tokens=False))
    assert stats["n_words"] == 3 and stats["n_chars"] == len("भारत देश") + len("एक")
    assert stats["n_tokens"] == n_tokens and stats["unk_rate"] == 0.0
    assert stats["chars_per_token"] == pytest.approx(stats["n_chars"] / n_tokens)
    assert stats["tokens_per_word"] == pytest.approx(n_tokens / 3)


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
    # Special tokens in another order: [PAD] is not at id 0.
    vocab = {"[UNK]": 0, "[PAD]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "क": 5}
    wrong = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")),
                                    pad_token="[PAD]", unk_token="[UNK]")
    wrong.save_pretrained(tmp_path / "wrong")
    with pytest.raises(ValueError, match=r"wrong: special token \[PAD\] has id 1, expected 0"):
        load_tokenizer(tmp_path / "wrong")


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS} (set HINDI_MODELS_SHARED_DATA)")
def test_fertility_on_shared_validation_at_vocab_8000():
    """>= 3.4 chars/token on held-out Hindi with a vocab of 8000 trained on a slice of train.txt."""
    started = time.time()
    with open(CORPUS / "train.txt", encoding="utf-8") as f:
        train = [line.rstrip("\n") for line in itertools.islice(f, 150_000)]
    validation = (CORPUS / "validation.txt").read_text(encoding="utf-8").splitlines()
    tok = train_tokenizer(train, vocab_size=8000, show_progress=False)
    stats = tokenizer_fertility(tok, validation)
    assert len(tok) == 8000
    assert stats["chars_per_token"] >= 3.4, stats
    assert stats["unk_rate"] == 0.0
    assert time.time() - started < 60
