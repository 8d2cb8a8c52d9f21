"""Task ``mixture``: k equal-weight isotropic Gaussian modes on a ring or a grid, in 2-D."""

from __future__ import annotations

import math

import torch
from gbench_plugins.common.densities import GaussianComponents

from benchmark_core import Param, Task, hookimpl, positive


def mode_centres(k: int, radius: float, layout: str) -> torch.Tensor:
    """The ``k`` mode centres, float64, shape ``(k, 2)``.

    ``ring``: evenly spaced on the circle of ``radius``, the first at angle 0 (so ``k=2`` puts
    the modes at ``(±radius, 0)``). ``grid``: a square grid of ``ceil(sqrt(k))`` columns spanning
    ``[-radius, radius]`` on each axis, filled row by row from the top; when ``k`` is not a
    perfect square the last row is partly empty (and the mixture is not centred at 0).
    """
    if layout == "ring":
        angle = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
        c = radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        # cos(π) etc. leave ~1e-16 residues; zero them so that symmetric layouts are exact.
        return torch.where(c.abs() < 1e-12 * radius, torch.zeros_like(c), c)
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)

    def axis(n: int) -> torch.Tensor:
        return (
            torch.linspace(-radius, radius, n, dtype=torch.float64)
            if n > 1
            else torch.zeros(1, dtype=torch.float64)
        )

    xs, ys = axis(cols), axis(rows).flip(0)
    return torch.stack([torch.stack([xs[i % cols], ys[i // cols]]) for i in range(k)])


class MixtureTask(Task):
    """P = (1/k) Σ_j N(c_j, std² I), the c_j on a ring or a grid."""

    name = "mixture"
    description = "2-D mixture of k equal-weight isotropic Gaussian modes on a ring or grid"
    kind = "vector"
    provides = frozenset({"log_prob", "sample"})
    default_models = ("gaussian", "gaussian_mixture", "flow", "mlp_generator")
    headline_metrics = ("nll_test", "nll_oracle", "recall", "precision")
    param_spec = {
        "k": Param(8, "number of modes", low=1),
        "radius": positive(2.0, "ring radius, or half the side of the grid"),
        "std": positive(0.2, "standard deviation of each mode (per axis)"),
        "layout": Param("ring", "where the modes sit", choices=("ring", "grid")),
        "n_train": Param(10_000, "training-set size", low=1),
        "n_test": Param(10_000, "held-out test-set size", low=1),
        "seed": Param(0, "seed of the fixed train and test sets", low=0),
    }
    max_threads = 1
    dim = 2

    def setup(self) -> None:
        self.centres = mode_centres(self.k, self.radius, self.layout).float()
        gen = torch.Generator().manual_seed(self.seed)
        self.train = self._draw(self.n_train, gen)
        self.test = self._draw(self.n_test, gen)

    def _draw(self, n: int, gen: torch.Generator | None = None) -> torch.Tensor:
        device = self.centres.device
        idx = torch.randint(self.k, (n,), generator=gen, device=device)
        return self.centres[idx] + self.std * torch.randn(n, 2, generator=gen, device=device)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        # In x's dtype, so that a float64 caller (quadrature) gets float64 accuracy.
        # Differences, not cdist: its |x|² + |c|² − 2x·c shortcut loses digits for narrow modes.
        sq = (x[:, None, :] - self.centres.to(x.dtype)).square().sum(-1)
        log_comp = -0.5 * sq / self.std**2 - math.log(2 * math.pi * self.std**2)
        return torch.logsumexp(log_comp, dim=-1) - math.log(self.k)

    def sample(self, n: int) -> torch.Tensor:
        return self._draw(n)

    def mean(self) -> torch.Tensor:
        """P's mean: the mean of the mode centres."""
        return self.centres.mean(0)

    def covariance(self) -> torch.Tensor:
        """P's covariance: std² I plus the (population) covariance of the centres."""
        d = self.centres - self.centres.mean(0)
        return self.std**2 * torch.eye(2, device=d.device) + d.T @ d / self.k

    def gaussian_components(self) -> GaussianComponents:
        """P as an exact Gaussian mixture (for quadrature; see plugins/common/densities.py)."""
        cov = torch.eye(2, dtype=torch.float64) * self.std**2
        return GaussianComponents.of(
            torch.ones(self.k), self.centres, cov.expand(self.k, 2, 2).clone()
        )


@hookimpl
def register_tasks(register):
    register(MixtureTask)
