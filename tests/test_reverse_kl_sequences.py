"""``reverse_kl`` on sequences: its estimators against KL[Q‖P] and ∇KL[Q‖P] by enumeration.

On spaces small enough to list (``pairs``: 25 sequences; a text oracle over 4 symbols of
length 3: 64), the exact divergence and its gradient are sums over every sequence. Each
estimator's per-batch gradient is averaged over many independent batches; the mean must
equal the exact gradient within its own Monte Carlo error (5 standard errors per
coordinate), and the mean logged value the exact KL likewise. The estimators' variances are
compared by tests/benchmarks/bench_reverse_kl_variance.py (not a timed test).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from gbench_plugins.models.sequence import LSTMModel, TabularModel
from gbench_plugins.objectives.divergences import ReverseKL
from gbench_plugins.tasks.pairs import PairsTask
from gbench_plugins.tasks.text import TextTask

from benchmark_core import Model, Task
from benchmark_core.contract.budgets import PROFILES

BUDGET = PROFILES["smoke"]


def all_sequences(task: Task) -> torch.Tensor:
    """Every sequence of the task's length over its vocabulary, one per row."""
    rows = itertools.product(range(task.vocab_size), repeat=task.length)
    return torch.tensor(list(rows), dtype=torch.long)


def exact_kl_and_grad(model: Model, task: Task) -> tuple[float, torch.Tensor]:
    """KL[Q‖P] = Σ_x Q(x) (log Q(x) − log P(x)) over every sequence, and its gradient."""
    x = all_sequences(task)
    log_q = model.log_prob(x).double()
    kl = (log_q.exp() * (log_q - task.log_prob(x).double())).sum()
    grads = torch.autograd.grad(kl, list(model.parameters()))
    return float(kl.detach()), torch.cat([g.reshape(-1) for g in grads]).double()


def estimates(
    model: Model, task: Task, estimator: str, batches: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per batch: the logged value [batches] and the surrogate's gradient [batches, P]."""
    objective = ReverseKL(estimator=estimator)
    objective.setup(model, task, BUDGET)
    params = list(model.parameters())
    values, grads = [], []
    dummy = torch.zeros(batch_size, task.length, dtype=torch.long)
    for _ in range(batches):
        grad_of, value = objective.loss(dummy)
        g = torch.autograd.grad(grad_of, params, allow_unused=True)
        grads.append(
            torch.cat(
                [
                    (torch.zeros_like(p) if d is None else d).reshape(-1)
                    for p, d in zip(params, g, strict=True)
                ]
            )
        )
        values.append(float(value.detach()))
    return torch.tensor(values, dtype=torch.float64), torch.stack(grads).double()


def assert_unbiased(model: Model, task: Task, estimator: str, batches: int, batch_size: int):
    exact_kl, exact_grad = exact_kl_and_grad(model, task)
    values, grads = estimates(model, task, estimator, batches, batch_size)
    se_value = values.std() / batches**0.5
    assert abs(values.mean() - exact_kl) <= 5 * se_value + 1e-5, (values.mean(), exact_kl)
    se = grads.std(0) / batches**0.5
    gap = (grads.mean(0) - exact_grad).abs()
    # float32 arithmetic in the model: a small absolute floor for coordinates of no variance
    tol = 5 * se + 1e-5 + 1e-4 * exact_grad.abs()
    worst = int((gap / tol).argmax())
    assert bool((gap <= tol).all()), (worst, float(gap[worst]), float(se[worst]))
    # The check has power: the gradient is far from zero compared with the tolerance.
    assert float(exact_grad.norm()) > 5 * float(tol.norm())
    return grads


def pairs_setting() -> tuple[Model, Task]:
    task = PairsTask(n_train=10, n_test=10)
    torch.manual_seed(0)
    return TabularModel(task, init_scale=1.0), task


def text_setting() -> tuple[Model, Task]:
    task = TextTask(vocab=4, length=3, emb=4, hidden=4, n_train=10, n_test=10, seed=3)
    torch.manual_seed(0)
    return LSTMModel(task, emb=4, hidden=4), task


@pytest.mark.parametrize("estimator", ["exact_step", "reinforce"])
def test_pairs_estimators_are_unbiased(estimator):
    torch.manual_seed(1)
    model, task = pairs_setting()
    assert_unbiased(model, task, estimator, batches=3000, batch_size=8)


@pytest.mark.parametrize("estimator", ["exact_step", "reinforce"])
def test_tiny_text_estimators_are_unbiased(estimator):
    model, task = text_setting()
    torch.manual_seed(2)
    assert_unbiased(model, task, estimator, batches=1500, batch_size=8)


def test_sequence_level_fallback_is_unbiased_without_per_token_values():
    """A task with log P only: exact_step falls back to whole-sequence REINFORCE."""
    model, task = pairs_setting()
    task.provides = frozenset({"log_prob", "sample", "enumerable"})
    torch.manual_seed(3)
    assert_unbiased(model, task, "exact_step", batches=3000, batch_size=8)


def test_exact_step_has_lower_gradient_variance_on_tiny_text():
    """The closed-form step KL removes the sampled symbol's noise at every position."""
    model, task = text_setting()
    torch.manual_seed(4)
    _, exact = estimates(model, task, "exact_step", 300, 8)
    _, old = estimates(model, task, "reinforce", 300, 8)
    assert float(exact.var(0).sum()) < 0.5 * float(old.var(0).sum())


def test_exact_step_zero_when_q_equals_p():
    """Q = P on pairs (the tabular model set to P's tables): every step KL, the logged value
    and the gradient are zero."""
    model, task = pairs_setting()
    with torch.no_grad():
        model.table[-1] = task.log_first
        model.table[:-1] = task.log_second
    values, grads = estimates(model, task, "exact_step", 5, 16)
    assert values.abs().max() < 1e-5
    assert grads.abs().max() < 1e-4


@pytest.mark.parametrize("setting", [pairs_setting, text_setting])
def test_next_token_log_probs_of_models_and_tasks_agree_with_their_per_token_values(setting):
    """Models: the override equals the generic step-by-step version; gathered at x, both
    models' and tasks' next-symbol distributions are the per-token values; rows sum to one."""
    from benchmark_core import AutoregressiveModel

    model, task = setting()
    x = all_sequences(task)
    with torch.no_grad():
        for dist in (model, task):
            full = dist.next_token_log_probs(x)
            assert full.shape == (*x.shape, task.vocab_size)
            at_x = full.gather(-1, x[..., None]).squeeze(-1)
            torch.testing.assert_close(at_x, dist.token_log_probs(x), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(full.logsumexp(-1), torch.zeros(x.shape), atol=1e-5, rtol=0)
        generic = AutoregressiveModel.next_token_log_probs(model, x)
        torch.testing.assert_close(model.next_token_log_probs(x), generic, atol=1e-5, rtol=1e-5)
