"""nll_test at temperatures: log Q_T(x) = Σ_n log softmax(logits_n / T)[x_n], exactly."""

import math

import pytest
import torch
from gbench_plugins.common import softmax_projection
from gbench_plugins.common.autoregressive import LSTMCore
from gbench_plugins.metrics.likelihood import NLLTest
from gbench_plugins.models.sequence import LSTMModel, TabularModel
from gbench_plugins.tasks.pairs import PairsTask
from gbench_plugins.tasks.text import TextTask
from torch.nn import functional as F

from benchmark_core.contract import EvalContext, stepwise_tempered_log_prob
from benchmark_core.contract.budgets import PROFILES
from benchmark_core.contract.errors import UsageError
from benchmark_core.engine.selection import expand, parse_selection
from benchmark_core.registry import get_registry


def direct_tempered(core: LSTMCore, x: torch.Tensor, t: float) -> torch.Tensor:
    """log Q_T(x) from the full [B, L, V] logits, in float64: the definition."""
    logits = core.logits(x).double()
    return F.log_softmax(logits / t, dim=2).gather(2, x[:, :, None]).squeeze(2).sum(1)


@pytest.mark.parametrize("t", [0.3, 0.8, 1.0, 1.7])
def test_lstm_tempered_log_prob_matches_log_softmax_of_scaled_logits(t):
    torch.manual_seed(0)
    core = LSTMCore(40, 8, 8, init="normal", std=1.0, generator=torch.Generator().manual_seed(1))
    x = torch.randint(0, 40, (64, 7))
    with torch.no_grad():
        got = core.tempered_log_prob(x, t).double()
        want = direct_tempered(core, x, t)
        stepwise = stepwise_tempered_log_prob(core, x, t).double()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(stepwise, want, rtol=1e-5, atol=1e-4)
    if t == 1.0:
        with torch.no_grad():
            torch.testing.assert_close(got, core.log_prob(x).double())


def test_small_temperature_turns_off_the_no_shift_shortcut_and_stays_finite():
    """Scaling W and b by 1/T raises the logit bound by 1/T: exp_is_safe must see the scaled
    weights, or exp overflows. Weights near the float32 limit at T = 1 (safe) go past it at
    T = 0.01; the result must still match the definition."""
    core = LSTMCore(30, 4, 4, init="normal", std=1.0, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        core.out.weight.mul_(10.0)
    w, b = core.out.weight.detach(), core.out.bias.detach()
    assert softmax_projection.exp_is_safe(w, b)
    assert not softmax_projection.exp_is_safe(w / 0.01, b / 0.01)
    x = torch.randint(0, 30, (16, 5))
    with torch.no_grad():
        got = core.tempered_log_prob(x, 0.01).double()
        want = direct_tempered(core, x, 0.01)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-2)


def test_tempered_conditionals_of_an_lstm_are_normalised_over_every_sequence():
    """Σ_x Q_T(x) = 1 over all V^L sequences (V = 4, L = 3): a density, for each T."""
    core = LSTMCore(4, 5, 5, init="normal", std=1.5, generator=torch.Generator().manual_seed(3))
    grid = torch.cartesian_prod(*[torch.arange(4)] * 3)
    with torch.no_grad():
        for t in (0.4, 2.5):
            total = core.tempered_log_prob(grid, t).double().exp().sum()
            assert math.isclose(float(total), 1.0, rel_tol=1e-5)


def _tabular_on_pairs(seed: int = 0) -> tuple[PairsTask, TabularModel]:
    task = PairsTask(k=5, seed=seed, n_train=10, n_test=500)
    torch.manual_seed(seed)
    model = TabularModel(task, init_scale=1.0)
    return task, model


@pytest.mark.parametrize("t", [0.5, 2.0])
def test_tabular_generic_path_matches_the_exact_tempered_table_by_enumeration(t):
    """On pairs, Q_T(x1, x2) = softmax(a / T)[x1] · softmax(B[x1] / T)[x2] for the tabular
    model's tables (a, B); the step-by-step fallback must give exactly that, and nll_test@T
    must be its mean over the held-out set."""
    task, model = _tabular_on_pairs()
    table = model.table.detach().double()
    first = F.log_softmax(table[-1] / t, dim=0)  # [K]
    second = F.log_softmax(table[:-1] / t, dim=1)  # [K, K]
    exact = first[:, None] + second  # log Q_T over every pair
    assert math.isclose(float(exact.exp().sum()), 1.0, rel_tol=1e-9)
    x = task.enumerate()
    with torch.no_grad():
        got = model.tempered_log_prob(x, t).double()
    torch.testing.assert_close(got, exact[x[:, 0], x[:, 1]], rtol=1e-6, atol=1e-6)

    metric = NLLTest(temperatures=[t])
    ctx = EvalContext(PROFILES["smoke"], torch.device("cpu"), 0, None)
    with torch.no_grad():
        out = metric.compute(model, task, ctx)
    want = -exact[task.test[:, 0], task.test[:, 1]]
    key = f"nll_test@T={t:g}"
    assert math.isclose(out[key].value, float(want.mean()), rel_tol=1e-6)
    assert math.isclose(out[key].stderr, float(want.std() / math.sqrt(len(want))), rel_tol=1e-5)
    assert math.isclose(out[f"nll_test_per_token@T={t:g}"].value, out[key].value / 2)
    assert "nll_test" in out and "nll_test_per_token" in out


def test_nll_test_temperatures_on_text_use_the_lstm_fast_path():
    task = TextTask(vocab=30, length=5, n_train=10, n_test=50, seed=1)
    torch.manual_seed(0)
    model = LSTMModel(task)
    ctx = EvalContext(PROFILES["smoke"], torch.device("cpu"), 0, None)
    with torch.no_grad():
        out = NLLTest(temperatures=[0.7, 1.0, 1.2]).compute(model, task, ctx)
        direct = -direct_tempered(model.core, task.test, 0.7)
    assert sorted(k for k in out if "@" in k) == [
        "nll_test@T=0.7",
        "nll_test@T=1.2",
        "nll_test_per_token@T=0.7",
        "nll_test_per_token@T=1.2",
    ]
    assert math.isclose(out["nll_test@T=0.7"].value, float(direct.mean()), rel_tol=1e-5)


def test_tempered_nll_test_scores_the_first_n_eval_held_out_sequences():
    """The untempered value scores the whole held-out set, each tempered one its first
    n_eval sequences (the cost of one nll_oracle temperature)."""
    from dataclasses import replace

    task = TextTask(vocab=30, length=5, n_train=10, n_test=50, seed=1)
    torch.manual_seed(0)
    model = LSTMModel(task)
    ctx = EvalContext(replace(PROFILES["smoke"], n_eval=20), torch.device("cpu"), 0, None)
    with torch.no_grad():
        out = NLLTest(temperatures=[0.7]).compute(model, task, ctx)
        head = -direct_tempered(model.core, task.test[:20], 0.7)
        whole = -model.log_prob(task.test)
    assert math.isclose(out["nll_test@T=0.7"].value, float(head.mean()), rel_tol=1e-5)
    assert math.isclose(
        out["nll_test@T=0.7"].stderr, float(head.std() / math.sqrt(20)), rel_tol=1e-4
    )
    assert math.isclose(out["nll_test"].value, float(whole.mean()), rel_tol=1e-5)


def test_temperature_zero_and_negative_are_refused_for_nll_test():
    reg = get_registry()
    with pytest.raises(UsageError, match="temperature 0 .*greedy.*nll_test takes temperatures > 0"):
        expand("metric", parse_selection("nll_test[temperatures=[0.8,0]]"), reg)
    with pytest.raises(UsageError, match=">= 0"):
        expand("metric", parse_selection("nll_test[temperatures=[-1]]"), reg)
    # nll_oracle keeps greedy decoding
    assert expand("metric", parse_selection("nll_oracle[temperatures=[0]]"), reg)
    with pytest.raises(ValueError, match="no density"):
        stepwise_tempered_log_prob(None, torch.zeros(1, 1, dtype=torch.long), 0.0)
