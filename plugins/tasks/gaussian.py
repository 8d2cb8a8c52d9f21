"""Task ``gaussian``: the paper's Figure 1 target, a rotated anisotropic 2-D Gaussian."""

from __future__ import annotations

import math

import torch
from gbench_plugins.common.densities import GaussianComponents

from benchmark_core import Param, Task, hookimpl, positive


class GaussianTask(Task):
    """P = N(0, R diag(a, b) Rᵀ), with R the rotation by ``angle`` degrees."""

    name = "gaussian"
    description = "2-D Gaussian N(0, R diag(a, b) Rᵀ): the paper's Figure 1 target"
    kind = "vector"
    provides = frozenset({"log_prob", "sample"})
    default_models = ("isotropic_gaussian", "gaussian")
    headline_metrics = ("nll_test", "nll_oracle", "kl_forward", "kl_reverse")
    param_spec = {
        "a": positive(4.0, "variance along the first principal axis"),
        "b": positive(0.25, "variance along the second principal axis"),
        "angle": Param(0.0, "rotation of the principal axes, in degrees", float),
        "n_train": Param(10_000, "training-set size", low=1),
        "n_test": Param(10_000, "held-out test-set size", low=1),
        "seed": Param(0, "seed of the fixed train and test sets", low=0),
    }
    max_threads = 1
    dim = 2

    def setup(self) -> None:
        theta = math.radians(self.angle)
        rot = torch.tensor(
            [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]],
            dtype=torch.float64,
        )
        cov = rot @ torch.diag(torch.tensor([self.a, self.b], dtype=torch.float64)) @ rot.T
        self.loc = torch.zeros(2)
        self.cov = cov.float()
        self.scale_tril = torch.linalg.cholesky(cov).float()
        gen = torch.Generator().manual_seed(self.seed)
        self.train = self._draw(self.n_train, gen)
        self.test = self._draw(self.n_test, gen)

    def _draw(self, n: int, gen: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, 2, generator=gen, device=self.loc.device)
        return self.loc + z @ self.scale_tril.T

    def _dist(self) -> torch.distributions.MultivariateNormal:
        return torch.distributions.MultivariateNormal(self.loc, scale_tril=self.scale_tril)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self._dist().log_prob(x)

    def sample(self, n: int) -> torch.Tensor:
        return self._draw(n)

    def mean(self) -> torch.Tensor:
        """P's mean."""
        return self.loc

    def covariance(self) -> torch.Tensor:
        """P's covariance."""
        return self.cov

    def gaussian_components(self) -> GaussianComponents:
        """P as a one-component Gaussian mixture (for quadrature; see common/densities.py)."""
        return GaussianComponents.of([1.0], self.loc, self.cov)


@hookimpl
def register_tasks(register):
    register(GaussianTask)
