"""Dropout with cheaper random masks for CPU training.

On CPU, `torch.nn.functional.dropout` draws one Mersenne-Twister number per element (`bernoulli_`) and writes the
result with a second kernel. At `small` (batch 32 x 256, dropout 0.1, 2 cores) drawing the masks was 19% of GPT's
training step and of the hybrid's, and the attention-probability dropout also keeps SDPA off its fused (flash) CPU
kernel. `cpu_dropout` draws one 64-bit random word per four elements, compares each 16-bit quarter with a threshold
(so `p` is rounded to a multiple of 2**-16: 0.1 becomes 0.100006) and applies the mask with one `where`: forward and
backward of a [32, 256, 512] bf16 tensor take 13 ms instead of 30 (BENCHMARKS.md).

`use_cpu_dropout(model)` swaps a model's `nn.Dropout` modules for `CPUDropout` (same `p`, nothing saved changes:
dropout has no weights) and its SDPA attention for `sdpa_cpu_dropout`, which is SDPA itself except while training
on CPU with attention dropout, where it computes SDPA's unfused math path in PyTorch ops with these masks. Off CPU
both fall back to the stock kernels (CUDA's fused dropout is already cheap). The masks come from torch's CPU
generator, so a seeded run repeats exactly; they are other masks than `bernoulli_` would draw, so a run is not the
same run as with stock dropout (same keep probability, same scaling).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION_NAME = "sdpa_cpu_dropout"
_LEVELS = 1 << 16  # a mask element is one 16-bit quarter of a random 64-bit word


def keep_mask(shape: torch.Size | tuple, p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool tensor of `shape`, each element True with probability 1 - p (p rounded to a multiple of 2**-16)."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(1 << 63), (1 << 63) - 1)
    threshold = round(p * _LEVELS) - _LEVELS // 2  # int16 quarters are uniform on [-32768, 32767]
    return (words.view(torch.int16)[:n] >= threshold).view(shape)


class _CPUDropout(torch.autograd.Function):
    """y = x * keep / (1 - p), the mask saved for backward (as `native_dropout` does)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        keep = keep_mask(x.shape, p, x.device)
        ctx.save_for_backward(keep)
        ctx.scale = 1.0 / (1.0 - p)
        return torch.where(keep, x, 0).mul_(ctx.scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return torch.where(keep, grad, 0).mul_(ctx.scale), None


def cpu_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """`F.dropout(x, p, training)` with `keep_mask`'s masks on CPU; the stock kernel elsewhere."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p == 1.0:
        return nn.functional.dropout(x, p, training)
    return _CPUDropout.apply(x, p)


class CPUDropout(nn.Dropout):
    """`nn.Dropout` drawing its masks with `cpu_dropout` (keeps `p`, so code reading `module.p` still works)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cpu_dropout(x, self.p, self.training)


def sdpa_cpu_dropout(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                     is_causal: bool | None = None, **kwargs):
    """An attention function for transformers' `AttentionInterface`: SDPA, except while training on CPU with
    attention dropout, where SDPA would leave its fused kernel for the unfused math path and draw its masks with
    `bernoulli_`: there it computes what that math path computes (scores, softmax, dropout and weighted sum in
    fp32, the output cast back to the value dtype) with `cpu_dropout`'s masks. Masks come in SDPA's forms (None for
    plain causal, bool with True = attend, or additive)."""
    q_length, kv_length = query.shape[2], key.shape[2]
    groups = getattr(module, "num_key_value_groups", 1)
    if dropout == 0.0 or query.device.type != "cpu" or groups > 1 or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    scaling = scaling if scaling is not None else query.shape[-1] ** -0.5
    # In fp32 throughout, as SDPA's math path computes on CPU from bf16 inputs, so that only the masks change: GPT-2's
    # eager attention rounds the scores to bf16 (1.65-1.8x further from fp32, tests/test_dropout.py), and bf16
    # probabilities in the weighted sum went with a 0.011-nat higher validation loss (BENCHMARKS.md).
    with torch.autocast(query.device.type, enabled=False):
        scores = torch.matmul(query.float() * scaling, key.float().transpose(-1, -2))
        if attention_mask is None:
            causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
            if causal and q_length > 1:
                future = torch.ones(q_length, kv_length, dtype=torch.bool, device=query.device)
                scores.masked_fill_(future.triu_(1 + kv_length - q_length), torch.finfo(scores.dtype).min)
        elif attention_mask.dtype == torch.bool:
            scores.masked_fill_(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores.add_(attention_mask)
        weights = cpu_dropout(nn.functional.softmax(scores, dim=-1), dropout, training=True)
        output = torch.matmul(weights, value.float()).to(value.dtype)
    return output.transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION_NAME, sdpa_cpu_dropout)
AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def use_cpu_dropout(model: nn.Module) -> nn.Module:
    """Give `model` `CPUDropout` modules and, where it runs SDPA, the `sdpa_cpu_dropout` attention; in place, and
    returned. Weights and the saved config are untouched (dropout has no weights; the attention implementation is
    not written to config.json)."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, CPUDropout(child.p, child.inplace).train(child.training))
    for module in model.modules():
        if isinstance(module, PreTrainedModel) and module.config._attn_implementation == "sdpa":
            module.config._attn_implementation = ATTENTION_NAME
    return model

