"""Sample-based metrics: ``c2st`` (classifier two-sample test), ``prdc`` and ``mmd``.

They need only samples of Q, so they also measure implicit models. P's samples are always
from the task's held-out test set (never the training data), a random subset drawn with the
metric's own seeded stream. Each uses ``n = min(budget.n_eval, max_samples, len(test))``
points per side. The default cap, 2,000 (smoke's n_eval), keeps these quadratic-cost
statistics affordable at every checkpoint and makes their values comparable across budgets
(PRDC's k-NN radii, for one, shrink as n grows). Measured on one busy CPU thread, per call:

- ``c2st`` (half of each side trains the classifier, half tests it): 0.6-0.9 s; the held-out
  accuracy's stderr is ≈ 0.011 near 0.5.
- ``prdc`` 0.1-0.3 s and ``mmd`` 0.2-0.3 s at 2,000 per side; at 5,000, 1.8 s and 3.5 s.

Raise ``max_samples`` for larger runs (the paper budget on a GPU).
"""

from __future__ import annotations

import torch
from gbench_plugins.common.estimators import c2st, mmd2_unbiased, prdc

from benchmark_core import Estimate, EvalContext, Metric, Model, Param, Task, hookimpl, positive

from .divergences import held_out


def _both(model: Model, task: Task, ctx: EvalContext, cap: int) -> tuple[torch.Tensor, ...]:
    n = min(ctx.budget.n_eval, cap, len(task.test))
    return held_out(task, n), model.sample(n)


def _seed() -> torch.Generator:
    # From the metric's own (seeded) stream, so that results vary with the cell's seed but
    # are reproducible.
    return torch.Generator().manual_seed(int(torch.randint(2**62, ())))


class C2ST(Metric):
    """Held-out accuracy of a fresh classifier trained to tell P's samples from Q's.

    Direction ``min``: 0.5 (chance) is the best a model can do; values below 0.5 are chance
    fluctuations, within a few standard errors of it.
    """

    name = "c2st"
    description = "classifier two-sample test: held-out accuracy c2st_acc (0.5 = indistinguishable)"
    kinds = frozenset({"vector"})
    model_requires = frozenset({"sample"})
    direction = "min"
    param_spec = {
        "max_samples": Param(2000, "most samples per side (half train, half test)", low=4),
        "hidden": Param(64, "width of the classifier's two hidden layers", low=1),
        "steps": Param(300, "full-batch Adam steps", low=1),
        "lr": positive(0.01, "Adam learning rate"),
    }

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        p, q = _both(model, task, ctx, self.max_samples)
        hp, hq = len(p) // 2, len(q) // 2
        with torch.enable_grad():  # metrics run under no_grad; the classifier must train
            acc = c2st(p[:hp], q[:hq], p[hp:], q[hq:], self.hidden, self.steps, self.lr, _seed())
        return {"c2st_acc": Estimate(*acc)}


class PRDC(Metric):
    """Precision, recall, density and coverage (Naeem et al. 2020) with k-NN balls."""

    name = "prdc"
    description = "precision, recall, density, coverage of Q's samples vs P's (k-NN manifolds)"
    kinds = frozenset({"vector"})
    model_requires = frozenset({"sample"})
    direction = "max"
    param_spec = {
        "k": Param(5, "nearest neighbours that set each ball's radius", low=1),
        "max_samples": Param(2000, "most samples per side", low=2),
    }

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        p, q = _both(model, task, ctx, self.max_samples)
        return {name: Estimate(*e) for name, e in prdc(p, q, self.k).items()}


class MMD(Metric):
    """Unbiased MMD² with a Gaussian kernel whose bandwidth is the median pooled distance."""

    name = "mmd"
    description = "unbiased MMD² (mmd2), Gaussian kernel, median-heuristic bandwidth"
    kinds = frozenset({"vector"})
    model_requires = frozenset({"sample"})
    direction = "min"
    param_spec = {"max_samples": Param(2000, "most samples per side", low=4)}

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        p, q = _both(model, task, ctx, self.max_samples)
        return {"mmd2": Estimate(*mmd2_unbiased(p, q, generator=_seed()))}


@hookimpl
def register_metrics(register):
    register(C2ST)
    register(PRDC)
    register(MMD)
