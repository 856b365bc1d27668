"""`encoder_position_embeddings: rotary`: BERT becomes a stock RoFormer, the hybrid's encoder a RoFormer stack."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoModelForMaskedLM, RoFormerForMaskedLM, pipeline
from transformers.models.roformer.modeling_roformer import RoFormerModel

from hindi_models.factory import ModelFactory
from hindi_models.models import build_model
from hindi_models.presets import PresetError, load_preset
from test_models import ROUND_TRIP
from test_pretrain import FAST, fast_preset, tokenizer_dir  # noqa: F401 (tokenizer_dir is a fixture)
from training.pretrain import pretrain
from training.report import read_log


def test_rotary_preset_builds_roformer_bert_and_hybrid_encoder():
    bert = build_model(load_preset("tiny", model_type="bert", encoder_position_embeddings="rotary"), 800)
    assert type(bert) is RoFormerForMaskedLM and bert.config.model_type == "roformer"
    assert bert.config.pad_token_id == 0 and bert.config.hidden_size == 64
    hybrid = build_model(load_preset("tiny", model_type="hybrid", encoder_position_embeddings="rotary"), 800)
    assert isinstance(hybrid.encoder, RoFormerModel)
    assert hybrid.encoder.embeddings.word_embeddings.weight is hybrid.embed_tokens.weight
    assert hybrid.decoder.wte.weight is hybrid.embed_tokens.weight
    # RoFormer's fixed sinusoidal table survives the hybrid's init (it is not re-drawn like a learned embedding).
    table = hybrid.encoder.encoder.embed_positions
    assert torch.equal(table.weight, table.create_weight()) and not table.weight.requires_grad


def test_unknown_position_embeddings_value_is_refused():
    with pytest.raises(PresetError, match="encoder_position_embeddings: unknown value 'alibi'"):
        load_preset("tiny", encoder_position_embeddings="alibi")


def test_rotary_encoder_refuses_position_ids():
    hybrid = build_model(load_preset("tiny", model_type="hybrid", encoder_position_embeddings="rotary"), 800)
    ids = torch.randint(5, 800, (1, 8))
    with pytest.raises(ValueError, match="rotary encoder takes no position_ids"):
        hybrid._encode(ids, position_ids=torch.arange(8)[None])


@pytest.mark.parametrize("model_type", ["bert", "hybrid"])
def test_rotary_models_learn_and_save_loadable_folders(model_type, tmp_path, tokenizer_dir):
    out = tmp_path / model_type
    metrics = pretrain(model_type=model_type, preset=fast_preset(encoder_position_embeddings="rotary"),
                       output_dir=out, tokenizer_path=tokenizer_dir, max_steps=40, eval_steps=20, logging_steps=5,
                       **FAST)
    losses = [r["loss"] for r in read_log(tmp_path / f"{model_type}_checkpoints" / "log.jsonl") if "loss" in r]
    assert losses[-1] < losses[0] - 0.5, losses
    assert metrics["validation_mlm_loss"] < 7.0
    config = json.loads((out / "config.json").read_text())
    if model_type == "hybrid":
        assert config["model_type"] == "hybrid_gpt_bert" and config["encoder_position_embeddings"] == "rotary"
    else:
        assert config["model_type"] == "roformer"
    fill = pipeline("fill-mask", model=str(out), trust_remote_code=True)
    assert len(fill("भारत एक [MASK] है।", top_k=3)) == 3
    assert "rotary" in (out / "README.md").read_text()


def test_rotary_folders_round_trip_in_a_fresh_process(tokenizer, tmp_path):
    """Saved rotary BERT and hybrid load without hindi_models (the hybrid through its remote code): same logits."""
    ids = torch.randint(5, 800, (2, 16), generator=torch.Generator().manual_seed(0))
    expected, folders = {"input_ids": ids}, []
    for model_type in ("bert", "hybrid"):
        torch.manual_seed(0)
        factory = ModelFactory(load_preset("tiny", model_type=model_type, encoder_position_embeddings="rotary"),
                               output_root=tmp_path, experiment_name="rot")
        model = factory.create_model(tokenizer=tokenizer, verbose=False).eval()
        folders.append(factory.save_model(model, tokenizer, checkpoint_name=model_type))
        with torch.no_grad():
            out = model(ids)
        if model_type == "hybrid":
            expected["hybrid.causal"], expected["hybrid.masked"] = out.clm_logits, out.mlm_logits
        else:
            expected["bert.masked"] = out.logits
            assert type(AutoModelForMaskedLM.from_pretrained(folders[-1])) is RoFormerForMaskedLM
    save_file({k: v.contiguous() for k, v in expected.items()}, str(tmp_path / "expected.safetensors"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", ROUND_TRIP, ",".join(str(f) for f in folders),
                             str(tmp_path / "expected.safetensors")],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("ok ") == 4, result.stdout
