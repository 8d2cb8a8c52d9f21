"""LSTMCore against an independent, hand-written LSTM and against enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from gbench_plugins.common import autoregressive, softmax_projection
from gbench_plugins.common.autoregressive import LSTMCore, SampleOutput
from scipy import stats


def _manual_logits(model: LSTMCore, x: torch.Tensor) -> torch.Tensor:
    """Teacher-forced logits from the LSTM equations written out, one position at a time."""
    emb = model.embedding.weight.detach().double()
    w_ih = model.lstm.weight_ih_l0.detach().double()
    w_hh = model.lstm.weight_hh_l0.detach().double()
    bias = (model.lstm.bias_ih_l0 + model.lstm.bias_hh_l0).detach().double()
    w_out = model.out.weight.detach().double()
    b_out = model.out.bias.detach().double()
    b, length = x.shape
    h = torch.zeros(b, model.hidden_size, dtype=torch.float64)
    c = torch.zeros_like(h)
    prev = torch.full((b,), model.vocab)
    rows = []
    for n in range(length):
        gates = emb[prev] @ w_ih.T + h @ w_hh.T + bias
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        rows.append(h @ w_out.T + b_out)
        prev = x[:, n]
    return torch.stack(rows, dim=1)


def _manual_log_prob(model: LSTMCore, x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    logp = torch.log_softmax(_manual_logits(model, x) / temperature, dim=-1)
    return logp.gather(2, x.unsqueeze(2)).squeeze(2).sum(dim=1)


def _all_sequences(vocab: int, length: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(vocab), repeat=length)))


def _model(vocab: int, seed: int = 0, std: float = 1.0, **kw: int) -> LSTMCore:
    return LSTMCore(
        vocab, init="normal", std=std, generator=torch.Generator().manual_seed(seed), **kw
    )


def _pooled_chisquare(observed: np.ndarray, expected: np.ndarray) -> float:
    """Chi-square p-value, cells with expected count < 5 pooled into one."""
    small = expected < 5
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


def test_teacher_forcing_matches_manual_lstm() -> None:
    model = _model(7, emb=5, hidden=4, std=0.8)
    x = torch.randint(0, 7, (6, 5), generator=torch.Generator().manual_seed(1))
    ref = _manual_logits(model, x)
    torch.testing.assert_close(model.logits(x).double(), ref, atol=1e-5, rtol=1e-5)
    ref_tok = torch.log_softmax(ref, -1).gather(2, x.unsqueeze(2)).squeeze(2)
    torch.testing.assert_close(model.token_log_probs(x).double(), ref_tok, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.log_prob(x).double(), ref_tok.sum(1), atol=1e-4, rtol=1e-5)


def test_step_interface_reproduces_teacher_forcing() -> None:
    model = _model(9, emb=3, hidden=5)
    x = torch.randint(0, 9, (4, 6), generator=torch.Generator().manual_seed(2))
    token, state, rows = model.initial_token(4), None, []
    for n in range(6):
        logits, state = model.step(token, state)
        rows.append(logits)
        token = x[:, n]
    torch.testing.assert_close(torch.stack(rows, 1), model.logits(x))


def test_probabilities_sum_to_one_over_all_sequences() -> None:
    model = _model(3, emb=4, hidden=4).double()
    seqs = _all_sequences(3, 4)
    with torch.no_grad():
        total = model.log_prob(seqs).exp().sum()
    assert abs(float(total) - 1.0) < 1e-12


def test_chunked_log_prob_equals_unchunked(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(11, emb=4, hidden=3)
    x = torch.randint(0, 11, (5, 7), generator=torch.Generator().manual_seed(3))
    full = model.token_log_probs(x)
    full.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    monkeypatch.setattr(softmax_projection, "CPU_BLOCK_ELEMENTS", 3 * 11)  # 3 rows, ragged end
    with torch.no_grad():
        torch.testing.assert_close(model.token_log_probs(x), full.detach())
    chunked = model.token_log_probs(x)
    torch.testing.assert_close(chunked, full)
    chunked.sum().backward()
    for p, g in zip(model.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g)


def test_log_prob_is_differentiable_and_bos_is_a_parameter() -> None:
    model = LSTMCore(6, 4, 4, generator=torch.Generator().manual_seed(0))
    x = torch.tensor([[0, 1, 2], [1, 1, 0]])
    model.log_prob(x).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    grad_rows = model.embedding.weight.grad.abs().sum(1)
    assert model.embedding.weight.shape[0] == 7
    assert grad_rows[6] > 0  # BOS row is read at position 0
    assert grad_rows[2] == 0 and grad_rows[3] == 0  # never read as inputs (last tokens only)


def test_invalid_inputs_raise() -> None:
    model = _model(5)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        model.log_prob(torch.tensor([[0, 5]]))  # 5 is BOS, not a token
    with pytest.raises(ValueError, match="shape"):
        model.log_prob(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="temperature"):
        model.sample(3, 2, temperature=-1.0)
    with pytest.raises(ValueError, match="length"):
        model.sample(3)
    with pytest.raises(ValueError, match="init"):
        LSTMCore(5, init="xavier")


def test_sampling_frequencies_match_exact_probabilities() -> None:
    vocab, length, n = 3, 3, 60_000
    model = _model(vocab, emb=4, hidden=4, std=0.7)
    seqs = _all_sequences(vocab, length)
    probs = _manual_log_prob(model, seqs).exp().numpy()
    out = model.sample(n, length, generator=torch.Generator().manual_seed(5), return_log_prob=True)
    assert isinstance(out, SampleOutput)
    codes = (out.tokens * torch.tensor([9, 3, 1])).sum(1).numpy()
    freq = np.bincount(codes, minlength=27)
    assert _pooled_chisquare(freq, probs * n) > 1e-3
    # E[TV] <= 0.5 * sum_x sqrt(p(1 - p) / n) <= 0.5 * sqrt(27 / n) ~ 0.011 for n = 60,000.
    assert 0.5 * np.abs(freq / n - probs).sum() < 0.02
    # The log-probs returned by the sampling pass are those of the sampled sequences.
    torch.testing.assert_close(
        out.log_prob.double(), _manual_log_prob(model, out.tokens), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(out.tempered_log_prob, out.log_prob)


def test_tempered_sampling_matches_tempered_conditionals() -> None:
    vocab, length, n, temp = 3, 3, 60_000, 0.5
    model = _model(vocab, emb=4, hidden=4, std=0.7, seed=1)
    seqs = _all_sequences(vocab, length)
    probs_t = _manual_log_prob(model, seqs, temp).exp().numpy()
    assert abs(probs_t.sum() - 1) < 1e-9
    out = model.sample(
        n,
        length,
        temperature=temp,
        generator=torch.Generator().manual_seed(6),
        return_log_prob=True,
    )
    codes = (out.tokens * torch.tensor([9, 3, 1])).sum(1).numpy()
    freq = np.bincount(codes, minlength=27)
    assert _pooled_chisquare(freq, probs_t * n) > 1e-3
    torch.testing.assert_close(
        out.tempered_log_prob.double(), _manual_log_prob(model, out.tokens, temp), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        out.log_prob.double(), _manual_log_prob(model, out.tokens), atol=1e-5, rtol=0
    )


def test_block_sampling_on_a_large_awkward_vocabulary() -> None:
    # vocab 1001 pads to 32 blocks of 32; one position, so the law is a single softmax.
    vocab, n = 1001, 100_000
    model = _model(vocab, emb=4, hidden=8, std=0.3)
    probs = torch.softmax(_manual_logits(model, torch.zeros(1, 1, dtype=torch.long))[0, 0], 0)
    out = model.sample(n, 1, generator=torch.Generator().manual_seed(7), return_log_prob=True)
    freq = np.bincount(out.tokens[:, 0].numpy(), minlength=vocab)
    assert out.tokens.max() < vocab
    assert _pooled_chisquare(freq, probs.numpy() * n) > 1e-3
    torch.testing.assert_close(
        out.log_prob.double(), probs.log()[out.tokens[:, 0]], atol=1e-5, rtol=0
    )


def test_greedy_is_the_zero_temperature_limit() -> None:
    model = _model(20, emb=6, hidden=6, seed=3)
    n, length = 50, 6
    # Independent greedy decoding with the hand-written LSTM.
    x = torch.zeros(n, 0, dtype=torch.long)
    for _ in range(length):
        nxt = _manual_logits(model, torch.cat([x, x.new_zeros(n, 1)], 1))[:, -1].argmax(1)
        x = torch.cat([x, nxt[:, None]], 1)
    greedy = model.sample(n, length, temperature=0.0, return_log_prob=True)
    assert torch.equal(greedy.tokens, x)
    assert torch.all(greedy.tempered_log_prob == 0)
    torch.testing.assert_close(
        greedy.log_prob.double(), _manual_log_prob(model, x), atol=1e-5, rtol=0
    )
    cold = model.sample(n, length, temperature=1e-4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(cold, x)


def test_temperature_orders_the_sampling_entropy() -> None:
    model = _model(50, emb=8, hidden=8, seed=4)
    gen = torch.Generator().manual_seed(0)
    entropy = {}
    for temp in (0.5, 1.0, 2.0):
        out = model.sample(4000, 8, temperature=temp, generator=gen, return_log_prob=True)
        entropy[temp] = float(-out.tempered_log_prob.mean())
        if temp == 1.0:
            torch.testing.assert_close(out.tempered_log_prob, out.log_prob)
    assert entropy[0.5] < entropy[1.0] < entropy[2.0]


def test_sampling_is_reproducible_and_independent_of_chunking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _model(37, emb=4, hidden=4)
    state = torch.random.get_rng_state()
    a = model.sample(101, 5, generator=torch.Generator().manual_seed(9), return_log_prob=True)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    monkeypatch.setattr(autoregressive, "_CPU_CHUNK_ELEMENTS", 7 * 42)  # 7 rows per block
    b = model.sample(101, 5, generator=torch.Generator().manual_seed(9), return_log_prob=True)
    assert torch.equal(a.tokens, b.tokens)
    torch.testing.assert_close(a.log_prob, b.log_prob)
    c = model.sample(101, 5, generator=torch.Generator().manual_seed(10))
    assert not torch.equal(a.tokens, c)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_unshifted_exp_path_agrees_with_max_shifted_path(
    monkeypatch: pytest.MonkeyPatch, temperature: float
) -> None:
    model = _model(300, emb=5, hidden=5, std=0.5)
    kwargs = {"temperature": temperature, "return_log_prob": True}
    fast = model.sample(500, 6, generator=torch.Generator().manual_seed(1), **kwargs)
    monkeypatch.setattr(autoregressive, "_EXP_HEADROOM", 1e9)  # always subtract the max
    safe = model.sample(500, 6, generator=torch.Generator().manual_seed(1), **kwargs)
    assert torch.equal(fast.tokens, safe.tokens)
    torch.testing.assert_close(fast.log_prob, safe.log_prob, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast.tempered_log_prob, safe.tempered_log_prob, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        safe.tempered_log_prob.double(),
        _manual_log_prob(model, safe.tokens, temperature),
        atol=1e-5,
        rtol=0,
    )


def test_large_logits_are_sampled_without_overflow() -> None:
    model = _model(4, emb=3, hidden=3, std=30.0)  # logits of several hundred
    out = model.sample(200, 3, generator=torch.Generator().manual_seed(0), return_log_prob=True)
    assert torch.isfinite(out.log_prob).all()
    torch.testing.assert_close(
        out.log_prob.double(), _manual_log_prob(model, out.tokens), atol=1e-4, rtol=0
    )


def test_float64_model_samples_with_float64_log_probs() -> None:
    model = _model(6, emb=3, hidden=3).double()
    out = model.sample(20, 4, generator=torch.Generator().manual_seed(0), return_log_prob=True)
    assert out.log_prob.dtype == torch.float64
    torch.testing.assert_close(
        out.log_prob, _manual_log_prob(model, out.tokens), atol=1e-10, rtol=0
    )


def test_samples_can_be_scored_with_gradient() -> None:
    # sample() runs under no_grad (not inference_mode), so its tokens can train a model.
    model = LSTMCore(8, 4, 4, length=3, generator=torch.Generator().manual_seed(0))
    tokens = model.sample(5)
    assert tokens.shape == (5, 3)
    model.log_prob(tokens).mean().backward()
    assert model.out.weight.grad is not None


def test_default_init_uses_pytorch_ranges() -> None:
    model = LSTMCore(100, 16, 25, generator=torch.Generator().manual_seed(0))
    assert model.lstm.weight_hh_l0.abs().max() <= 1 / 5
    assert model.out.weight.abs().max() <= 1 / 5
    assert 0.9 < float(model.embedding.weight.detach().std()) < 1.1


@pytest.mark.parametrize("per_token", [False, True])
def test_weighted_log_prob_equals_weighted_token_sum(per_token: bool) -> None:
    """The lstm's fused weighted sum and the generic one (tabular) equal Σ w · log Q, with the
    same parameter gradients as autograd through token_log_probs."""
    from gbench_plugins.models.sequence import TabularModel

    from benchmark_core.contract.autoregressive import AutoregressiveModel

    torch.manual_seed(0)
    core = LSTMCore(11, 4, 5, length=6).double()
    task = type("T", (), {"vocab_size": 11, "length": 6})()
    tab = TabularModel(task).double()
    x = torch.randint(0, 11, (7, 6))
    weights = torch.randn(7, 6 if per_token else 1, dtype=torch.float64).squeeze(-1)
    w = weights if per_token else weights[:, None]
    for model in (core, tab):
        ref = (model.token_log_probs(x) * w).sum()
        ref_grads = torch.autograd.grad(ref, list(model.parameters()))
        got = model.weighted_log_prob(x, weights)
        got_grads = torch.autograd.grad(got, list(model.parameters()))
        torch.testing.assert_close(got, ref)
        for g, r in zip(got_grads, ref_grads, strict=True):
            torch.testing.assert_close(g, r)
    assert "weighted_log_prob" in vars(LSTMCore) and isinstance(tab, AutoregressiveModel)
    with pytest.raises(ValueError, match="fit neither"):
        core.weighted_log_prob(x, torch.ones(3))
