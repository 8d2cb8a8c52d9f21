"""Does a distribution's ``log_prob`` describe its own samples? Checks for models and tasks.

Each function takes a distribution (anything with ``log_prob`` and ``sample``) and returns a
list of problems (empty when it agrees). Every test is a comparison of two independent
estimates with a tolerance of several standard errors plus a small floor, so that a correct
component passes on any seed while a wrong normalising constant or a density of another shape
fails by a wide margin.

Vectors of dimension ≤ :data:`MAX_IS_DIM`: importance sampling from a defensive mixture
(a broad Gaussian fitted to the samples plus a kernel density estimate on them) estimates
∫ Q = 1, E_Q[log Q] (compared with the mean log_prob of Q's own samples) and the mass of
half-spaces (compared with the share of samples in them). Sequences: the log-probabilities
of samples are finite and ≤ 0; on an enumerable space small enough to list, exp(log_prob)
sums to 1 and the exact entropy matches the samples'; and every outcome that is sampled often
has a frequency that matches its probability.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch

#: Above this dimension vector densities are only checked to be finite on their samples.
MAX_IS_DIM = 4
#: Enumerate a sequence space of at most this many outcomes.
MAX_ENUMERATE = 1 << 16
N_SAMPLES = 4096
N_IMPORTANCE = 8192
N_KERNELS = 256
SIGMAS = 5.0


def _mean_se(t: torch.Tensor) -> tuple[float, float]:
    t = t.double()
    return t.mean().item(), (t.std() / math.sqrt(t.numel())).item()


def _log_prob(dist: Any, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([dist.log_prob(chunk) for chunk in x.split(4096)]).double()


def vector_problems(dist: Any, seed: int = 0) -> list[str]:
    """Problems with a vector distribution's log_prob against its samples."""
    torch.manual_seed(seed)
    with torch.no_grad():
        x = dist.sample(N_SAMPLES)
    lq_x = _log_prob(dist, x)
    if lq_x.shape != (len(x),):
        return [f"log_prob of {len(x)} samples has shape {tuple(lq_x.shape)}, not ({len(x)},)"]
    if not torch.isfinite(lq_x).all():
        bad = x[~torch.isfinite(lq_x)][0].tolist()
        return [f"log_prob is not finite on its own sample {bad}"]
    dim = x.shape[1]
    if dim > MAX_IS_DIM:
        return []
    x = x.double()
    mean = x.mean(0)
    cov = torch.cov(x.T).reshape(dim, dim)
    # A jitter relative to the spread, so that a very narrow Q keeps a proposal of its size.
    cov = cov + (1e-6 * torch.diagonal(cov).mean() + 1e-12) * torch.eye(dim, dtype=x.dtype)
    broad = torch.distributions.MultivariateNormal(mean, 4 * cov)
    centres = x[:N_KERNELS]
    h2 = N_KERNELS ** (-2 / (dim + 4))  # Scott's factor, squared
    kernel_tril = torch.linalg.cholesky(h2 * cov)

    # Kernel density in whitened coordinates: N(y; c, h² cov) = N(L⁻¹y; L⁻¹c, I) / |det L|.
    white_c = torch.linalg.solve_triangular(kernel_tril, centres.T, upper=False).T
    log_norm = torch.diagonal(kernel_tril).log().sum() + 0.5 * dim * math.log(2 * math.pi)

    def log_r(y: torch.Tensor) -> torch.Tensor:
        white_y = torch.linalg.solve_triangular(kernel_tril, y.T, upper=False).T
        lk = (-0.5 * torch.cdist(white_y, white_c).square()).logsumexp(1) - log_norm
        return torch.logaddexp(broad.log_prob(y), lk - math.log(N_KERNELS)) - math.log(2)

    n_broad = N_IMPORTANCE // 2
    y_broad = broad.sample((n_broad,))
    pick = torch.randint(N_KERNELS, (N_IMPORTANCE - n_broad,))
    z = torch.randn(N_IMPORTANCE - n_broad, dim, dtype=x.dtype)
    y = torch.cat([y_broad, centres[pick] + z @ kernel_tril.T])
    lq_y = _log_prob(dist, y.to(torch.get_default_dtype()))
    finite = torch.isfinite(lq_y) | (lq_y == -math.inf)
    if not finite.all():
        return [f"log_prob is {lq_y[~finite][0].item()} at {y[~finite][0].tolist()}"]
    w = torch.exp(lq_y - log_r(y))
    problems = []

    z_hat, z_se = _mean_se(w)
    if abs(z_hat - 1) > max(SIGMAS * z_se, 0.03):
        problems.append(
            f"exp(log_prob) integrates to {z_hat:.4f} ± {z_se:.4f}, not 1 (importance sampling)"
        )
        return problems  # the comparisons below assume a normalised density
    lq_y = torch.where(torch.isfinite(lq_y), lq_y, torch.zeros_like(lq_y))
    h_is, h_is_se = _mean_se(w * lq_y)
    h_s, h_s_se = _mean_se(lq_x)
    tol = SIGMAS * math.hypot(h_is_se, h_s_se) + 0.02 * (1 + abs(h_s))
    if abs(h_is - h_s) > tol:
        problems.append(
            f"the mean log_prob of its own samples is {h_s:.4f} ± {h_s_se:.4f}, but E_Q[log Q] "
            f"from log_prob itself is {h_is:.4f} ± {h_is_se:.4f}: the samples do not follow "
            "the density"
        )
    gen = torch.Generator().manual_seed(seed)
    for _ in range(3):
        u = torch.randn(dim, generator=gen, dtype=x.dtype)
        t = (x @ u).median()
        share, share_se = _mean_se(((x @ u) <= t).double())
        mass, mass_se = _mean_se(w * ((y @ u) <= t).double())
        if abs(share - mass) > SIGMAS * math.hypot(share_se, mass_se) + 0.01:
            problems.append(
                f"the half-space u·x ≤ {t.item():.3g} (u = {[round(v, 3) for v in u.tolist()]}) "
                f"holds {share:.3f} of the samples but {mass:.3f} ± {mass_se:.3f} of the density"
            )
            break
    return problems


def sequence_problems(dist: Any, vocab: int | None, enumerable: bool, seed: int = 0) -> list[str]:
    """Problems with a sequence distribution's log_prob against its samples."""
    torch.manual_seed(seed)
    with torch.no_grad():
        x = dist.sample(N_SAMPLES)
    lq_x = _log_prob(dist, x)
    if lq_x.shape != (len(x),):
        return [f"log_prob of {len(x)} samples has shape {tuple(lq_x.shape)}, not ({len(x)},)"]
    if not torch.isfinite(lq_x).all():
        return [f"log_prob is not finite on its own sample {x[~torch.isfinite(lq_x)][0].tolist()}"]
    if (lq_x > 1e-5).any():
        return [f"log_prob is {lq_x.max().item():.4g} > 0 on a sample of a discrete space"]
    problems = []
    length = x.shape[1]
    if enumerable and vocab is not None and vocab**length <= MAX_ENUMERATE:
        everything = torch.tensor(list(itertools.product(range(vocab), repeat=length)))
        lq_all = _log_prob(dist, everything.to(x.dtype))
        total = lq_all.logsumexp(0).exp().item()
        if abs(total - 1) > 1e-3:
            problems.append(
                f"exp(log_prob) sums to {total:.6f} over all {vocab}^{length} sequences, not 1"
            )
            return problems
        exact = (lq_all.exp() * lq_all).nansum().item()
        h_s, h_s_se = _mean_se(lq_x)
        if abs(exact - h_s) > SIGMAS * h_s_se + 1e-3:
            problems.append(
                f"the mean log_prob of its own samples is {h_s:.4f} ± {h_s_se:.4f}, but "
                f"Σ Q log Q over the whole space is {exact:.4f}: the samples do not follow Q"
            )
    rows, counts = torch.unique(x, dim=0, return_counts=True)
    p = _log_prob(dist, rows).exp()
    if p.sum().item() > 1 + 1e-3:
        problems.append(
            f"exp(log_prob) sums to {p.sum().item():.4f} > 1 over the distinct samples alone"
        )
    n = len(x)
    often = counts >= 20
    if often.any():
        share = counts[often].double() / n
        pp = p[often]
        z = (share - pp).abs() / (pp * (1 - pp) / n).clamp_min(1e-12).sqrt()
        worst = int(z.argmax())
        if z[worst] > SIGMAS and abs(share[worst] - pp[worst]) > 0.005:
            problems.append(
                f"the sequence {rows[often][worst].tolist()} makes up {share[worst].item():.4f} "
                f"of the samples but has probability {pp[worst].item():.4f}"
            )
    return problems
