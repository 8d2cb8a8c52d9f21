"""Models ``isotropic_gaussian`` (N(μ, s²I)) and ``gaussian`` (N(μ, Σ), full covariance)."""

from __future__ import annotations

import math

import torch
from gbench_plugins.common.densities import GaussianComponents
from torch import nn

from benchmark_core import Model, Param, Task, hookimpl, positive

_INIT = {
    "init_scale": positive(1.0, "initial standard deviation"),
    # A mean exactly at a symmetric point is a saddle for mode-seeking objectives.
    "init_offset": Param(0.1, "std of the random initial offset of the mean", low=0.0),
}


class IsotropicGaussian(Model):
    """Q = N(μ, s² I) with free mean and one scale."""

    name = "isotropic_gaussian"
    description = "isotropic Gaussian N(μ, s²I): the paper's Figure 1 model"
    kinds = frozenset({"vector"})
    provides = frozenset({"log_prob", "sample", "rsample", "moments", "vmap"})
    param_spec = dict(_INIT)

    def build(self, task: Task) -> None:
        self.dim = task.dim
        self.mu = nn.Parameter(self.init_offset * torch.randn(self.dim))
        self.log_s = nn.Parameter(torch.tensor(math.log(self.init_scale)))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mu) * torch.exp(-self.log_s)
        return -0.5 * (z * z).sum(-1) - self.dim * (self.log_s + 0.5 * math.log(2 * math.pi))

    def rsample(self, n: int) -> torch.Tensor:
        return self.mu + torch.exp(self.log_s) * torch.randn(n, self.dim, device=self.mu.device)

    def mean(self) -> torch.Tensor:
        return self.mu

    def covariance(self) -> torch.Tensor:
        return torch.exp(2 * self.log_s) * torch.eye(self.dim, device=self.mu.device)

    def gaussian_components(self) -> GaussianComponents:
        """Q as a one-component Gaussian mixture (for quadrature; see common/densities.py)."""
        return GaussianComponents.of([1.0], self.mu, self.covariance())


class FullGaussian(Model):
    """Q = N(μ, L Lᵀ) with L lower-triangular and a positive (log-parameterised) diagonal."""

    name = "gaussian"
    description = "Gaussian N(μ, Σ) with a full covariance (Cholesky-parameterised)"
    kinds = frozenset({"vector"})
    provides = frozenset({"log_prob", "sample", "rsample", "moments", "vmap"})
    param_spec = dict(_INIT)

    def build(self, task: Task) -> None:
        self.dim = task.dim
        self.mu = nn.Parameter(self.init_offset * torch.randn(self.dim))
        self.log_diag = nn.Parameter(torch.full((self.dim,), math.log(self.init_scale)))
        self.off_diag = nn.Parameter(torch.zeros(self.dim, self.dim))

    def scale_tril(self) -> torch.Tensor:
        """The Cholesky factor L of Σ."""
        return torch.tril(self.off_diag, -1) + torch.diag(torch.exp(self.log_diag))

    # Written out rather than through torch.distributions: on tiny tensors its argument
    # checks and broadcasting cost several times the arithmetic itself.
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        tril = self.scale_tril()
        z = torch.linalg.solve_triangular(tril, (x - self.mu).T, upper=False)
        return -0.5 * (z * z).sum(0) - self.log_diag.sum() - 0.5 * self.dim * math.log(2 * math.pi)

    def rsample(self, n: int) -> torch.Tensor:
        return self.mu + torch.randn(n, self.dim, device=self.mu.device) @ self.scale_tril().T

    def mean(self) -> torch.Tensor:
        return self.mu

    def covariance(self) -> torch.Tensor:
        tril = self.scale_tril()
        return tril @ tril.T

    def gaussian_components(self) -> GaussianComponents:
        """Q as a one-component Gaussian mixture (for quadrature; see common/densities.py)."""
        tril = self.scale_tril().detach().double()  # float64 product: no float32 rounding
        return GaussianComponents.of([1.0], self.mu, tril @ tril.T)


@hookimpl
def register_models(register):
    register(IsotropicGaussian)
    register(FullGaussian)
