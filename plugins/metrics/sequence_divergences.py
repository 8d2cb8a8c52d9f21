"""Metrics ``kl_forward`` (KL[P‖Q]) and ``kl_reverse`` (KL[Q‖P]) on sequence tasks.

Exact on enumerable tasks (a sum over the whole sample space; values named ``kl_forward``,
``kl_reverse``, nats per sequence). Otherwise unbiased Monte Carlo with standard errors,
per sequence and per token (``kl_forward``, ``kl_forward_per_token``, ...):
KL[P‖Q] = E_P[log P − log Q] over P's held-out test set, KL[Q‖P] = E_Q[log Q − log P] over
``budget.n_eval`` samples of Q.

The registered metrics are the ``kl_forward`` / ``kl_reverse`` classes of
:mod:`gbench_plugins.metrics.divergences`, which dispatch here on sequence tasks.
"""

from __future__ import annotations

import torch
from gbench_plugins.metrics.likelihood import (
    draw,
    draw_task_log_probs,
    mean_estimate,
    test_log_probs,
)

from benchmark_core import Estimate, EvalContext, Model, Task


def _per_token(est: Estimate, length: int) -> Estimate:
    return Estimate(est.value / length, est.stderr / length)


def _exact_kl(log_a: torch.Tensor, log_b: torch.Tensor) -> float:
    """Σ a (log a − log b) over the enumerated space, in float64, 0 log 0 = 0."""
    log_a, log_b = log_a.double(), log_b.double()
    a = log_a.exp()
    terms = torch.where(a > 0, a * (log_a - log_b), torch.zeros_like(a))
    return max(0.0, float(terms.sum()))


def sequence_kl_forward(model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
    """KL[P‖Q] on a sequence task (see the module docstring)."""
    if "enumerable" in task.provides:
        x = task.enumerate()
        exact = Estimate(_exact_kl(task.log_prob(x), model.log_prob(x)))
        return {"kl_forward": exact, "kl_forward_per_token": _per_token(exact, task.length)}
    est = mean_estimate(task.test_log_prob() - test_log_probs(model, task, ctx))
    return {"kl_forward": est, "kl_forward_per_token": _per_token(est, task.length)}


def sequence_kl_reverse(model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
    """KL[Q‖P] on a sequence task (see the module docstring)."""
    if "enumerable" in task.provides:
        x = task.enumerate()
        exact = Estimate(_exact_kl(model.log_prob(x), task.log_prob(x)))
        return {"kl_reverse": exact, "kl_reverse_per_token": _per_token(exact, task.length)}
    out = draw(model, ctx, ctx.budget.n_eval)
    est = mean_estimate(out.log_prob - draw_task_log_probs(model, task, ctx, ctx.budget.n_eval))
    return {"kl_reverse": est, "kl_reverse_per_token": _per_token(est, task.length)}
