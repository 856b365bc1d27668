"""The three architectures: parameter counts, the hybrid's forward, sharing, generation, pipelines, round trips."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertForSequenceClassification,
    BertForTokenClassification,
    pipeline,
)
from transformers.activations import ACT2FN

import hindi_models  # noqa: F401  (registers the hybrid with the Auto classes)
from hindi_models import HybridGPTBERTConfig, HybridGPTBERTForCausalLM, HybridGPTBERTForMaskedLM, HybridGPTBERTModel
from hindi_models.models import build_model, count_parameters
from hindi_models.presets import load_preset

TINY = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=64)


@pytest.mark.parametrize(
    "model_type, expected",
    [("gpt", 110_025_216), ("bert", 110_650_880), ("hybrid", 244_627_968)],
)
def test_base_parameter_counts_at_vocab_32000(model_type, expected):
    with torch.device("meta"):
        model = build_model(load_preset("base", model_type=model_type), vocab_size=32000)
    assert count_parameters(model) == (expected, expected)


def test_hybrid_count_decomposes_into_shared_embedding_two_stacks_and_two_heads():
    with torch.device("meta"):
        hybrid = build_model(load_preset("base", model_type="hybrid"), 32000)
        gpt = build_model(load_preset("base", model_type="gpt"), 32000)
    embedding = 32000 * 768
    encoder = sum(p.numel() for p in hybrid.encoder.parameters()) - embedding
    decoder = sum(p.numel() for p in hybrid.decoder.parameters()) - embedding
    assert decoder == count_parameters(gpt)[0] - embedding
    assert count_parameters(hybrid)[0] == embedding + encoder + decoder + 2 * embedding


def _tiny_hybrid(**overrides):
    torch.manual_seed(0)
    return HybridGPTBERTModel(HybridGPTBERTConfig(**{**TINY, **overrides})).eval()


def _batch():
    torch.manual_seed(1)
    ids = torch.randint(5, 120, (2, 12))
    masked = ids.clone()
    masked[:, 3] = 4
    mlm_labels = torch.full_like(ids, -100)
    mlm_labels[:, 3] = ids[:, 3]
    return ids, masked, mlm_labels


def test_hybrid_loss_is_weighted_sum_of_partial_losses():
    model = _tiny_hybrid(mlm_loss_weight=0.3, clm_loss_weight=0.7, sparse_prediction=True)
    ids, masked, mlm_labels = _batch()
    out = model(ids, labels=ids, mlm_input_ids=masked, mlm_labels=mlm_labels)
    assert out.clm_logits.shape == (2, 12, 120)
    # Training with gradients: the CLM loss comes from the chunked head (no logits), equal to the stock loss on the
    # full logits (what the training forward computes under no_grad), with the same dropout masks.
    model.train()
    torch.manual_seed(5)
    trained = model(ids, labels=ids, mlm_input_ids=masked, mlm_labels=mlm_labels)
    torch.manual_seed(5)
    with torch.no_grad():
        stock = model(ids, labels=ids, mlm_input_ids=masked, mlm_labels=mlm_labels)
    model.eval()
    assert trained.clm_logits is None and trained.clm_loss.requires_grad and stock.clm_logits is not None
    torch.testing.assert_close(trained.clm_loss, stock.clm_loss)
    # ... and so does the sparse MLM loss (the masked positions' head, chunked)
    assert trained.mlm_logits is None and trained.mlm_loss.requires_grad and stock.mlm_logits.shape == (2, 120)
    torch.testing.assert_close(trained.mlm_loss, stock.mlm_loss)
    assert model.config.sparse_prediction and out.mlm_logits.shape == (2, 120)  # only the 2 masked positions
    torch.testing.assert_close(out.loss, 0.3 * out.mlm_loss + 0.7 * out.clm_loss)
    # The sparse MLM loss equals the dense one.
    model.config.sparse_prediction = False
    dense = model(ids, labels=ids, mlm_input_ids=masked, mlm_labels=mlm_labels)
    assert dense.mlm_logits.shape == (2, 12, 120)
    torch.testing.assert_close(dense.mlm_loss, out.mlm_loss)
    torch.testing.assert_close(dense.mlm_logits[:, 3], out.mlm_logits)
    # At initialisation both losses sit near ln(vocab).
    assert abs(out.mlm_loss.item() - torch.log(torch.tensor(120.0)).item()) < 0.5
    assert abs(out.clm_loss.item() - torch.log(torch.tensor(120.0)).item()) < 0.5


def test_hybrid_task_modes_run_one_branch():
    model = _tiny_hybrid()
    ids, masked, mlm_labels = _batch()
    mlm = model(ids, mlm_input_ids=masked, mlm_labels=mlm_labels, task="mlm")
    assert mlm.clm_logits is None and mlm.clm_loss is None
    torch.testing.assert_close(mlm.loss, 0.5 * mlm.mlm_loss)
    clm = model(ids, labels=ids, task="clm")
    assert clm.mlm_logits is None and clm.mlm_loss is None
    torch.testing.assert_close(clm.loss, 0.5 * clm.clm_loss)
    assert model(ids).loss is None  # no labels, no loss
    with pytest.raises(ValueError, match="task must be one of"):
        model(ids, task="both-ish")


def test_hybrid_mlm_branch_reads_the_masked_copy():
    model = _tiny_hybrid()
    ids, masked, mlm_labels = _batch()
    with pytest.raises(ValueError, match="mlm_input_ids"):
        model(ids, mlm_labels=mlm_labels)
    out = model(ids, mlm_input_ids=masked, task="mlm")
    clean = model(ids, task="mlm")
    assert not torch.allclose(out.mlm_logits, clean.mlm_logits)
    # The decoder never sees the masked copy.
    both = model(ids, mlm_input_ids=masked)
    torch.testing.assert_close(both.clm_logits, model(ids, task="clm").clm_logits)


def test_hybrid_shared_embedding_gets_gradient_from_both_losses():
    model = _tiny_hybrid()
    model.train()
    ids, masked, mlm_labels = _batch()
    grads = {}
    for task, kwargs in (("mlm", dict(mlm_input_ids=masked, mlm_labels=mlm_labels)), ("clm", dict(labels=ids))):
        model.zero_grad()
        model(ids, task=task, **kwargs).loss.backward()
        grads[task] = model.embed_tokens.weight.grad.abs().sum().item()
    assert grads["mlm"] > 0 and grads["clm"] > 0
    assert model.encoder.embeddings.word_embeddings.weight is model.embed_tokens.weight
    assert model.decoder.wte.weight is model.embed_tokens.weight


def test_hybrid_shared_embedding_is_stored_once(tmp_path):
    model = _tiny_hybrid()
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "embed_tokens.weight" in keys
    assert "encoder.embeddings.word_embeddings.weight" not in keys and "decoder.wte.weight" not in keys
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        vocab_by_hidden = [k for k in f.keys() if f.get_slice(k).get_shape() == [120, 32]]
    assert sorted(vocab_by_hidden) == ["clm_head.weight", "embed_tokens.weight", "mlm_head.weight"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "hybrid_gpt_bert"
    assert set(config["auto_map"]) >= {"AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoModelForMaskedLM",
                                       "AutoModelForSequenceClassification", "AutoModelForTokenClassification"}
    assert (tmp_path / "configuration_hybrid.py").is_file() and (tmp_path / "modeling_hybrid.py").is_file()


def test_remote_code_files_are_byte_identical_to_the_package(saved_models):
    import hindi_models

    package = os.path.dirname(hindi_models.__file__)
    for name in ("configuration_hybrid.py", "modeling_hybrid.py", "losses.py"):
        with open(os.path.join(package, name), "rb") as a, open(saved_models["hybrid"] / name, "rb") as b:
            assert a.read() == b.read(), name


def test_tied_heads_flag_ties_both_heads_to_the_embedding(tmp_path):
    model = _tiny_hybrid(tie_lm_heads=True)
    assert model.mlm_head.weight is model.embed_tokens.weight is model.clm_head.weight
    assert count_parameters(model)[0] == count_parameters(_tiny_hybrid())[0] - 2 * 120 * 32
    model.save_pretrained(tmp_path)
    reloaded = HybridGPTBERTModel.from_pretrained(tmp_path)
    assert reloaded.clm_head.weight is reloaded.embed_tokens.weight


@pytest.mark.parametrize("tie_lm_heads", [False, True])
def test_trainer_restores_every_hybrid_class_without_a_missing_key_warning(tmp_path, tie_lm_heads):
    """Trainer (best-model and resume restores) loads a checkpoint with strict=False and warns about missing keys
    unless they are exactly `_keys_to_ignore_on_save`, then re-ties: the shared embedding's other names must be."""
    from safetensors.torch import load_file

    from hindi_models import HybridGPTBERTForSequenceClassification, HybridGPTBERTForTokenClassification

    config = HybridGPTBERTConfig(**{**TINY, "tie_lm_heads": tie_lm_heads, "num_labels": 3})
    for model_class in (HybridGPTBERTModel, HybridGPTBERTForCausalLM, HybridGPTBERTForMaskedLM,
                        HybridGPTBERTForSequenceClassification, HybridGPTBERTForTokenClassification):
        torch.manual_seed(0)
        model = model_class(config)
        model.save_pretrained(tmp_path / model_class.__name__)
        saved = load_file(str(tmp_path / model_class.__name__ / "model.safetensors"))
        torch.manual_seed(1)
        fresh = model_class(config)
        result = fresh.load_state_dict(saved, strict=False)
        assert result.missing_keys and set(result.missing_keys) == set(fresh._keys_to_ignore_on_save), model_class
        assert not result.unexpected_keys
        for name, tensor in model.state_dict().items():
            assert torch.equal(fresh.state_dict()[name], tensor), (model_class, name)


def test_head_classes_load_branches_of_a_full_checkpoint(tmp_path):
    model = _tiny_hybrid()
    model.save_pretrained(tmp_path)
    ids, masked, _ = _batch()
    causal = HybridGPTBERTForCausalLM.from_pretrained(tmp_path).eval()
    masked_lm = HybridGPTBERTForMaskedLM.from_pretrained(tmp_path).eval()
    assert not hasattr(causal, "encoder") and not hasattr(masked_lm, "decoder")
    assert torch.equal(causal(ids).logits, model(ids, task="clm").clm_logits)
    assert torch.equal(masked_lm(masked).logits, model(ids, mlm_input_ids=masked, task="mlm").mlm_logits)


@pytest.mark.parametrize("model_type", ["gpt", "hybrid"])
def test_generate_with_and_without_cache_agree(model_type, saved_models, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(saved_models[model_type], trust_remote_code=True).eval()
    prompt = tokenizer("भारत एक", add_special_tokens=False, return_tensors="pt").input_ids
    prompt = torch.cat([torch.tensor([[tokenizer.cls_token_id]]), prompt], dim=1)
    kwargs = dict(max_new_tokens=20, min_new_tokens=20, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    cached = model.generate(prompt, use_cache=True, **kwargs)
    uncached = model.generate(prompt, use_cache=False, **kwargs)
    assert cached.shape == (1, prompt.shape[1] + 20)
    assert torch.equal(cached, uncached)
    sampling = dict(max_new_tokens=10, do_sample=True, temperature=0.8, top_k=50, top_p=0.95)
    torch.manual_seed(3)
    first = model.generate(prompt, **sampling)
    torch.manual_seed(3)
    assert torch.equal(first, model.generate(prompt, **sampling))


def test_gpt_config_uses_the_tokenizer_special_ids(saved_models):
    config = json.loads((saved_models["gpt"] / "config.json").read_text())
    assert config["model_type"] == "gpt2"
    assert (config["pad_token_id"], config["bos_token_id"], config["eos_token_id"]) == (0, 2, 3)
    assert 50256 not in (config["pad_token_id"], config["bos_token_id"], config["eos_token_id"])
    bert = json.loads((saved_models["bert"] / "config.json").read_text())
    assert (bert["model_type"], bert["type_vocab_size"], bert["layer_norm_eps"]) == ("roformer", 2, 1e-12)


@pytest.mark.parametrize("model_type", ["gpt", "hybrid"])
def test_text_generation_pipeline(model_type, saved_models):
    generate = pipeline("text-generation", model=str(saved_models[model_type]), trust_remote_code=True)
    out = generate("भारत एक", max_new_tokens=8, do_sample=True, temperature=0.8, top_k=50, top_p=0.95)
    assert out[0]["generated_text"].startswith("भारत एक")
    assert len(out[0]["generated_text"]) > len("भारत एक")


@pytest.mark.parametrize("model_type", ["bert", "hybrid"])
def test_fill_mask_pipeline(model_type, saved_models):
    fill = pipeline("fill-mask", model=str(saved_models[model_type]), trust_remote_code=True)
    out = fill("भारत एक [MASK] है।", top_k=3)
    assert len(out) == 3 and all("[MASK]" not in row["sequence"] for row in out)
    assert out[0]["score"] >= out[1]["score"] >= out[2]["score"]


def test_bert_folder_fine_tunes_with_stock_heads(saved_models, tokenizer):
    batch = tokenizer(["भारत एक देश है।", "आज बारिश हुई।"], padding=True, return_tensors="pt")
    seq = BertForSequenceClassification.from_pretrained(saved_models["bert"], num_labels=3)
    out = seq(**batch, labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3) and out.loss.item() > 0
    tok = BertForTokenClassification.from_pretrained(saved_models["bert"], num_labels=5)
    labels = torch.zeros_like(batch.input_ids)
    assert tok(**batch, labels=labels).logits.shape == (*batch.input_ids.shape, 5)


def test_hybrid_folder_fine_tunes_with_registered_heads(saved_models, tokenizer):
    batch = tokenizer(["भारत एक देश है।", "आज बारिश हुई।"], padding=True, return_tensors="pt")
    seq = AutoModelForSequenceClassification.from_pretrained(saved_models["hybrid"], num_labels=3)
    assert type(seq).__name__ == "HybridGPTBERTForSequenceClassification"
    out = seq(**batch, labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)
    out.loss.backward()
    assert seq.embed_tokens.weight.grad is not None
    tok = AutoModelForTokenClassification.from_pretrained(saved_models["hybrid"], num_labels=5)
    out = tok(**batch, labels=torch.zeros_like(batch.input_ids))
    assert out.logits.shape == (*batch.input_ids.shape, 5) and torch.isfinite(out.loss)


ROUND_TRIP = textwrap.dedent(
    """
    import importlib.abc, sys
    class BlockPackage(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("hindi_models", "training"):
                raise ImportError(f"{name} is blocked in this test")
    sys.meta_path.insert(0, BlockPackage())
    try:
        import hindi_models
        raise SystemExit("hindi_models should not be importable here")
    except ImportError:
        pass
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM
    folders, expected = sys.argv[1].split(","), load_file(sys.argv[2])
    ids = expected["input_ids"]
    loaders = {"gpt": [AutoModelForCausalLM], "bert": [AutoModelForMaskedLM],
               "hybrid": [AutoModelForCausalLM, AutoModelForMaskedLM, AutoModel]}
    for folder in folders:
        model_type = folder.rsplit("/", 1)[-1]
        for auto in loaders[model_type]:
            model = auto.from_pretrained(folder, trust_remote_code=(model_type == "hybrid")).eval()
            with torch.no_grad():
                out = model(ids)
            if auto is AutoModel:
                got = {"causal": out.clm_logits, "masked": out.mlm_logits}
            else:
                got = {"causal" if auto is AutoModelForCausalLM else "masked": out.logits}
            for kind, logits in got.items():
                assert torch.equal(logits, expected[f"{model_type}.{kind}"]), (model_type, auto.__name__, kind)
            print("ok", model_type, auto.__name__, type(model).__name__)
    """
)


def test_fresh_process_round_trip_is_bitwise_identical(saved_models, tmp_path):
    """Save → load in a new process (HF_HUB_OFFLINE, hindi_models NOT importable) → identical logits."""
    from hindi_models.factory import ModelFactory

    ids = torch.randint(5, 800, (2, 16), generator=torch.Generator().manual_seed(0))
    expected = {"input_ids": ids}
    factory = ModelFactory("tiny")
    with torch.no_grad():
        for model_type, folder in saved_models.items():
            model = factory.load_model(folder)
            out = model(ids)
            if model_type == "hybrid":
                expected["hybrid.causal"], expected["hybrid.masked"] = out.clm_logits, out.mlm_logits
            else:
                expected[f"{model_type}.{'causal' if model_type == 'gpt' else 'masked'}"] = out.logits
    save_file({k: v.contiguous() for k, v in expected.items()}, str(tmp_path / "expected.safetensors"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"),
           "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP, ",".join(str(f) for f in saved_models.values()),
         str(tmp_path / "expected.safetensors")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("ok ") == 5
    assert "HybridGPTBERTForCausalLM" in result.stdout and "HybridGPTBERTForMaskedLM" in result.stdout


def test_hybrids_built_from_presets_predict_sparsely_and_still_fill_masks(saved_models):
    """Preset-built hybrids train with sparse MLM logits; the masked-LM head class still returns dense logits."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    assert AutoConfig.from_pretrained(saved_models["hybrid"]).sparse_prediction is True
    masked_lm = AutoModelForMaskedLM.from_pretrained(saved_models["hybrid"])
    assert masked_lm(torch.randint(5, 800, (1, 7))).logits.shape == (1, 7, masked_lm.config.vocab_size)


@pytest.mark.parametrize("positions", ["absolute", "rotary"])
@pytest.mark.parametrize("model_type", ["gpt", "bert", "hybrid", "gpt_bert"])
def test_fsdp_wraps_each_transformer_layer_and_nothing_else(model_type, positions):
    """training/configs/fsdp_gpu.yaml names no classes, so accelerate wraps `_no_split_modules`: it must find every
    name (it refuses a missing one) and wrap the layers only, keeping the tied token embedding in the root unit."""
    import collections
    from pathlib import Path

    import yaml
    from accelerate import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy

    config = yaml.safe_load((Path(__file__).parents[1] / "training/configs/fsdp_gpu.yaml").read_text())
    assert config["fsdp_config"]["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert "fsdp_transformer_layer_cls_to_wrap" not in config["fsdp_config"]
    model = build_model(load_preset("tiny", model_type=model_type, encoder_position_embeddings=positions), 120)
    encoder = "RoFormerLayer" if positions == "rotary" else "BertLayer"
    expected = {"gpt": {"GPT2Block": 2}, "bert": {encoder: 2}, "hybrid": {encoder: 2, "GPT2Block": 2},
                "gpt_bert": {"GPT2Block": 2}}[model_type]
    models = [model]
    if model_type == "hybrid":  # the head classes that hold one stack
        models += [HybridGPTBERTForMaskedLM(model.config), HybridGPTBERTForCausalLM(model.config)]
        expected = [expected, {encoder: 2}, {"GPT2Block": 2}]
    else:
        expected = [expected]
    for one, wanted in zip(models, expected):
        policy = fsdp2_prepare_auto_wrap_policy(
            FullyShardedDataParallelPlugin(fsdp_version=2, auto_wrap_policy="transformer_based_wrap"), one)
        assert collections.Counter(type(m).__name__ for m in one.modules() if policy(m)) == wanted


def _assert_same_grads_and_eval_logits(stock, other, ids, labels, atol):
    """Equal gradients (after a backward on both) and, in eval mode, bitwise-equal logits."""
    for (name, a), b in zip(stock.named_parameters(), other.parameters()):
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=atol), name
    with torch.no_grad():
        assert torch.equal(stock.eval()(input_ids=ids, labels=labels).logits,
                           other.eval()(input_ids=ids, labels=labels).logits)


@pytest.mark.parametrize("positions", ["rotary", "absolute"])
def test_bert_pretraining_forward_scores_masked_positions_only(tmp_path, positions):
    """BERT's pretraining class (`for_pretraining=True`) gives the stock loss and gradients while its head scores only
    the labelled positions; in eval mode it is the stock forward, and it saves and loads as the stock class."""
    from transformers import AutoModelForMaskedLM

    preset = load_preset("tiny", model_type="bert", encoder_position_embeddings=positions)
    torch.manual_seed(0)
    stock = build_model(preset, 120)
    torch.nn.init.normal_(stock.cls.predictions.bias)  # a non-zero decoder bias, so leaving it out would show
    sparse = build_model(preset, 120, for_pretraining=True)
    sparse.load_state_dict(stock.state_dict())
    ids = torch.randint(5, 120, (3, 16))
    labels = torch.full_like(ids, -100)
    labels[:, ::4] = ids[:, ::4]
    losses = []
    for model in (stock.train(), sparse.train()):
        torch.manual_seed(1)  # the same dropout masks
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        losses.append(out)
    assert losses[0].logits.shape == (3, 16, 120) and losses[1].logits is None  # chunked head: no logits
    assert torch.allclose(losses[0].loss, losses[1].loss, atol=1e-6)
    _assert_same_grads_and_eval_logits(stock, sparse, ids, labels, atol=1e-6)
    # Trainer divides this mean loss for gradient accumulation itself (it would not for stock BERT's signature)
    from transformers import Trainer, TrainingArguments
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), report_to=[], use_cpu=True)
    assert Trainer(model=sparse, args=args).model_accepts_loss_kwargs is False
    sparse.save_pretrained(tmp_path)
    stock_name = "RoFormerForMaskedLM" if positions == "rotary" else "BertForMaskedLM"
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [stock_name]
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert type(loaded).__module__.startswith("transformers.") and type(loaded).__name__ == stock_name


def test_gpt_pretraining_forward_gives_the_stock_loss_and_gradients(tmp_path):
    """GPT's pretraining class (`for_pretraining=True`) computes the head and cross-entropy in chunks: the stock loss
    (labels shifted inside, -100 ignored, `num_items_in_batch` honoured) and gradients, no logits; in eval mode it is
    the stock forward; Trainer passes it `num_items_in_batch`; it saves and loads as stock GPT2LMHeadModel."""
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    preset = load_preset("tiny", model_type="gpt")
    torch.manual_seed(0)
    stock = build_model(preset, 120)
    chunked = build_model(preset, 120, for_pretraining=True)
    chunked.load_state_dict(stock.state_dict())
    ids = torch.randint(5, 120, (3, 16))
    labels = ids.clone()
    labels[0, 10:] = -100
    for num_items in (None, torch.tensor(40)):
        outputs = []
        for model in (stock.train(), chunked.train()):
            model.zero_grad()
            torch.manual_seed(1)  # the same dropout masks
            out = model(input_ids=ids, labels=labels, num_items_in_batch=num_items)
            out.loss.backward()
            outputs.append(out)
        assert outputs[1].logits is None
        assert torch.allclose(outputs[0].loss, outputs[1].loss, atol=1e-5), num_items
        _assert_same_grads_and_eval_logits(stock, chunked, ids, labels, atol=1e-5)
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), report_to=[], use_cpu=True)
    assert Trainer(model=chunked, args=args).model_accepts_loss_kwargs is True
    chunked.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["GPT2LMHeadModel"]
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path)).__module__.startswith("transformers.")


@pytest.mark.parametrize("model_type", ["gpt", "gpt_bert", "hybrid"])
def test_gpt_stacks_use_the_fused_tanh_gelu_with_gpt2s_outputs(model_type):
    """GPT-2 stacks built from a preset run `gelu_pytorch_tanh` (one fused kernel) in every MLP: GPT-2's own tanh GELU
    (`gelu_new`, several element-wise kernels) computes the same function within fp32 noise over [-8, 8], where the
    erf GELU differs by over 1e-4 (so the check tells the two approximations apart)."""
    model = build_model(load_preset("tiny", model_type=model_type), 120)
    decoder_config = model.config.decoder_config() if model_type == "hybrid" else model.config
    assert decoder_config.activation_function == "gelu_pytorch_tanh"
    mlps = [module for module in model.modules() if type(getattr(module, "act", None)).__name__ == "GELUTanh"]
    assert len(mlps) == load_preset("tiny").num_layers
    x = torch.linspace(-8, 8, 10_001)
    fused, gpt2 = mlps[0].act(x), ACT2FN["gelu_new"](x)
    assert (fused - gpt2).abs().max().item() < 1e-6
    assert (fused - ACT2FN["gelu"](x)).abs().max().item() > 1e-4
