"""Model ``gaussian_mixture``: k diagonal Gaussians with learnable weights, exact reparameterised
sampling by implicit differentiation of the conditional CDFs (Graves 2016; Figurnov et al. 2018).

Choosing a component is a discrete draw, so ``μ + σ ε`` with a sampled component carries no
gradient to the weights. The distributional transform does: x is the image of uniforms u under
the inverse conditional CDFs, u_i = F_i(x_i | x_<i; θ), so by the implicit function theorem
dx_i/dθ = −(∂F_i/∂θ + Σ_{l<i} ∂F_i/∂x_l · dx_l/dθ) / f_i(x_i | x_<i). For a diagonal mixture each
conditional is itself a mixture of 1-D Gaussians whose weights are the components' posteriors
given x_<i, so F_i and f_i are closed-form. :meth:`GaussianMixture.rsample` draws x ancestrally
(no gradient) and returns x_i − (F_i − stop_grad(F_i)) / stop_grad(f_i), dimension by dimension:
equal to x in value, with exactly the implicit gradient (the unbiased pathwise gradient of
E_Q[g(x)]; tested against quadrature). This is why the covariances are diagonal: a full
covariance needs per-component conditional Gaussians as well, which this model does not do.
"""

from __future__ import annotations

import math

import torch
from gbench_plugins.common.densities import GaussianComponents
from torch import nn

from benchmark_core import Model, Param, Task, hookimpl, positive

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class GaussianMixture(Model):
    """Q = Σ_j softmax(logits)_j N(μ_j, diag(σ_j²))."""

    name = "gaussian_mixture"
    description = "mixture of k diagonal Gaussians, learnable weights; implicit-reparam rsample"
    kinds = frozenset({"vector"})
    provides = frozenset({"log_prob", "sample", "rsample", "moments"})
    param_spec = {
        "k": Param(8, "number of components", low=1),
        "init_scale": positive(0.5, "initial σ of each component, as a share of the data's sd"),
    }

    def build(self, task: Task) -> None:
        # Means start at k distinct training points drawn with the cell's seed: a random,
        # asymmetric start (a symmetric one is a saddle for mode-seeking objectives) at the
        # data's scale. Weights start equal.
        data = task.train.detach().float().cpu()
        self.dim = data.shape[1]
        idx = torch.randperm(len(data))[: self.k]
        idx = idx[torch.arange(self.k) % len(idx)]  # more components than points: reuse
        sd = data.std(0).clamp_min(1e-6) if len(data) > 1 else torch.ones(self.dim)
        self.logits = nn.Parameter(torch.zeros(self.k))
        self.mu = nn.Parameter(data[idx].clone())
        self.log_sd = nn.Parameter(torch.log(self.init_scale * sd).expand(self.k, -1).clone())

    def _log_components(self, x: torch.Tensor) -> torch.Tensor:
        # log w_j + log N(x; μ_j, diag σ_j²) for every row and component: shape (n, k).
        z = (x[:, None, :] - self.mu) * torch.exp(-self.log_sd)
        log_n = -0.5 * z.square() - self.log_sd - _LOG_SQRT_2PI
        return torch.log_softmax(self.logits, 0) + log_n.sum(-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self._log_components(x.to(self.mu.dtype)), dim=-1)

    def sample(self, n: int) -> torch.Tensor:
        with torch.no_grad():
            idx = torch.multinomial(torch.softmax(self.logits, 0), n, replacement=True)
            eps = torch.randn(n, self.dim, device=self.mu.device, dtype=self.mu.dtype)
            return self.mu[idx] + torch.exp(self.log_sd[idx]) * eps

    def rsample(self, n: int) -> torch.Tensor:
        x = self.sample(n)
        log_post = torch.log_softmax(self.logits, 0).expand(n, -1)  # log w_j, then posteriors
        out = []
        for i in range(self.dim):
            post = torch.softmax(log_post, dim=-1)  # P(component j | x_<i), grads via x̃_<i
            mu, log_sd = self.mu[:, i], self.log_sd[:, i]
            z = (x[:, i : i + 1] - mu) * torch.exp(-log_sd)  # x_i itself: a fixed sample
            cdf = (post * torch.special.ndtr(z)).sum(-1)
            dens = (post * torch.exp(-0.5 * z.square() - log_sd - _LOG_SQRT_2PI)).sum(-1)
            xi = x[:, i] - (cdf - cdf.detach()) / dens.detach()
            out.append(xi)
            if i + 1 < self.dim:  # condition the next dimension on x̃_i (value x_i)
                zt = (xi[:, None] - mu) * torch.exp(-log_sd)
                log_post = log_post - 0.5 * zt.square() - log_sd
        return torch.stack(out, dim=-1)

    def weights(self) -> torch.Tensor:
        """The mixture weights softmax(logits)."""
        return torch.softmax(self.logits, 0)

    def mean(self) -> torch.Tensor:
        return self.weights() @ self.mu

    def covariance(self) -> torch.Tensor:
        w, mean = self.weights(), self.mean()
        second = torch.einsum("j,jd,je->de", w, self.mu, self.mu)
        return torch.diag(w @ torch.exp(2 * self.log_sd)) + second - torch.outer(mean, mean)

    def gaussian_components(self) -> GaussianComponents:
        """Q as an exact Gaussian mixture (for quadrature; see plugins/common/densities.py)."""
        return GaussianComponents.of(
            self.weights(), self.mu, torch.diag_embed(torch.exp(2 * self.log_sd))
        )


@hookimpl
def register_models(register):
    register(GaussianMixture)
