"""Metrics ``nll_test`` (−E_P log Q, coverage) and ``nll_oracle`` (−E_Q log P, quality)."""

from __future__ import annotations

import math

import torch

from benchmark_core import hookimpl
from benchmark_core.components import Estimate, EvalContext, Metric, Model, Task


def mean_estimate(values: torch.Tensor) -> Estimate:
    """The mean of i.i.d. terms and its standard error."""
    values = values.double()
    n = values.numel()
    stderr = values.std().item() / math.sqrt(n) if n > 1 else math.nan
    return Estimate(values.mean().item(), stderr)


class NLLTest(Metric):
    """Negative log-likelihood of the held-out test set under Q: the likelihood view."""

    name = "nll_test"
    description = "−E_P log Q(x) on P's held-out test set (nats per sample; coverage)"
    model_requires = frozenset({"log_prob"})
    direction = "min"

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        return {"nll_test": mean_estimate(-model.log_prob(task.test))}


class NLLOracle(Metric):
    """Negative log-likelihood of Q's samples under the true P: the paper's eq. 9."""

    name = "nll_oracle"
    description = "−E_Q log P(x) over Q's samples (nats per sample; the paper's eq. 9, quality)"
    model_requires = frozenset({"sample"})
    task_requires = frozenset({"log_prob"})
    direction = "min"

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        return {"nll_oracle": mean_estimate(-task.log_prob(model.sample(ctx.budget.n_eval)))}


@hookimpl
def register_metrics(register):
    register(NLLTest)
    register(NLLOracle)
