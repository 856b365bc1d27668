"""`losses.linear_cross_entropy` against cross-entropy on the full logits."""

import pytest
import torch
import torch.nn.functional as F

from hindi_models.losses import linear_cross_entropy


def _problem(rows=37, width=16, vocab=50):
    torch.manual_seed(0)
    hidden = torch.randn(rows, width, requires_grad=True)
    weight = (torch.randn(vocab, width) * 0.3).requires_grad_()
    targets = torch.randint(0, vocab, (rows,))
    targets[::5] = -100
    return hidden, weight, targets


def _grads(loss, hidden, weight):
    hidden.grad = weight.grad = None
    (loss * 3.0).backward()  # a non-unit upstream gradient
    return loss.detach(), hidden.grad.clone(), weight.grad.clone()


@pytest.mark.parametrize("num_items", [None, 61])
@pytest.mark.parametrize("chunk_rows", [1, 8, 1000])
def test_fp32_equals_full_logits(num_items, chunk_rows):
    """In fp32, any chunking gives the full-logits loss and gradients (mean, or sum over `num_items_in_batch`)."""
    hidden, weight, targets = _problem()
    reduction = "mean" if num_items is None else "sum"
    full = F.cross_entropy(hidden @ weight.t(), targets, reduction=reduction) / (num_items or 1)
    expected = _grads(full, hidden, weight)
    got = _grads(linear_cross_entropy(hidden, weight, targets, num_items, chunk_rows=chunk_rows), hidden, weight)
    for a, b in zip(expected, got):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)


def test_bf16_autocast_is_as_close_to_fp32_as_the_stock_path():
    """Under bf16 autocast the logits are bf16 and upcast for the softmax, as the stock loss does: the loss and
    gradients are no further from the fp32 values than the stock autocast path's are (bf16 noise, stated: 2x)."""
    hidden, weight, targets = _problem(rows=64, width=32, vocab=300)
    exact = _grads(F.cross_entropy(hidden @ weight.t(), targets), hidden, weight)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stock = _grads(F.cross_entropy((hidden @ weight.t()).float(), targets), hidden, weight)
        chunked = _grads(linear_cross_entropy(hidden, weight, targets, chunk_rows=16), hidden, weight)
    assert chunked[1].dtype == hidden.dtype and chunked[2].dtype == weight.dtype
    for e, s, c in zip(exact, stock, chunked):
        stock_error, chunked_error = (s - e).abs().max().item(), (c - e).abs().max().item()
        assert 0 < stock_error and chunked_error <= 2 * stock_error


def test_all_targets_ignored_gives_zero_loss_and_gradients():
    hidden, weight, targets = _problem()
    loss, grad_hidden, grad_weight = _grads(linear_cross_entropy(hidden, weight, torch.full_like(targets, -100)),
                                            hidden, weight)
    assert loss.item() == 0 and not grad_hidden.any() and not grad_weight.any()
