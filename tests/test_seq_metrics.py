"""Sequence metrics against independent computations; the text task's data."""

import math

import numpy as np
import pytest
import torch
from gbench_plugins.common.pairs import kl
from gbench_plugins.metrics.bleu import BLEU, SelfBLEU
from gbench_plugins.metrics.divergences import KLForward, KLReverse
from gbench_plugins.metrics.likelihood import EntropyP, NLLDiv, NLLOracle, NLLTest
from gbench_plugins.metrics.pairs import model_joint, task_joint
from gbench_plugins.models.sequence import LSTMModel, TabularModel
from gbench_plugins.tasks.pairs import PairsTask
from gbench_plugins.tasks.text import TextTask

from benchmark_core.contract import EvalContext
from benchmark_core.contract.budgets import PROFILES
from benchmark_core.contract.errors import UsageError


def ctx(step=0):
    return EvalContext(PROFILES["smoke"], torch.device("cpu"), step, objective=None)


@torch.no_grad()
def test_exact_kls_and_entropy_on_pairs_match_the_tables():
    torch.manual_seed(0)
    task = PairsTask(k=4)
    model = TabularModel(task, init_scale=1.0)
    p, q = task_joint(task), model_joint(model, task)
    fwd = KLForward().compute(model, task, ctx())["kl_forward"]
    rev = KLReverse().compute(model, task, ctx())["kl_reverse"]
    assert math.isclose(fwd.value, kl(p, q), rel_tol=1e-6) and math.isnan(fwd.stderr)
    assert math.isclose(rev.value, kl(q, p), rel_tol=1e-6)
    ent = EntropyP().compute(model, task, ctx())
    assert math.isclose(ent["entropy_p"].value, -(p * np.log(p)).sum(), rel_tol=1e-6)
    assert math.isclose(ent["entropy_rate_p"].value, ent["entropy_p"].value / 2)


@torch.no_grad()
def test_monte_carlo_kls_on_text_are_consistent_with_the_likelihood_metrics():
    task = TextTask(vocab=50, length=6, n_train=10, n_test=4000, seed=2)
    torch.manual_seed(0)
    model = LSTMModel(task)
    c = ctx(7)
    out = {}
    for metric in (NLLTest(), NLLOracle(), NLLDiv(), EntropyP(), KLForward(), KLReverse()):
        out.update(metric.compute(model, task, c))
    # KL[P‖Q] = NLL-test − H(P) and KL[Q‖P] = NLL-oracle − NLL-div, on the same samples.
    assert math.isclose(
        out["kl_forward"].value, out["nll_test"].value - out["entropy_p"].value, rel_tol=1e-6
    )
    assert math.isclose(
        out["kl_reverse"].value, out["nll_oracle"].value - out["nll_div"].value, rel_tol=1e-5
    )
    assert out["kl_forward"].stderr > 0 and out["kl_reverse_per_token"].value > 0
    assert math.isclose(out["nll_test_per_token"].value, out["nll_test"].value / 6)


@torch.no_grad()
def test_temperatures_add_tagged_values_and_lower_temperature_lowers_entropy():
    task = TextTask(vocab=50, length=6, n_train=10, n_test=600, seed=2)
    torch.manual_seed(0)
    model = LSTMModel(task)
    c = ctx(3)
    div = NLLDiv(temperatures=[0.5, 2.0]).compute(model, task, c)
    assert set(div) == {
        "nll_div",
        "nll_div@T=0.5",
        "nll_div@T=2",
        "nll_div_per_token",
        "nll_div_per_token@T=0.5",
        "nll_div_per_token@T=2",
    }
    assert div["nll_div@T=0.5"].value < div["nll_div"].value < div["nll_div@T=2"].value
    orc = NLLOracle(temperatures=[0]).compute(model, task, c)
    assert "nll_oracle@T=0" in orc and math.isnan(orc["nll_oracle@T=0"].stderr) is False
    bleu = BLEU(temperatures=[0.5]).compute(model, task, c)
    sb = SelfBLEU(temperatures=[0.5]).compute(model, task, c)
    assert 0 <= bleu["bleu"].value <= 1 and "bleu@T=0.5" in bleu
    assert sb["self_bleu@T=0.5"].value > sb["self_bleu"].value  # colder: less diverse
    with pytest.raises(UsageError, match="temperatures must be numbers >= 0"):
        NLLOracle(temperatures=[-1])


def test_text_task_has_separate_seeded_sets_and_exact_log_p():
    a = TextTask(vocab=30, length=5, n_train=200, n_test=200, seed=1)
    b = TextTask(vocab=30, length=5, n_train=200, n_test=200, seed=1)
    assert torch.equal(a.train, b.train) and a.fingerprint == b.fingerprint
    assert not torch.equal(a.train, a.test)
    # The held-out set's log P kept from the sampling pass is the exact, rescored one.
    torch.testing.assert_close(a.log_prob(a.test), a.test_log_prob(), rtol=1e-5, atol=1e-4)
    rate = EntropyP().compute(None, a, ctx())["entropy_rate_p"]
    assert 0 < rate.value < math.log(30) and rate.stderr > 0
    assert TextTask(vocab=30, length=5, n_train=2, n_test=2, seed=2).fingerprint != a.fingerprint


@pytest.mark.parametrize("std", [1.0, 40.0])  # 40: logits large enough to need the max shift
def test_no_grad_scoring_matches_the_differentiable_path(std):
    from gbench_plugins.common.autoregressive import LSTMCore

    core = LSTMCore(300, 8, 8, init="normal", std=std, generator=torch.Generator().manual_seed(0))
    x = core.sample(200, length=6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fast = core.token_log_probs(x)
    slow = core.token_log_probs(x).detach()
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-4)


def test_reverse_kl_with_per_token_costs_lowers_kl_reverse_on_a_small_text_task():
    from gbench_plugins.objectives.divergences import ReverseKL

    from benchmark_core.contract.budgets import Budget

    task = TextTask(vocab=12, length=4, n_train=10, n_test=10, seed=3)
    torch.manual_seed(0)
    model = LSTMModel(task, emb=8, hidden=16)
    budget = Budget("t", steps=150, batch_size=128, n_eval=4000, checkpoints=1, log_every=50)
    c = EvalContext(budget, torch.device("cpu"), 0, objective=None)
    with torch.no_grad():
        before = KLReverse().compute(model, task, c)["kl_reverse"].value
    objective = ReverseKL(lr=0.02)
    objective.setup(model, task, budget)
    for i in range(budget.steps):
        objective.step(task.train[:1].expand(128, -1), i)
    c = EvalContext(budget, torch.device("cpu"), 1, objective=None)
    with torch.no_grad():
        after = KLReverse().compute(model, task, c)["kl_reverse"].value
    assert after < 0.5 * before, (before, after)
