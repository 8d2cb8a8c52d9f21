"""Model ``flow``: a RealNVP-style normalising flow of affine coupling layers.

x = g(z), z ~ N(0, I). Each coupling layer keeps the coordinates where its mask is 1 and maps
the others by x_b = z_b · exp(s(z_a)) + t(z_a), with s, t from an MLP of the kept ones; masks
alternate between even and odd coordinates, so in 2-D each layer transforms one axis given the
other. log-scales are soft-clipped, s = 2 tanh(raw / 2), which keeps a single layer from
stretching by more than e² and the training stable. A final elementwise affine map (learnable,
started at the training data's mean and sd plus a small random offset of the mean) sets the
location and scale. Each coupling's output layer starts at zero, so the untrained flow is the
Gaussian N(data mean + offset, diag(data sd²)). log_prob inverts the map exactly:
log Q(x) = log N(z) − Σ_layers Σ s − Σ log scale.

The coupling networks train at ``lr_scale`` (default 0.05) times the objective's learning rate
(plugins/models/nets.py): at the objectives' defaults, tuned for Gaussian models (0.05), the
networks' weights took steps of 40% of their size and the flow blew up within 300 steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark_core import Model, Param, Task, hookimpl

from .nets import data_location_scale, lr_scale_param, mlp

_LOG_2PI = math.log(2 * math.pi)


class Coupling(nn.Module):
    """One affine coupling layer with a fixed binary mask."""

    def __init__(self, mask: torch.Tensor, hidden: int, depth: int, lr_scale: float) -> None:
        super().__init__()
        self.register_buffer("mask", mask)
        dim = len(mask)
        self.net = mlp(dim, 2 * dim, hidden, depth, lr_scale)
        last = self.net[-1]
        last.set_(torch.zeros_like(last.weight), torch.zeros_like(last.bias))

    def shift_log_scale(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, s) for the transformed coordinates, zero on the kept ones."""
        raw_s, t = self.net(kept).chunk(2, dim=-1)
        free = 1 - self.mask
        return t * free, 2 * torch.tanh(raw_s / 2) * free

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z -> x and log|det dx/dz| per row."""
        t, s = self.shift_log_scale(z * self.mask)
        return z * torch.exp(s) + t, s.sum(-1)

    def inverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> z and log|det dx/dz| per row (of the forward map, at z)."""
        t, s = self.shift_log_scale(x * self.mask)
        return (x - t) * torch.exp(-s), s.sum(-1)


class Flow(Model):
    """A stack of affine couplings with alternating masks and a final affine map."""

    name = "flow"
    description = "normalising flow: affine coupling layers (RealNVP), exact log_prob and rsample"
    kinds = frozenset({"vector"})
    provides = frozenset({"log_prob", "sample", "rsample"})
    param_spec = {
        "layers": Param(6, "coupling layers (masks alternate)", low=1),
        "hidden": Param(64, "width of each coupling's MLP", low=1),
        "depth": Param(2, "hidden layers of each coupling's MLP", low=1),
        "init_offset": Param(0.1, "random initial offset of the mean, in data sds", low=0.0),
        "lr_scale": lr_scale_param(0.05),
    }

    def build(self, task: Task) -> None:
        loc, sd = data_location_scale(task)
        self.dim = len(loc)
        self.loc = nn.Parameter(loc + self.init_offset * sd * torch.randn(self.dim))
        self.log_scale = nn.Parameter(torch.log(sd))
        even = (torch.arange(self.dim) % 2 == 0).float()
        self.couplings = nn.ModuleList(
            Coupling(even if i % 2 == 0 else 1 - even, self.hidden, self.depth, self.lr_scale)
            for i in range(self.layers)
        )

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z = (x.to(self.loc.dtype) - self.loc) * torch.exp(-self.log_scale)
        log_det = self.log_scale.sum().expand(len(z))
        for layer in reversed(self.couplings):
            z, ld = layer.inverse(z)
            log_det = log_det + ld
        return -0.5 * (z.square().sum(-1) + self.dim * _LOG_2PI) - log_det

    def rsample(self, n: int) -> torch.Tensor:
        z = torch.randn(n, self.dim, device=self.loc.device, dtype=self.loc.dtype)
        for layer in self.couplings:
            z, _ = layer(z)
        return self.loc + torch.exp(self.log_scale) * z


@hookimpl
def register_models(register):
    register(Flow)
