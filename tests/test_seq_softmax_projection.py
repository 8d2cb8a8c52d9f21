"""`log_softmax_at`: the fused output layer equals linear + log_softmax + gather, with the
same gradients, on both the unshifted and the max-shifted exp path, in ragged blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from gbench_plugins.common import softmax_projection
from gbench_plugins.common.softmax_projection import (
    exp_is_safe,
    log_softmax_at,
    weighted_log_softmax_sum,
)


def _inputs(scale: float, n: int = 23, hidden: int = 5, vocab: int = 17):
    gen = torch.Generator().manual_seed(0)
    h = torch.rand(n, hidden, generator=gen, dtype=torch.float64) * 2 - 1  # LSTM range
    w = torch.randn(vocab, hidden, generator=gen, dtype=torch.float64) * scale
    b = torch.randn(vocab, generator=gen, dtype=torch.float64) * scale
    t = torch.randint(0, vocab, (n,), generator=gen)
    return h, w, b, t


def _reference(h, w, b, t):
    return -F.cross_entropy(F.linear(h, w, b), t, reduction="none")


@pytest.mark.parametrize("scale", [0.3, 200.0])  # unshifted exp, then overflow-prone logits
@pytest.mark.parametrize("rows", [4, 1000])  # ragged blocks, then one block
def test_values_and_gradients_match_the_reference(scale: float, rows: int) -> None:
    h, w, b, t = _inputs(scale)
    assert exp_is_safe(w, b) == (scale < 1)
    grad_out = torch.randn(h.shape[0], dtype=torch.float64)
    results = []
    for fn in (_reference, lambda *a: log_softmax_at(*a, rows=rows)):
        leaves = [x.clone().requires_grad_() for x in (h, w, b)]
        out = fn(*leaves, t)
        out.backward(grad_out)
        results.append((out.detach(), [x.grad for x in leaves]))
    (ref, ref_grads), (got, got_grads) = results
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-9)
    for g, r in zip(got_grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        torch.testing.assert_close(log_softmax_at(h, w, b, t, rows=rows), ref)


def test_gradient_only_for_inputs_that_need_one() -> None:
    h, w, b, t = _inputs(0.3)
    w.requires_grad_()
    log_softmax_at(h, w, b, t).sum().backward()
    assert w.grad is not None and h.grad is None and b.grad is None


def test_float32_matches_float64_closely(monkeypatch: pytest.MonkeyPatch) -> None:
    h, w, b, t = _inputs(0.3, n=300, hidden=32, vocab=5000)
    monkeypatch.setattr(softmax_projection, "CPU_BLOCK_ELEMENTS", 64 * 5000)
    exact = _reference(h, w, b, t)
    fast = log_softmax_at(h.float(), w.float(), b.float(), t).double()
    torch.testing.assert_close(fast, exact, rtol=1e-6, atol=1e-5)


def test_second_backward_is_refused() -> None:
    h, w, b, t = _inputs(0.3)
    w.requires_grad_()
    out = log_softmax_at(h, w, b, t).sum()
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="once"):
        out.backward()


def test_empty_input() -> None:
    h, w, b, t = _inputs(0.3, n=0)
    assert log_softmax_at(h, w, b, t).shape == (0,)


@pytest.mark.parametrize("scale", [0.3, 200.0])
@pytest.mark.parametrize("rows", [4, 1000])
def test_weighted_sum_and_its_gradient_match_the_reference(scale: float, rows: int) -> None:
    """The fused weighted sum (gradient computed in the forward pass) equals Σ w · log softmax
    with autograd's gradients, for any weights and any gradient of the sum."""
    h, w, b, t = _inputs(scale)
    weights = torch.randn(h.shape[0], dtype=torch.float64)
    results = []
    fused = lambda *a: weighted_log_softmax_sum(*a, weights, rows=rows)  # noqa: E731
    for fn in (lambda *a: (_reference(*a) * weights).sum(), fused):
        leaves = [x.clone().requires_grad_() for x in (h, w, b)]
        out = fn(*leaves, t)
        (out * 2.5).backward()  # the backward pass scales the stored gradient
        results.append((out.detach(), [x.grad for x in leaves]))
    (ref, ref_grads), (got, got_grads) = results
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-9)
    for g, r in zip(got_grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        torch.testing.assert_close(weighted_log_softmax_sum(h, w, b, t, weights), ref)


def test_weighted_sum_gradient_only_where_needed() -> None:
    h, w, b, t = _inputs(0.3)
    w.requires_grad_()
    weighted_log_softmax_sum(h, w, b, t, torch.ones(h.shape[0], dtype=h.dtype)).backward()
    assert w.grad is not None and h.grad is None and b.grad is None
    assert weighted_log_softmax_sum(h[:0], w, b, t[:0], torch.ones(0)).item() == 0.0
