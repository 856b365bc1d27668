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


@pytest.mark.parametrize("autocast", [False, True])
def test_bias_gives_the_linear_layers_loss_and_gradients(autocast):
    """With a bias (BERT's MLM decoder), loss and gradients of hidden, weight and bias are those of `F.linear` +
    cross-entropy: equal in fp32, and under bf16 autocast no further from fp32 than the stock path (2x)."""
    hidden, weight, targets = _problem(rows=64, width=32, vocab=300)
    bias = (torch.randn(300) * 0.5).requires_grad_()

    def grads(loss):
        bias.grad = None
        loss_value, grad_hidden, grad_weight = _grads(loss, hidden, weight)
        return loss_value, grad_hidden, grad_weight, bias.grad.clone()

    exact = grads(F.cross_entropy(F.linear(hidden, weight, bias), targets))
    if not autocast:
        chunked = grads(linear_cross_entropy(hidden, weight, targets, chunk_rows=16, bias=bias))
        for e, c in zip(exact, chunked):
            assert torch.allclose(e, c, atol=1e-6, rtol=1e-5)
        return
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stock = grads(F.cross_entropy(F.linear(hidden, weight, bias).float(), targets))
        chunked = grads(linear_cross_entropy(hidden, weight, targets, chunk_rows=16, bias=bias))
    assert chunked[3].dtype == bias.dtype
    for e, s, c in zip(exact, stock, chunked):
        stock_error, chunked_error = (s - e).abs().max().item(), (c - e).abs().max().item()
        assert 0 < stock_error and chunked_error <= 2 * stock_error
