"""Pieces the neural models share: an MLP with a learning-rate multiplier, and the data
statistics their outputs start from."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from benchmark_core import Param, Task

#: The objectives' default Adam learning rates (0.05 for ml, reverse_kl and jspi_exact, 0.01
#: for the jspi generator) suit the handful of parameters of the Gaussian models; a network's
#: weights need steps 10-50 times smaller. ``lr_scale`` gives them that without the objective
#: knowing which model it trains (see ScaledLinear).
LR_SCALE_HELP = "learning-rate multiplier of the network weights (Adam steps scale by it)"


def lr_scale_param(default: float) -> Param:
    """The ``lr_scale`` parameter of a neural model."""
    return Param(default, LR_SCALE_HELP, float, 0.0, None, low_open=True)


class ScaledLinear(nn.Module):
    """A linear layer whose weights are ``scale · raw``, with ``raw`` the trained tensors.

    Adam's step is invariant to the scale of the gradient, so it moves ``raw`` by about the
    learning rate and the effective weights by ``scale`` times that: a per-layer learning-rate
    multiplier that needs no change to the optimiser (the equalised-learning-rate trick of
    Karras et al., 2018). Initialised as ``nn.Linear``.
    """

    def __init__(self, inputs: int, outputs: int, scale: float = 1.0) -> None:
        super().__init__()
        ref = nn.Linear(inputs, outputs)
        self.scale = scale
        self.weight_raw = nn.Parameter(ref.weight.detach() / scale)
        self.bias_raw = nn.Parameter(ref.bias.detach() / scale)

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight matrix."""
        return self.scale * self.weight_raw

    @property
    def bias(self) -> torch.Tensor:
        """The effective bias."""
        return self.scale * self.bias_raw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    @torch.no_grad()
    def set_(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Set the effective weight and bias."""
        self.weight_raw.copy_(weight / self.scale)
        self.bias_raw.copy_(bias / self.scale)


def mlp(
    inputs: int, outputs: int, hidden: int, layers: int, lr_scale: float = 1.0
) -> nn.Sequential:
    """``layers`` hidden SiLU layers of width ``hidden``, then a linear output layer."""
    mods: list[nn.Module] = []
    width = inputs
    for _ in range(layers):
        mods += [ScaledLinear(width, hidden, lr_scale), nn.SiLU()]
        width = hidden
    mods.append(ScaledLinear(width, outputs, lr_scale))
    return nn.Sequential(*mods)


def data_location_scale(task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-axis mean and standard deviation of the task's training set (CPU, float32).

    Neural models start at the data's location and scale (as ActNorm-style data-dependent
    initialisation does), so that every objective begins from the same sensible place.
    """
    data = task.train.detach().float().cpu()
    if len(data) < 2:
        return data.mean(0), torch.ones(data.shape[1])
    return data.mean(0), data.std(0).clamp_min(1e-6)
