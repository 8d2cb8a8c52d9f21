"""The text oracle: determinism from the seed, N(0, 1) weights, frozen, exact entropy rate."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import torch
from gbench_plugins.common.oracle import (
    Estimate,
    entropy_rate,
    make_oracle,
    sample_with_log_prob,
    weights_fingerprint,
)

_REPO = Path(__file__).resolve().parents[1]


def test_same_seed_same_oracle_and_global_rng_untouched() -> None:
    state = torch.random.get_rng_state()
    a = make_oracle(vocab=40, length=5, seed=3)
    b = make_oracle(vocab=40, length=5, seed=3)
    c = make_oracle(vocab=40, length=5, seed=4)
    assert torch.equal(state, torch.random.get_rng_state())
    for (name, pa), pb, pc in zip(
        a.named_parameters(), b.parameters(), c.parameters(), strict=True
    ):
        assert torch.equal(pa, pb), name
        assert not torch.equal(pa, pc), name
    assert weights_fingerprint(a) == weights_fingerprint(b) != weights_fingerprint(c)


def test_oracle_is_deterministic_across_processes() -> None:
    code = (
        "from gbench_plugins.common.oracle import make_oracle, weights_fingerprint;"
        "print(weights_fingerprint(make_oracle(vocab=300, seed=11)))"
    )
    env = {**os.environ, "PYTHONPATH": str(_REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=_REPO, check=True
    )
    assert out.stdout.strip() == weights_fingerprint(make_oracle(vocab=300, seed=11))


def test_full_size_oracle_has_standard_normal_frozen_weights() -> None:
    oracle = make_oracle()
    assert oracle.vocab == 5000 and oracle.length == 20 and not oracle.training
    assert oracle.embedding.weight.shape == (5001, 32)
    assert oracle.lstm.weight_ih_l0.shape == (128, 32)
    assert oracle.out.weight.shape == (5000, 32)
    weights = torch.cat([p.flatten() for p in oracle.parameters()])
    assert all(not p.requires_grad for p in oracle.parameters())
    # 330k draws: the mean's standard error is 0.0017, the std's 0.0012.
    assert abs(float(weights.mean())) < 0.01
    assert abs(float(weights.std()) - 1.0) < 0.01


def test_sampling_pass_log_prob_equals_second_pass() -> None:
    oracle = make_oracle()
    out = sample_with_log_prob(oracle, 100, generator=torch.Generator().manual_seed(0))
    assert out.tokens.shape == (100, 20)
    torch.testing.assert_close(out.log_prob, oracle.log_prob(out.tokens), atol=2e-4, rtol=1e-6)


def test_entropy_rate_matches_enumeration() -> None:
    oracle = make_oracle(vocab=4, length=3, emb=3, hidden=3, seed=2).double()
    seqs = torch.cartesian_prod(*[torch.arange(4)] * 3)
    logp = oracle.log_prob(seqs)
    exact = float(-(logp.exp() * logp).sum() / 3)
    est = entropy_rate(oracle, 20_000, generator=torch.Generator().manual_seed(1))
    assert isinstance(est, Estimate)
    assert 0 < est.stderr < 0.02
    assert abs(est.mean - exact) < 4 * est.stderr
    assert exact <= math.log(4)


def test_full_oracle_entropy_rate_is_finite_and_below_log_vocab() -> None:
    est = entropy_rate(make_oracle(), 200, generator=torch.Generator().manual_seed(0))
    assert 0 < est.mean < math.log(5000)
    assert est.stderr < 0.1 * est.mean
