"""Model ``mlp_generator``: an implicit model, z ~ N(0, I) → MLP → x, with samples only.

It has no density, so it declares only ``sample`` and ``rsample``: the grid skips every
objective or metric that needs ``log_prob`` on it (ml, reverse_kl, jspi_exact, nll_test,
kl_*, ...) and says why; adversarial ``jspi`` and the sample-based metrics run on it. The
network trains at ``lr_scale`` (default 0.2) times the objective's learning rate (see
plugins/models/nets.py); loc and scale at the full rate.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark_core import Model, Param, Task, hookimpl

from .nets import data_location_scale, lr_scale_param, mlp


class MLPGenerator(Model):
    """x = loc + scale ⊙ MLP(z), z ~ N(0, I_latent); Q starts at the data's mean and sd."""

    name = "mlp_generator"
    description = "implicit model: z ~ N(0, I) → MLP → x (samples only, no density)"
    kinds = frozenset({"vector"})
    provides = frozenset({"sample", "rsample"})
    param_spec = {
        "latent": Param(4, "dimension of z", low=1),
        "hidden": Param(64, "hidden width", low=1),
        "layers": Param(3, "hidden layers", low=1),
        "init_offset": Param(0.1, "random initial offset of loc, in data sds", low=0.0),
        "lr_scale": lr_scale_param(0.2),
    }

    def build(self, task: Task) -> None:
        loc, sd = data_location_scale(task)
        self.dim = len(loc)
        self.net = mlp(self.latent, self.dim, self.hidden, self.layers, self.lr_scale)
        # Standardise the untrained network's output (a freshly initialised SiLU MLP outputs
        # ~0.03 sd): fold its mean and sd over a batch of z into the last layer, so that Q
        # starts at the data's location and scale instead of collapsed onto a point.
        with torch.no_grad():
            out = self.net(torch.randn(4096, self.latent))
            last = self.net[-1]
            sd_out = out.std(0).clamp_min(1e-6)
            last.set_(last.weight / sd_out[:, None], (last.bias - out.mean(0)) / sd_out)
        self.loc = nn.Parameter(loc + self.init_offset * sd * torch.randn(self.dim))
        self.log_scale = nn.Parameter(torch.log(sd))

    def rsample(self, n: int) -> torch.Tensor:
        z = torch.randn(n, self.latent, device=self.loc.device, dtype=self.loc.dtype)
        return self.loc + torch.exp(self.log_scale) * self.net(z)


@hookimpl
def register_models(register):
    register(MLPGenerator)
