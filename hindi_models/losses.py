"""Cross-entropy of a linear vocabulary head without the full logits tensor (chunked, fused forward and backward).

A causal LM's head scores every position against the whole vocabulary: at `mini` (vocab 16,000, batch 32 x 128) the
logits are 65M floats, and the stock loss writes them in bf16, upcasts them to fp32, takes a log-softmax and keeps it
for the backward pass, which then writes a gradient of the same size. `linear_cross_entropy` computes the loss and
both gradients chunk by chunk in the forward pass (the approach of Liger's fused linear cross-entropy and of Cut
Cross-Entropy, here in plain PyTorch so it runs on CPU), so only one chunk of logits exists at a time. The numbers are
the stock ones: the logits are computed in the autocast dtype and upcast to fp32 for the softmax, as
`transformers.loss.loss_utils.ForCausalLMLoss` does; the weight's gradient is summed in fp32.
"""

from __future__ import annotations

import torch

CHUNK_ROWS = 512  # positions per chunk: at mini on 2 CPU cores the head takes 146 / 126 / 163 ms at 256 / 512 / 1024


def _compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """The dtype a matmul on `tensor`'s device runs in now (autocast's when it is on)."""
    if torch.is_autocast_enabled(tensor.device.type):
        return torch.get_autocast_dtype(tensor.device.type)
    return tensor.dtype


class _LinearCrossEntropy(torch.autograd.Function):
    """Forward: the loss `sum_i scale_i * CE_i` over the rows whose target is not -100, and the gradients (hidden,
    weight, bias), one chunk of rows at a time; backward: the saved gradients times the upstream one."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, scale, chunk_rows):
        dtype = _compute_dtype(hidden)
        with torch.autocast(hidden.device.type, enabled=False):
            rows = (targets != -100).nonzero().squeeze(1)
            h, w = hidden.detach().to(dtype), weight.detach().to(dtype)
            b = bias.detach().to(dtype) if bias is not None else None
            grad_hidden = torch.zeros_like(hidden, dtype=dtype)
            grad_weight = torch.zeros_like(weight, dtype=torch.float32)
            grad_bias = torch.zeros_like(bias, dtype=torch.float32) if bias is not None else None
            token_losses = torch.zeros(len(targets), dtype=torch.float32, device=hidden.device)
            # Every chunk reuses the same buffers and works on them in place: a fresh [chunk, vocab] tensor per op
            # costs more in page faults than the op itself (2x on the whole head at mini, 2 CPU cores).
            size, upcast = min(chunk_rows, rows.numel()), dtype != torch.float32
            fp32_logits = torch.empty(size, w.shape[0], dtype=torch.float32, device=hidden.device)
            low_logits = torch.empty_like(fp32_logits, dtype=dtype) if upcast else fp32_logits
            chunk_grad_weight = torch.empty_like(w) if upcast else None
            for start in range(0, rows.numel(), chunk_rows):
                index = rows[start:start + chunk_rows]
                n = index.numel()
                h_chunk, t_chunk, s_chunk = h[index], targets[index].unsqueeze(1), scale[index].unsqueeze(1)
                logits, low = fp32_logits[:n], low_logits[:n]
                if b is None:
                    torch.mm(h_chunk, w.t(), out=low)
                else:  # nn.Linear's addmm, in the same dtype
                    torch.addmm(b, h_chunk, w.t(), out=low)
                if upcast:
                    logits.copy_(low)  # the softmax in fp32, as the stock loss upcasts the logits
                row_max = logits.amax(dim=1, keepdim=True)
                target_logits = logits.gather(1, t_chunk)
                norm = logits.sub_(row_max).exp_().sum(dim=1, keepdim=True)
                token_losses[index] = (norm.log() + row_max - target_logits).squeeze(1)
                # d loss / d logits = scale * (softmax - one-hot), written over the logits
                grad_logits = logits.mul_(s_chunk / norm)
                grad_logits.scatter_add_(1, t_chunk, -s_chunk)
                if grad_bias is not None:
                    grad_bias += grad_logits.sum(dim=0)
                if upcast:
                    low.copy_(grad_logits)
                    grad_weight += torch.mm(low.t(), h_chunk, out=chunk_grad_weight)
                else:
                    grad_weight.addmm_(low.t(), h_chunk)
                grad_hidden[index] = low @ w
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.dtypes = hidden.dtype, weight.dtype, bias.dtype if bias is not None else None
        ctx.mark_non_differentiable(token_losses)
        return (token_losses * scale).sum(), token_losses

    @staticmethod
    def backward(ctx, grad_loss, _grad_token_losses):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        hidden_dtype, weight_dtype, bias_dtype = ctx.dtypes
        return ((grad_hidden * grad_loss).to(hidden_dtype), (grad_weight * grad_loss).to(weight_dtype),
                (grad_bias * grad_loss).to(bias_dtype) if grad_bias is not None else None, None, None, None)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         num_items_in_batch: torch.Tensor | int | None = None, token_weights: torch.Tensor | None = None,
                         return_token_losses: bool = False, chunk_rows: int | None = None,
                         bias: torch.Tensor | None = None):
    """Cross-entropy of `hidden @ weight.T (+ bias)` against `targets` (-100 ignored), as `F.cross_entropy` on the
    full logits would give: the mean over scored positions, their sum divided by `num_items_in_batch` when given
    (Trainer's gradient-accumulation convention), or `sum(token_weights * CE)` when `token_weights` is given. `hidden` is
    [..., d], `targets` (and `token_weights`) its leading shape. With `return_token_losses`, also each position's
    cross-entropy (detached, 0 where ignored), flattened. `chunk_rows` positions are scored at a time (default
    `CHUNK_ROWS`). `bias` is the head's output bias (BERT's MLM decoder has one), or None."""
    hidden, targets = hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1).to(hidden.device)
    if token_weights is not None:
        scale = token_weights.reshape(-1).float()
    else:
        if num_items_in_batch is None:
            denominator = (targets != -100).sum().clamp(min=1)
        else:
            denominator = torch.as_tensor(num_items_in_batch, device=hidden.device)
        scale = torch.ones(len(targets), device=hidden.device) / denominator.float()
    loss, token_losses = _LinearCrossEntropy.apply(hidden, weight, bias, targets, scale, chunk_rows or CHUNK_ROWS)
    return (loss, token_losses) if return_token_losses else loss


def causal_lm_loss(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                   num_items_in_batch: torch.Tensor | int | None = None) -> torch.Tensor:
    """A causal LM's loss from its last hidden states and head weight, labels aligned with the inputs and shifted
    here (output k scores label k+1), as `transformers`' `ForCausalLMLoss` does on the full logits."""
    shifted = torch.nn.functional.pad(labels, (0, 1), value=-100)[..., 1:]
    return linear_cross_entropy(hidden, weight, shifted, num_items_in_batch)
