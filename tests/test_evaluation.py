"""Tests for hindi_models.evaluation and the `hindi-lm evaluate` command, on tiny random models."""

import json
import math
import os
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from hindi_models import evaluation as ev
from training import evaluate as cli

SENTENCES = [
    "बच्चा तकिये बनाता है।",
    "बच्चा तकिये बनाया है।",
    "मक्खियाँ थैलों को चुनती थीं।",
    "पक्षी केला पकड़ता है",
    "लड़की ने किताब पढ़ी",
    "लड़की ने किताब पढ़ती",
    "राजा का दरबार और कुँवर की बैठक",
]
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HINDI_MODELS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def make_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer with the project's conventions: specials at ids 0-4, `[CLS] $A [SEP]`."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pre = pre_tokenizers.Whitespace()  # splits "है।" into "है" + "।"
    words = sorted({w for s in SENTENCES for w, _ in pre.pre_tokenize_str(s)})
    vocab = {tok: i for i, tok in enumerate(specials + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="module")
def gpt(tokenizer):
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=64,
        bos_token_id=2, eos_token_id=3, pad_token_id=0, initializer_range=0.2,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module")
def bert(tokenizer):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, pad_token_id=0, initializer_range=0.2,
    )
    return BertForMaskedLM(config).eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tokenizer, gpt, bert):
    """Both models saved as stock folders with the tokenizer next to the weights."""
    root = tmp_path_factory.mktemp("models")
    for name, model in (("gpt", gpt), ("bert", bert)):
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    return root


def hand_causal_logprob(model, ids: list[int]) -> float:
    """Reference: one forward over the whole sequence, log_softmax, gather every token after the first."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    logp = logits.log_softmax(-1)
    return sum(logp[t - 1, ids[t]].item() for t in range(1, len(ids)))


def hand_pll(model, ids: list[int], mask_id: int) -> float:
    """Reference: one forward per masked token (Salazar et al.), [CLS]/[SEP] not scored."""
    total = 0.0
    for pos in range(1, len(ids) - 1):
        masked = list(ids)
        masked[pos] = mask_id
        with torch.no_grad():
            logits = model(torch.tensor([masked])).logits[0, pos]
        total += logits.log_softmax(-1)[ids[pos]].item()
    return total


# ------------------------------------------------------------------------------------------------- causal


def test_tokenizer_follows_project_convention(tokenizer):
    ids = tokenizer(SENTENCES[0])["input_ids"]
    assert ids[0] == 2 and ids[-1] == 3 and ev.causal_start_id(tokenizer) == 2
    assert tokenizer.unk_token_id not in ids


def test_causal_scores_match_one_full_forward(gpt, tokenizer):
    scores = ev.causal_sentence_scores(gpt, tokenizer, SENTENCES, progress=False)
    for text, score in zip(SENTENCES, scores):
        ids = tokenizer(text)["input_ids"]
        assert score.logprob == pytest.approx(hand_causal_logprob(gpt, ids), abs=1e-5)
        assert score.tokens == len(ids) - 1  # everything after [CLS], the closing [SEP] included
        assert score.chars == len(text)


def test_foreign_tokenizer_without_bos_gets_one_prepended(gpt, tokenizer):
    """A GPT-2-style tokenizer adds no specials: its BOS (or EOS) is prepended and only text tokens count."""
    plain = make_tokenizer()
    plain.backend_tokenizer.post_processor = None
    plain.bos_token = "[CLS]"
    text = SENTENCES[3]
    ids = plain(text)["input_ids"]
    assert ids[0] != 2
    (score,) = ev.causal_sentence_scores(gpt, plain, [text], progress=False)
    # The document is closed by [SEP] whether or not the tokenizer's template adds it (a causal model folder's
    # does not: its prompts stay open), so every model is scored on `[CLS] text [SEP]`.
    assert score.tokens == len(ids) + 1
    assert score.logprob == pytest.approx(hand_causal_logprob(gpt, [2] + ids + [3]), abs=1e-5)


def test_batching_and_padding_do_not_change_scores(gpt, bert, tokenizer):
    for fn, model in ((ev.causal_sentence_scores, gpt), (ev.masked_sentence_scores, bert)):
        one = fn(model, tokenizer, SENTENCES, batch_size=1, progress=False)
        many = fn(model, tokenizer, SENTENCES, batch_size=5, progress=False)
        for a, b in zip(one, many):
            assert a.tokens == b.tokens
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)


def test_sliding_window(gpt, tokenizer):
    text = " ".join(SENTENCES[2:6])  # 19 words -> 21 ids
    ids = tokenizer(text)["input_ids"]
    n = len(ids)
    full = hand_causal_logprob(gpt, ids)
    (covering,) = ev.causal_sentence_scores(gpt, tokenizer, [text], max_length=n, progress=False)
    assert covering.logprob == pytest.approx(full, abs=1e-5)

    # stride 1: token t sees exactly the `window - 1` tokens before it, an independent per-token reference.
    window = 6
    (slid,) = ev.causal_sentence_scores(gpt, tokenizer, [text], max_length=window, stride=1, progress=False)
    expected = 0.0
    for t in range(1, n):
        context = ids[max(0, t - window + 1) : t + 1]
        with torch.no_grad():
            logits = gpt(torch.tensor([context])).logits[0, -2]
        expected += logits.log_softmax(-1)[ids[t]].item()
    assert slid.tokens == n - 1
    assert slid.logprob == pytest.approx(expected, abs=1e-4)

    # Default stride (half the window): every token still scored once, the total finite and near the full score.
    (half,) = ev.causal_sentence_scores(gpt, tokenizer, [text], max_length=8, progress=False)
    assert half.tokens == n - 1 and math.isfinite(half.logprob)
    assert abs(half.logprob - full) < 0.1 * abs(full)


def test_causal_windows_cover_each_token_once():
    ids = list(range(50))
    for max_length, stride in ((50, None), (16, None), (16, 5), (16, 15), (7, 1)):
        scored = []
        for window, first in ev.causal_windows(ids, max_length, stride):
            assert len(window) <= max_length and first >= 1
            scored += window[first:]
        assert scored == ids[1:]
    with pytest.raises(ValueError, match="stride"):
        list(ev.causal_windows(ids, 16, 16))


# ------------------------------------------------------------------------------------------------- masked


def test_pll_matches_one_mask_per_forward(bert, tokenizer):
    scores = ev.masked_sentence_scores(bert, tokenizer, SENTENCES, progress=False)
    for text, score in zip(SENTENCES, scores):
        ids = tokenizer(text)["input_ids"]
        assert score.tokens == len(ids) - 2  # [CLS] and [SEP] are not scored
        assert score.logprob == pytest.approx(hand_pll(bert, ids, tokenizer.mask_token_id), abs=1e-5)


def test_pll_falls_back_when_head_shortcut_does_not_apply(bert, tokenizer):
    """A head that moves logits across positions (as a shifted, GPT-BERT-style head might) breaks the
    project-only-the-masked-position shortcut: the first-batch check must catch it and use full logits."""

    class ShiftedLogits(BertForMaskedLM):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.logits = torch.roll(out.logits, shifts=1, dims=1)
            return out

    shifted = ShiftedLogits(bert.config).eval()
    shifted.load_state_dict(bert.state_dict())
    scores = ev.masked_sentence_scores(shifted, tokenizer, SENTENCES[:3], batch_size=4, progress=False)
    for text, score in zip(SENTENCES[:3], scores):
        ids = tokenizer(text)["input_ids"]
        assert score.logprob == pytest.approx(hand_pll(shifted, ids, tokenizer.mask_token_id), abs=1e-5)


def test_pll_window_for_long_texts_is_finite(bert, tokenizer):
    text = " ".join(SENTENCES)
    ids = tokenizer(text)["input_ids"]
    (windowed,) = ev.masked_sentence_scores(bert, tokenizer, [text], max_length=10, progress=False)
    assert windowed.tokens == len(ids) - 2 and math.isfinite(windowed.logprob)


def test_scoring_restores_train_mode(gpt, tokenizer):
    gpt.train()
    try:
        ev.causal_sentence_scores(gpt, tokenizer, SENTENCES[:1], progress=False)
        assert gpt.training
    finally:
        gpt.eval()


# ------------------------------------------------------------------------------------------------- metrics


def test_bits_per_char_is_nats_over_ln2_over_chars(gpt, bert, tokenizer):
    scores = ev.causal_sentence_scores(gpt, tokenizer, SENTENCES, progress=False)
    nll = -sum(s.logprob for s in scores)
    chars = sum(len(t) for t in SENTENCES)
    tokens = sum(s.tokens for s in scores)
    m = ev.language_model_metrics(gpt, tokenizer, SENTENCES, kind="causal", progress=False)
    assert m["bits_per_char"] == pytest.approx(nll / math.log(2) / chars, rel=1e-6)
    assert m["bits_per_word"] == pytest.approx(nll / math.log(2) / sum(len(t.split()) for t in SENTENCES), rel=1e-6)
    assert m["perplexity"] == pytest.approx(math.exp(nll / tokens), rel=1e-6)
    assert m["chars"] == chars and m["tokens"] == tokens

    masked = ev.language_model_metrics(bert, tokenizer, SENTENCES, kind="masked", progress=False)
    assert {"pseudo_bits_per_char", "pseudo_perplexity"} <= masked.keys() and "bits_per_char" not in masked


# ------------------------------------------------------------------------------------------------- minimal pairs


def test_ties_count_as_wrong_and_per_phenomenon_counts(gpt, bert, tokenizer):
    pairs = [
        {"good": SENTENCES[0], "bad": SENTENCES[0], "phenomenon": "tie"},
        {"good": SENTENCES[4], "bad": SENTENCES[5], "phenomenon": "agreement"},
        {"good": SENTENCES[5], "bad": SENTENCES[4], "phenomenon": "agreement"},
    ]
    for kind, model in (("causal", gpt), ("masked", bert)):
        res = ev.score_minimal_pairs(model, tokenizer, pairs, kind=kind, progress=False)
        assert res["per_phenomenon"]["tie"] == {"accuracy": 0.0, "correct": 0, "ties": 1, "total": 1}
        agreement = res["per_phenomenon"]["agreement"]
        assert agreement["total"] == 2 and agreement["correct"] == 1  # the same pair both ways: exactly one right
        assert res["total"] == 3 and res["correct"] == 1 and res["accuracy"] == pytest.approx(1 / 3)
        assert res["pairs_per_second"] > 0


def test_strip_final_danda(gpt, tokenizer):
    assert ev.remove_final_danda("बच्चा तकिये बनाता है।") == "बच्चा तकिये बनाता है"
    assert ev.remove_final_danda("बच्चा तकिये बनाता है । ") == "बच्चा तकिये बनाता है"
    assert ev.remove_final_danda("राजा का दरबार") == "राजा का दरबार"
    # With the option on, the pair is decided by the scores of the sentences without their final danda.
    pair = [{"good": SENTENCES[0], "bad": SENTENCES[1]}]
    stripped = ev.score_minimal_pairs(gpt, tokenizer, pair, strip_final_danda=True, progress=False)
    good, bad = ev.causal_sentence_scores(gpt, tokenizer, [s.rstrip("।") for s in SENTENCES[:2]], progress=False)
    assert stripped["correct"] == int(good.logprob > bad.logprob) and stripped["final_danda"] == "removed"


def test_load_jsonl_tsv_csv(tmp_path):
    jsonl = tmp_path / "pairs.jsonl"
    lines = [json.dumps({"good": "a", "bad": "b", "phenomenon": "p1"}), "", json.dumps({"good": "c", "bad": "d"})]
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert ev.load_minimal_pairs(jsonl) == [
        {"good": "a", "bad": "b", "phenomenon": "p1"},
        {"good": "c", "bad": "d", "phenomenon": "all"},
    ]
    assert len(ev.load_minimal_pairs(jsonl, limit=1)) == 1

    tsv = tmp_path / "hin.tsv"
    tsv.write_text("sen\tverb\twrong_sen\tphenomenon\nलड़की ने किताब पढ़ी\tपढ़ी\tलड़की ने किताब पढ़ती\tSV-G\n", encoding="utf-8")
    assert ev.load_minimal_pairs(tsv) == [{"good": "लड़की ने किताब पढ़ी", "bad": "लड़की ने किताब पढ़ती", "phenomenon": "SV-G"}]

    csv_file = tmp_path / "blimp.csv"
    csv_file.write_text('sentence_good,sentence_bad,UID\n"x, y",z,anaphor\n', encoding="utf-8")
    assert ev.load_minimal_pairs(csv_file) == [{"good": "x, y", "bad": "z", "phenomenon": "anaphor"}]


def test_loader_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text(json.dumps({"good": "a", "bad": "b"}) + "\n" + json.dumps({"good": "c"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl:2: missing key 'bad'"):
        ev.load_minimal_pairs(bad)
    table = tmp_path / "broken.tsv"
    table.write_text("sen\tphenomenon\nx\tp\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.tsv:2: missing key 'bad'"):
        ev.load_minimal_pairs(table)
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"garbage\.jsonl:1: invalid JSON"):
        ev.load_minimal_pairs(garbage)
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        ev.load_minimal_pairs(tmp_path / "missing.jsonl")


# ------------------------------------------------------------------------------------------------- evaluate_model


def test_detect_kinds():
    assert ev.detect_kinds({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}) == {"causal": "causal"}
    assert ev.detect_kinds({"model_type": "bert", "architectures": ["BertForMaskedLM"]}) == {"masked": "masked"}
    assert ev.detect_kinds({"model_type": "bert"}) == {"masked": "masked"}
    assert ev.detect_kinds({"model_type": "llama"}) == {"causal": "causal"}
    assert ev.detect_kinds({"model_type": "hybrid_gpt_bert"}) == {"decoder": "causal", "encoder": "masked"}


def test_evaluate_model_on_saved_folders(saved):
    texts = SENTENCES[2:]
    pairs = [{"good": SENTENCES[4], "bad": SENTENCES[5], "phenomenon": "p"}]
    gpt = ev.evaluate_model(saved / "gpt", eval_texts=texts, minimal_pairs=pairs, progress=False)
    assert list(gpt["sections"]) == ["causal"] and gpt["model_type"] == "gpt2"
    section = gpt["sections"]["causal"]
    assert section["class"] == "GPT2LMHeadModel" and math.isfinite(section["language_model"]["bits_per_char"])
    assert section["minimal_pairs"]["total"] == 1
    json.dumps(gpt)  # JSON-serialisable

    bert = ev.evaluate_model(saved / "bert", eval_texts=texts, minimal_pairs=pairs, progress=False)
    assert list(bert["sections"]) == ["masked"]
    assert "pseudo_bits_per_char" in bert["sections"]["masked"]["language_model"]
    json.dumps(bert)


def _write_remote_code_model(folder: Path, gpt) -> None:
    """A checkpoint that only its own Python code can build (like our hybrid): GPT-2 weights under a new type."""
    gpt.save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    (folder / "configuration_toy.py").write_text(
        "from transformers import GPT2Config\n\n\nclass ToyConfig(GPT2Config):\n    model_type = 'toy_hybrid'\n"
    )
    (folder / "modeling_toy.py").write_text(
        "from transformers import GPT2LMHeadModel\n\nfrom .configuration_toy import ToyConfig\n\n\n"
        "class ToyForCausalLM(GPT2LMHeadModel):\n    config_class = ToyConfig\n\n\n"
        "class ToyForMaskedLM(GPT2LMHeadModel):\n    config_class = ToyConfig\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="toy_hybrid",
        architectures=["ToyForCausalLM"],
        auto_map={
            "AutoConfig": "configuration_toy.ToyConfig",
            "AutoModelForCausalLM": "modeling_toy.ToyForCausalLM",
            "AutoModelForMaskedLM": "modeling_toy.ToyForMaskedLM",
        },
    )
    (folder / "config.json").write_text(json.dumps(config))


def test_remote_code_needs_consent_and_both_kinds_are_reported(tmp_path, gpt):
    _write_remote_code_model(tmp_path, gpt)
    with pytest.raises(ValueError, match="trust_remote_code"):
        ev.evaluate_model(tmp_path, eval_texts=SENTENCES, progress=False)
    res = ev.evaluate_model(tmp_path, eval_texts=SENTENCES, kinds="both", trust_remote_code=True, progress=False)
    assert list(res["sections"]) == ["causal", "masked"]
    assert res["sections"]["causal"]["class"] == "ToyForCausalLM"
    assert "pseudo_bits_per_char" in res["sections"]["masked"]["language_model"]


def test_project_hybrid_gets_decoder_and_encoder_sections(tmp_path, tokenizer):
    hybrid = pytest.importorskip("hindi_models.modeling_hybrid", reason="the project hybrid is not in this checkout")
    from hindi_models.configuration_hybrid import HybridGPTBERTConfig

    torch.manual_seed(0)
    config = HybridGPTBERTConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )
    hybrid.HybridGPTBERTModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    res = ev.evaluate_model(tmp_path, eval_texts=SENTENCES, minimal_pairs=[{"good": "a", "bad": "b"}], progress=False)
    assert {name: s["kind"] for name, s in res["sections"].items()} == {"decoder": "causal", "encoder": "masked"}
    assert "bits_per_char" in res["sections"]["decoder"]["language_model"]
    assert "pseudo_bits_per_char" in res["sections"]["encoder"]["language_model"]

    encoder = hybrid.HybridGPTBERTForMaskedLM.from_pretrained(tmp_path).eval()
    (score,) = ev.masked_sentence_scores(encoder, tokenizer, SENTENCES[:1], progress=False)
    ids = tokenizer(SENTENCES[0])["input_ids"]
    assert score.logprob == pytest.approx(hand_pll(encoder, ids, tokenizer.mask_token_id), abs=1e-5)


# ------------------------------------------------------------------------------------------------- CLI


def _parse(argv):
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_writes_results_json(saved, tmp_path, capsys):
    texts = tmp_path / "val.txt"
    texts.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "\n".join(json.dumps({"good": g, "bad": b, "phenomenon": "p"}) for g, b in [SENTENCES[4:6], SENTENCES[:2]]),
        encoding="utf-8",
    )
    out = tmp_path / "results.json"
    args = _parse(["--model", str(saved / "gpt"), "--eval-text", str(texts), "--minimal-pairs", str(pairs),
                   "--output", str(out), "--max-texts", "3", "--quiet"])
    assert cli.run(args) == 0
    results = json.loads(out.read_text())
    section = results["sections"]["causal"]
    assert section["language_model"]["texts"] == 3 and section["minimal_pairs"]["total"] == 2
    assert "bits/char" in capsys.readouterr().out


def test_cli_missing_model_is_one_line_error(tmp_path, capsys):
    code = cli.main(["--model", str(tmp_path / "no_such_model"), "--shared-data", str(tmp_path), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hindi-lm: error:") and "no_such_model" in err and "\n" not in err


# ------------------------------------------------------------------------------------------------- real data


@pytest.mark.skipif(
    not (SHARED_DATA / "bhs_hindi_minimal_pairs" / "pairs.public.jsonl").is_file(),
    reason=f"shared data not found at {SHARED_DATA} (set HINDI_MODELS_SHARED_DATA)",
)
def test_real_shared_pairs(gpt, tokenizer):
    pairs = ev.load_minimal_pairs(SHARED_DATA / "bhs_hindi_minimal_pairs" / "pairs.public.jsonl", limit=50)
    assert len(pairs) == 50 and all(p["phenomenon"].startswith("bhs_hindi/") for p in pairs)
    assert all(p["good"] != p["bad"] for p in pairs)
    res = ev.score_minimal_pairs(gpt, tokenizer, pairs, progress=False)
    assert res["total"] == 50 and sum(c["total"] for c in res["per_phenomenon"].values()) == 50
    assert 0.0 <= res["accuracy"] <= 1.0
