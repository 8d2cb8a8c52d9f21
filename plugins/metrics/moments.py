"""Metric ``moments``: Q's mean and covariance eigenvalues (exact where the model knows them)."""

from __future__ import annotations

import math

import torch

from benchmark_core import Estimate, EvalContext, Metric, Model, Task, hookimpl


class Moments(Metric):
    """``mean_i``, ``cov_eig_i`` (largest first) and ``cov_ij`` (i ≤ j): exact for models that
    provide ``moments``, else from ``budget.n_eval`` samples (the means then carry standard
    errors). Only low-dimensional tasks get the covariance entries (dim ≤ 4)."""

    name = "moments"
    description = "Q's mean (mean_i), covariance eigenvalues (cov_eig_i, largest first), cov_ij"
    kinds = frozenset({"vector"})
    model_requires = frozenset({"sample"})
    direction = "none"

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        if "moments" in model.provides:
            mean, cov = model.mean().double(), model.covariance().double()
            mean_se = torch.full_like(mean, math.nan)
        else:
            x = model.sample(ctx.budget.n_eval).double()
            mean, cov = x.mean(0), torch.cov(x.T).reshape(x.shape[1], x.shape[1])
            mean_se = (torch.diagonal(cov) / x.shape[0]).sqrt()
        eig = torch.linalg.eigvalsh(cov).flip(0)
        out = {
            f"mean_{i}": Estimate(m, s)
            for i, (m, s) in enumerate(zip(mean.tolist(), mean_se.tolist(), strict=True))
        }
        out.update({f"cov_eig_{i}": Estimate(v) for i, v in enumerate(eig.tolist())})
        dim = cov.shape[0]
        if dim <= 4:  # enough to redraw Q's covariance ellipse (Figure 1) from the results
            out.update(
                {
                    f"cov_{i}{j}": Estimate(cov[i, j].item())
                    for i in range(dim)
                    for j in range(i, dim)
                }
            )
        return out


@hookimpl
def register_metrics(register):
    register(Moments)
