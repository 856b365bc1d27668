"""`hindi_models.dropout`: the cheaper CPU dropout masks, the attention that uses them, and the swap on real models."""

import json

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from hindi_models.dropout import CPUDropout, cpu_dropout, keep_mask, sdpa_cpu_dropout, use_cpu_dropout
from hindi_models.models import build_model
from hindi_models.presets import load_preset

KEEP_ALL = 1e-9  # rounds to 0 of 2**16 levels: every element kept, scale 1/(1 - 1e-9)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_each_quarter_of_a_random_word_keeps_with_probability_one_minus_p(p):
    """Four mask elements share a 64-bit word: each of the four 16-bit quarters keeps at 1 - p (within 5 standard
    errors over 250,000 words), and the rounding of p to 2**-16 is below 1e-5."""
    torch.manual_seed(0)
    lanes = keep_mask((250_000, 4), p).float().mean(0)
    error = 5 * (p * (1 - p) / 250_000) ** 0.5
    assert torch.all((lanes - (1 - p)).abs() < error), lanes
    assert abs(round(p * 65536) / 65536 - p) < 1e-5


def test_masks_follow_the_seed():
    torch.manual_seed(3)
    a = keep_mask((1001,), 0.1)
    torch.manual_seed(3)
    assert torch.equal(a, keep_mask((1001,), 0.1))
    assert not torch.equal(a, keep_mask((1001,), 0.1))
    assert keep_mask((10, 7), 0.0).all() and keep_mask((10, 7), 0.0).shape == (10, 7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_dropout_scales_kept_elements_and_routes_the_gradient_through_the_same_mask(dtype):
    torch.manual_seed(0)
    x = (torch.rand(64, 300) + 0.5).to(dtype).requires_grad_()
    upstream = torch.randn(64, 300).to(dtype)
    y = cpu_dropout(x, 0.25)
    y.backward(upstream)
    kept = y != 0
    assert 0.70 < kept.float().mean() < 0.80
    assert torch.equal(y[kept], (x[kept] * (1 / 0.75)).to(dtype))
    assert torch.equal(x.grad, torch.where(kept, upstream, 0) * (1 / 0.75))
    assert x.grad.dtype == dtype


def test_cpu_dropout_is_the_identity_when_off():
    x = torch.randn(5, 6)
    assert cpu_dropout(x, 0.3, training=False) is x
    assert cpu_dropout(x, 0.0) is x
    assert torch.equal(cpu_dropout(x, 1.0), torch.zeros(5, 6))
    module = CPUDropout(0.3).eval()
    assert module(x) is x and module.p == 0.3


def _qkv():
    torch.manual_seed(0)
    return [torch.randn(2, 3, 9, 8, requires_grad=True) for _ in range(3)]


@pytest.mark.parametrize("mask_kind", ["causal", "bool", "float"])
def test_the_dropout_path_of_the_attention_is_sdpa_when_nothing_is_dropped(mask_kind):
    """With a dropout that keeps everything the eager path runs and gives SDPA's output and gradients (fp32, 1e-5),
    for SDPA's three mask forms: none (causal), bool (True = attend) and additive float."""
    module = torch.nn.Module()
    module.is_causal = True
    mask = None
    if mask_kind != "causal":
        mask = torch.rand(2, 1, 9, 9, generator=torch.Generator().manual_seed(1)) > 0.4
        mask[..., 0] = True
        if mask_kind == "float":
            mask = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
    results = []
    for attention, dropout in ((sdpa_attention_forward, 0.0), (sdpa_cpu_dropout, KEEP_ALL)):
        q, k, v = _qkv()
        out, _ = attention(module, q, k, v, mask, dropout=dropout, scaling=0.3)
        out.backward(torch.ones_like(out))
        results.append([out.detach(), q.grad, k.grad, v.grad])
    for stock, ours in zip(*results):
        assert torch.allclose(stock, ours, atol=1e-5), (stock - ours).abs().max()


def test_the_attention_drops_probabilities_with_keep_masks():
    """Seeded, the attention's dropout is `keep_mask` on the softmax of the causal scores, scaled by 1 / (1 - p)."""
    module = torch.nn.Module()
    q, k, v = _qkv()
    torch.manual_seed(7)
    out, _ = sdpa_cpu_dropout(module, q, k, v, None, dropout=0.5, is_causal=True)
    scores = (q @ k.transpose(-1, -2)) * 8 ** -0.5
    scores = scores.masked_fill(torch.ones(9, 9, dtype=torch.bool).triu(1), float("-inf"))
    torch.manual_seed(7)
    weights = torch.where(keep_mask(scores.shape, 0.5), scores.softmax(-1), 0) * 2
    assert torch.allclose(out, (weights @ v).transpose(1, 2), atol=1e-6)


def test_under_bf16_autocast_the_attention_computes_what_sdpa_computes():
    """SDPA's math path computes the whole attention in fp32 from bf16 inputs and casts the output back; so does the
    dropout path: with nothing dropped its bf16 output is SDPA's (within 1e-3; rounding the scores to bf16, as
    GPT-2's eager attention does under autocast, puts it 1.8x further from fp32 attention than SDPA)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    module = torch.nn.Module()
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 64, 32) * 1.5 for _ in range(3))
    with torch.autocast("cpu", dtype=torch.bfloat16), sdpa_kernel(SDPBackend.MATH):
        q, k, v = q.bfloat16(), k.bfloat16(), v.bfloat16()
        stock, _ = sdpa_attention_forward(module, q, k, v, None, is_causal=True)
        ours, _ = sdpa_cpu_dropout(module, q, k, v, None, dropout=KEEP_ALL, is_causal=True)
    assert ours.dtype == torch.bfloat16
    assert (ours.float() - stock.float()).abs().max() < 1e-3


def test_the_attention_falls_back_to_sdpa_without_dropout():
    module = torch.nn.Module()
    q, k, v = _qkv()
    stock, _ = sdpa_attention_forward(module, q, k, v, None, is_causal=True)
    ours, _ = sdpa_cpu_dropout(module, q, k, v, None, dropout=0.0, is_causal=True)
    assert torch.equal(stock, ours)


@pytest.mark.parametrize("model_type", ["gpt", "bert", "hybrid", "gpt_bert"])
def test_use_cpu_dropout_swaps_every_dropout_and_changes_nothing_saved_or_evaluated(model_type, tmp_path):
    """Every `nn.Dropout` becomes `CPUDropout` (same p, same train/eval mode), the GPT-2 stacks `sdpa_cpu_dropout`;
    eval outputs and the saved config.json are unchanged; training draws other masks than torch's."""
    preset = load_preset("tiny", model_type=model_type)
    torch.manual_seed(0)
    model = build_model(preset, for_pretraining=True)
    ids = torch.randint(5, 200, (2, 16))
    model.eval()
    with torch.no_grad():
        before = model(ids)[0]
    model.save_pretrained(tmp_path / "before")
    stock_dropouts = [(name, m.p) for name, m in model.named_modules() if type(m) is torch.nn.Dropout]
    use_cpu_dropout(model)
    swapped = [(name, m.p) for name, m in model.named_modules() if type(m) is CPUDropout]
    assert swapped == stock_dropouts and len(swapped) >= 7
    assert all(not m.training for m in model.modules())
    with torch.no_grad():
        assert torch.equal(before, model(ids)[0])
    model.save_pretrained(tmp_path / "after")
    assert (json.loads((tmp_path / "before" / "config.json").read_text())
            == json.loads((tmp_path / "after" / "config.json").read_text()))
    implementations = {m.config._attn_implementation for m in model.modules() if hasattr(m, "config")}
    assert "sdpa" not in implementations  # RoFormer (BERT, the hybrid's encoder) is eager-only: its dropout is a module
    assert ("sdpa_cpu_dropout" in implementations) == (model_type != "bert")

    model.train()
    torch.manual_seed(1)
    loss = model(input_ids=ids, labels=ids.clone()).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.get_input_embeddings().weight.grad.abs().sum() > 0


def test_pretrain_uses_the_cpu_masks_unless_told_otherwise(tmp_path):
    """Same seed: with the preset's dropout 0.1 `--stock-dropout` changes the training loss (other masks); with
    dropout 0 the two runs are the same run (nothing else differs)."""
    from training.pretrain import pretrain

    def loss(stock, dropout):
        out = tmp_path / f"run-{stock}-{dropout}"
        metrics = pretrain(model_type="gpt", preset="tiny", output_dir=out, max_steps=3, eval_steps=100, seed=0,
                           report_to="none", disable_tqdm=True, stock_dropout=stock,
                           preset_overrides={"dropout": dropout})
        assert json.loads((out / "training_config.json").read_text())["cpu_dropout_masks"] is not stock
        return metrics["train_loss"]

    assert loss(False, 0.1) != loss(True, 0.1)
    assert loss(False, 0.0) == loss(True, 0.0)
