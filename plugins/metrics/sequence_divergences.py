"""Metrics ``kl_forward`` (KL[P‖Q]) and ``kl_reverse`` (KL[Q‖P]) on sequence tasks.

Exact on enumerable tasks (a sum over the whole sample space; values named ``kl_forward``,
``kl_reverse``, nats per sequence). Otherwise unbiased Monte Carlo with standard errors,
per sequence and per token (``kl_forward``, ``kl_forward_per_token``, ...):
KL[P‖Q] = E_P[log P − log Q] over P's held-out test set, KL[Q‖P] = E_Q[log Q − log P] over
``budget.n_eval`` samples of Q.

Merging note: the vector versions of these metrics (quadrature / Monte Carlo on 2-D tasks)
live on another branch under the same names. A merge keeps one class per name with
``kinds`` = both, requirements as dicts by kind, and ``compute`` dispatching on
``task.kind`` to `sequence_kl_forward` / `sequence_kl_reverse` below.
"""

from __future__ import annotations

import torch

from benchmark_core import hookimpl
from benchmark_core.components import Estimate, EvalContext, Metric, Model, Task
from plugins.metrics.likelihood import (
    draw,
    mean_estimate,
    task_test_log_probs,
    test_log_probs,
)


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
        return {"kl_forward": Estimate(_exact_kl(task.log_prob(x), model.log_prob(x)))}
    est = mean_estimate(task_test_log_probs(task) - test_log_probs(model, task, ctx))
    return {"kl_forward": est, "kl_forward_per_token": _per_token(est, task.length)}


def sequence_kl_reverse(model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
    """KL[Q‖P] on a sequence task (see the module docstring)."""
    if "enumerable" in task.provides:
        x = task.enumerate()
        return {"kl_reverse": Estimate(_exact_kl(model.log_prob(x), task.log_prob(x)))}
    out = draw(model, ctx, ctx.budget.n_eval)
    est = mean_estimate(out.log_prob - task.log_prob(out.tokens))
    return {"kl_reverse": est, "kl_reverse_per_token": _per_token(est, task.length)}


class KLForward(Metric):
    """KL[P‖Q]: exact on enumerable tasks, else Monte Carlo on P's held-out test set."""

    name = "kl_forward"
    description = "KL[P‖Q] (nats per sequence; exact when enumerable, else MC ± stderr)"
    kinds = frozenset({"sequence"})
    model_requires = frozenset({"log_prob"})
    task_requires = frozenset({"log_prob"})
    direction = "min"

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        return sequence_kl_forward(model, task, ctx)


class KLReverse(Metric):
    """KL[Q‖P]: exact on enumerable tasks, else Monte Carlo on Q's samples."""

    name = "kl_reverse"
    description = "KL[Q‖P] (nats per sequence; exact when enumerable, else MC ± stderr)"
    kinds = frozenset({"sequence"})
    model_requires = frozenset({"log_prob", "autoregressive"})
    task_requires = frozenset({"log_prob"})
    direction = "min"

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        return sequence_kl_reverse(model, task, ctx)


@hookimpl
def register_metrics(register):
    register(KLForward)
    register(KLReverse)
