"""Diagnostics of the pairs task (paper §4.1): ``mutual_info`` and ``ss_fixed_point_tv``.

Both are exact: Q's joint table is read off the model by scoring all K² pairs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gbench_plugins.common.pairs import (
    conditional,
    mutual_information,
    ss_fixed_point,
    total_variation,
)

from benchmark_core import Estimate, EvalContext, Metric, Model, Task, hookimpl


def model_joint(model: Model, task: Task) -> np.ndarray | None:
    """Q's exact K x K joint table on a length-2 enumerable task (None on other tasks)."""
    if task.length != 2:
        return None
    k = task.vocab_size
    log_q = model.log_prob(task.enumerate()).double()
    return torch.exp(log_q).reshape(k, k).cpu().numpy()


def task_joint(task: Task) -> np.ndarray:
    """P's exact K x K joint table, from the task's own log-density over all pairs."""
    k = task.vocab_size
    return torch.exp(task.log_prob(task.enumerate()).double()).reshape(k, k).cpu().numpy()


class MutualInfo(Metric):
    """I(x1; x2) under Q (``mi_q``) and under P (``mi_p``), in nats; exact."""

    name = "mutual_info"
    description = "mutual information I(x1; x2) under Q (mi_q) and P (mi_p), exact, length-2"
    kinds = frozenset({"sequence"})
    model_requires = frozenset({"log_prob"})
    task_requires = frozenset({"log_prob", "enumerable"})
    direction = "none"

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        q = model_joint(model, task)
        if q is None:  # only defined for pairs of symbols: NaN, noted on the rows
            return {"mi_q": Estimate(math.nan), "mi_p": Estimate(math.nan)}
        return {
            "mi_q": Estimate(mutual_information(q / q.sum())),
            "mi_p": Estimate(mutual_information(task_joint(task))),
        }


class SSFixedPointTV(Metric):
    """Distance of Q(x2|x1) from the scheduled-sampling fixed point for the objective's ε.

    ``ss_fixed_point_tv`` = Σ_z P(z) · TV(Q(·|z), ε P(·|z) + (1 − ε) P(·)), with ε the
    keep-probability the objective used at its latest step (its ``feed_eps()``);
    ``ss_eps`` records the ε used. Only for objectives that provide ``feed_eps``: on any other
    there is no fixed point to compare with, and the grid skips the metric with that reason.
    """

    name = "ss_fixed_point_tv"
    description = "P(x1)-weighted TV of Q(x2|x1) from the SS fixed point εP(x2|x1)+(1−ε)P(x2)"
    kinds = frozenset({"sequence"})
    model_requires = frozenset({"log_prob"})
    task_requires = frozenset({"log_prob", "enumerable"})
    objective_requires = frozenset({"feed_eps"})
    direction = "min"

    def direction_of(self, value_name: str) -> str:
        return "none" if value_name == "ss_eps" else "min"

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        eps = ctx.objective.feed_eps()
        q = model_joint(model, task)
        if q is None:  # only defined for pairs of symbols: NaN, noted on the rows
            return {"ss_fixed_point_tv": Estimate(math.nan), "ss_eps": Estimate(float(eps))}
        p = task_joint(task)
        target = ss_fixed_point(p, float(eps))
        tv = total_variation(conditional(q / q.sum()), target, weights=p.sum(axis=1))
        return {"ss_fixed_point_tv": Estimate(tv), "ss_eps": Estimate(float(eps))}


@hookimpl
def register_metrics(register):
    register(MutualInfo)
    register(SSFixedPointTV)
