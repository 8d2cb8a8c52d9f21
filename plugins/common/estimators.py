"""Sample-based divergence and two-sample estimators, each returning ``(value, stderr)``.

Inputs are torch tensors on any device; work is done on the inputs' device, in float64 where
the device supports it, and in chunks where a full pairwise matrix could be large. Results are
:class:`Estimate` tuples of Python floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

#: Rows per chunk of pairwise-distance work; a chunk holds CHUNK × n distances.
CHUNK = 1024


class Estimate(NamedTuple):
    """A point estimate and its standard error."""

    value: float
    stderr: float


def _wide(t: Tensor) -> Tensor:
    # MPS has no float64; everywhere else accumulate in double for stable means and variances.
    return t.float() if t.device.type == "mps" else t.double()


def _mean_var(t: Tensor) -> tuple[Tensor, Tensor]:
    n = t.numel()
    if n < 2:
        raise ValueError("need at least two samples for a standard error")
    return t.mean(), t.var(correction=1) / n


def mc_kl(logp_on_p_samples: Tensor, logq_on_p_samples: Tensor) -> Estimate:
    """Monte Carlo KL[P‖Q] = E_P[log p − log q] from samples of P.

    Parameters
    ----------
    logp_on_p_samples, logq_on_p_samples : Tensor, shape (n,)
        ``log p(x_i)`` and ``log q(x_i)`` at the same samples ``x_i ~ P``.

    Returns
    -------
    Estimate
        Sample mean of the log ratio, stderr = sample std / sqrt(n).
    """
    d = _wide(logp_on_p_samples).reshape(-1) - _wide(logq_on_p_samples).reshape(-1)
    m, v = _mean_var(d)
    return Estimate(float(m), math.sqrt(float(v)))


def mc_jspi(
    logp_x_p: Tensor, logq_x_p: Tensor, logp_x_q: Tensor, logq_x_q: Tensor, pi: float
) -> Estimate:
    """Unbiased Monte Carlo JS_π[P‖Q] = π E_P[log p/m] + (1 − π) E_Q[log q/m].

    Parameters
    ----------
    logp_x_p, logq_x_p : Tensor, shape (n,)
        ``log p`` and ``log q`` at samples of P.
    logp_x_q, logq_x_q : Tensor, shape (m,)
        ``log p`` and ``log q`` at samples of Q, drawn independently of P's.
    pi : float
        Weight of P in ``M = πP + (1 − π)Q``, ``0 < pi < 1``.

    Returns
    -------
    Estimate
        Stderr combines the two independent sample means:
        ``sqrt(π² var_P / n + (1 − π)² var_Q / m)``.
    """
    if not 0.0 < pi < 1.0:
        raise ValueError(f"pi must lie in (0, 1), got {pi}")
    lpi, l1pi = math.log(pi), math.log1p(-pi)
    lp_p, lq_p = _wide(logp_x_p).reshape(-1), _wide(logq_x_p).reshape(-1)
    lp_q, lq_q = _wide(logp_x_q).reshape(-1), _wide(logq_x_q).reshape(-1)
    a = lp_p - torch.logaddexp(lp_p + lpi, lq_p + l1pi)
    b = lq_q - torch.logaddexp(lp_q + lpi, lq_q + l1pi)
    ma, va = _mean_var(a)
    mb, vb = _mean_var(b)
    value = pi * ma + (1 - pi) * mb
    return Estimate(float(value), math.sqrt(float(pi**2 * va + (1 - pi) ** 2 * vb)))


def median_distance(
    z: Tensor, max_points: int = 2048, generator: torch.Generator | None = None
) -> float:
    """Median Euclidean distance between distinct points (the median heuristic's bandwidth).

    Parameters
    ----------
    z : Tensor, shape (n, d)
    max_points : int
        Beyond this many points, a uniform random subset of this size is used.
    generator : torch.Generator, optional
        For the subset (CPU generator); default a fresh one seeded with 0, so that the
        bandwidth is reproducible.

    Returns
    -------
    float
    """
    if len(z) > max_points:
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        idx = torch.randperm(len(z), generator=g)[:max_points].to(z.device)
        z = z[idx]
    d = torch.cdist(z, z)
    iu = torch.triu_indices(len(z), len(z), offset=1, device=z.device)
    return float(d[iu[0], iu[1]].median())


class _Gram(NamedTuple):
    # Sufficient statistics of one kernel block, diagonal excluded when the block is square.
    total: Tensor
    sumsq: Tensor
    rows: Tensor
    cols: Tensor


def _gram_stats(x: Tensor, y: Tensor, gamma: float, same: bool) -> _Gram:
    rows = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    cols = torch.zeros(len(y), dtype=x.dtype, device=x.device)
    sumsq = torch.zeros((), dtype=x.dtype, device=x.device)
    for s in range(0, len(x), CHUNK):
        k = torch.exp(-gamma * torch.cdist(x[s : s + CHUNK], y).square())
        if same:
            i = torch.arange(len(k), device=x.device)
            k[i, i + s] = 0.0
        rows[s : s + CHUNK] = k.sum(1)
        cols += k.sum(0)
        sumsq += k.square().sum()
    return _Gram(rows.sum(), sumsq, rows, cols)


def _within(g: _Gram, m: int) -> tuple[Tensor, Tensor, Tensor]:
    # Mean, row means and degenerate (second-order) variance of a within-sample kernel block.
    pairs = m * (m - 1)
    mean = g.total / pairs
    var_k = g.sumsq / pairs - mean**2
    r = g.rows / (m - 1)
    var_r = r.var(correction=1)
    # var(row mean) ≈ var(a1) + σ2²/(m − 1) and var(k) = 2 var(a1) + σ2² (Hoeffding).
    s2 = ((var_k - 2 * var_r) / (1 - 2 / (m - 1))).clamp_min(0)
    return mean, r, s2


def mmd2_unbiased(
    x: Tensor,
    y: Tensor,
    bandwidth: float | None = None,
    generator: torch.Generator | None = None,
) -> Estimate:
    """Unbiased MMD² (U-statistic) with the Gaussian kernel ``exp(−‖x − y‖² / (2 σ²))``.

    ``MMD²_u = mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) − 2 mean_{i,j} k(x_i, y_j)``.

    The standard error comes from the Hoeffding decomposition of this two-sample U-statistic,
    ``Var = 4 var(g)/m + 4 var(h)/n + 2 σ_xx²/(m(m−1)) + 2 σ_yy²/(n(n−1)) + 4 σ_xy²/(mn)``, with
    ``g(x) = E k(x, X') − E k(x, Y)``, ``h`` likewise for y, and ``σ²`` the variances of the
    degenerate second-order parts, all estimated by moments of the kernel matrices (the
    finite-row-mean noise subtracted). Keeping the second-order terms makes the stderr valid
    when P = Q, where the first-order part vanishes. Measured over 1000 replicates (2-D
    Gaussians, 100-1000 points a side): stderr/sd 0.98-1.01 when P ≠ Q; 1.1-1.3 at P = Q
    (conservative: the first-order part, 0 there, is estimated with noise and clamped at 0).

    Parameters
    ----------
    x : Tensor, shape (m, d)
        Samples of P.
    y : Tensor, shape (n, d)
        Samples of Q.
    bandwidth : float, optional
        Kernel σ. Default: the median distance between distinct points of the pooled sample
        (on a random subset of 2048 points if larger; see :func:`median_distance`).
    generator : torch.Generator, optional
        For the median heuristic's subset.

    Returns
    -------
    Estimate
    """
    m, n = len(x), len(y)
    if m < 4 or n < 4:
        raise ValueError("need at least four samples on each side")
    x, y = _wide(x.reshape(m, -1)), _wide(y.reshape(n, -1))
    if bandwidth is None:
        bandwidth = median_distance(torch.cat([x, y]), generator=generator)
    gamma = 1.0 / (2.0 * bandwidth**2)
    gxx = _gram_stats(x, x, gamma, True)
    gyy = _gram_stats(y, y, gamma, True)
    gxy = _gram_stats(x, y, gamma, False)
    mxx, rx, sxx = _within(gxx, m)
    myy, ry, syy = _within(gyy, n)
    mxy = gxy.total / (m * n)
    cx, cy = gxy.rows / n, gxy.cols / m
    var_kxy = gxy.sumsq / (m * n) - mxy**2
    sxy = ((var_kxy - cx.var() - cy.var()) / (1 - 1 / m - 1 / n)).clamp_min(0)
    var_g = (rx - cx).var() - sxx / (m - 1) - sxy / n
    var_h = (ry - cy).var() - syy / (n - 1) - sxy / m
    # Clamp the first-order part jointly: near P = Q it is ~0 but estimated with noise, and
    # clamping each half separately would inflate the variance more.
    first = (4 * var_g / m + 4 * var_h / n).clamp_min(0)
    var = first + 2 * sxx / (m * (m - 1)) + 2 * syy / (n * (n - 1)) + 4 * sxy / (m * n)
    return Estimate(float(mxx + myy - 2 * mxy), math.sqrt(float(var)))


def _kth_nn_radius(z: Tensor, k: int) -> Tensor:
    # Distance to the k-th nearest other point (topk k + 1 includes the point itself).
    out = torch.empty(len(z), dtype=z.dtype, device=z.device)
    for s in range(0, len(z), CHUNK):
        d = torch.cdist(z[s : s + CHUNK], z)
        out[s : s + CHUNK] = d.topk(k + 1, dim=1, largest=False).values[:, -1]
    return out


def _proportion(hits: Tensor) -> Estimate:
    p = float(hits.double().mean())
    return Estimate(p, math.sqrt(p * (1 - p) / hits.numel()))


def prdc(real: Tensor, fake: Tensor, k: int = 5) -> dict[str, Estimate]:
    """Precision, recall, density and coverage of Naeem et al. (2020), k-NN balls.

    With ``B(z, r)`` the closed ball and ``r_k(z)`` the distance from z to its k-th nearest
    neighbour in its own set (itself excluded):

    - precision: share of fake points inside some ``B(real_i, r_k(real_i))``;
    - recall: share of real points inside some ``B(fake_j, r_k(fake_j))``;
    - density: ``(1/(k M)) Σ_j #{i : fake_j ∈ B(real_i, r_k(real_i))}`` (≈ 1 when Q = P);
    - coverage: share of real points whose ball ``B(real_i, r_k(real_i))`` holds a fake point.

    Standard errors treat the k-NN balls as fixed (binomial for the three proportions,
    std/sqrt(M) for density), so they understate the variability due to the reference set.

    Parameters
    ----------
    real : Tensor, shape (N, d)
    fake : Tensor, shape (M, d)
    k : int
        Neighbourhood size.

    Returns
    -------
    dict
        ``{"precision", "recall", "density", "coverage"}`` → :class:`Estimate`.
    """
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"need more than k={k} points on each side")
    real = _wide(real.reshape(len(real), -1))
    fake = _wide(fake.reshape(len(fake), -1))
    r_real = _kth_nn_radius(real, k)
    r_fake = _kth_nn_radius(fake, k)
    inside_any = torch.empty(len(fake), dtype=torch.bool, device=real.device)
    count = torch.empty(len(fake), dtype=real.dtype, device=real.device)
    nearest_fake = torch.full((len(real),), math.inf, dtype=real.dtype, device=real.device)
    for s in range(0, len(fake), CHUNK):
        d = torch.cdist(fake[s : s + CHUNK], real)
        inside = d <= r_real
        inside_any[s : s + CHUNK] = inside.any(1)
        count[s : s + CHUNK] = inside.sum(1)
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
    recalled = torch.empty(len(real), dtype=torch.bool, device=real.device)
    for s in range(0, len(real), CHUNK):
        recalled[s : s + CHUNK] = (torch.cdist(real[s : s + CHUNK], fake) <= r_fake).any(1)
    dens = count / k
    return {
        "precision": _proportion(inside_any),
        "recall": _proportion(recalled),
        "density": Estimate(float(dens.mean()), float(dens.std() / math.sqrt(len(dens)))),
        "coverage": _proportion(nearest_fake <= r_real),
    }


def _init_linear(n_in: int, n_out: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    # PyTorch's default Linear init (uniform ±1/sqrt(fan_in)), drawn from our own generator.
    bound = 1.0 / math.sqrt(n_in)
    w = (torch.rand(n_in, n_out, generator=g, dtype=torch.float32) * 2 - 1) * bound
    b = (torch.rand(n_out, generator=g, dtype=torch.float32) * 2 - 1) * bound
    return w, b


def _fit_classifier(
    x: Tensor, y: Tensor, wts: Tensor, hidden: int, steps: int, lr: float, g: torch.Generator
) -> Callable[[Tensor], Tensor]:
    """The logits of a two-hidden-layer SiLU MLP fitted to labels ``y`` (weights ``wts``) by
    full-batch Adam on ``x`` standardised with its own statistics; see `c2st`."""
    dev = x.device
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-12)
    d = x.shape[1]
    params = [
        t.to(dev).requires_grad_()
        for t in (
            *_init_linear(d, hidden, g),
            *_init_linear(hidden, hidden, g),
            *_init_linear(hidden, 1, g),
        )
    ]
    w1, b1, w2, b2, w3, b3 = params

    def logits(z: Tensor) -> Tensor:
        h = torch.nn.functional.silu((z - mu) / sd @ w1 + b1)
        h = torch.nn.functional.silu(h @ w2 + b2)
        return (h @ w3 + b3).squeeze(-1)

    opt = torch.optim.Adam(params, lr=lr, fused=params[0].device.type in ("cpu", "cuda") or None)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits(x), y, weight=wts, reduction="sum"
        )
        loss.backward()
        opt.step()
    return logits


def c2st(
    p_train: Tensor,
    q_train: Tensor,
    p_test: Tensor,
    q_test: Tensor,
    hidden: int = 64,
    steps: int = 300,
    lr: float = 1e-2,
    generator: torch.Generator | None = None,
) -> Estimate:
    """Classifier two-sample test: held-out accuracy of a fresh MLP telling P from Q.

    A two-hidden-layer SiLU MLP is trained full-batch with Adam on the standardised pooled
    training data (statistics from the training set only), with the two classes weighted
    equally whatever their sizes. Reported: the balanced held-out accuracy
    ``(acc_P + acc_Q) / 2``; 0.5 means indistinguishable, 1.0 fully separated.

    Cost: ~0.6-1.2 s for 2,000 + 2,000 2-D points with the defaults on one CPU thread. Run it
    with one thread on small data (the harness does, for 2-D tasks): with two intra-op
    threads on a busy 2-core machine the same call took 7-30 s.

    Parameters
    ----------
    p_train, q_train : Tensor, shape (n_p, d), (n_q, d)
        Training samples of P and of Q.
    p_test, q_test : Tensor
        Held-out samples, independent of the training ones.
    hidden : int
        Width of both hidden layers.
    steps : int
        Full-batch Adam steps.
    lr : float
        Adam learning rate.
    generator : torch.Generator, optional
        CPU generator for the initial weights; default a fresh one seeded with 0.

    Returns
    -------
    Estimate
        Stderr ``0.5 sqrt(a_P(1 − a_P)/n_P + a_Q(1 − a_Q)/n_Q)``, i.e. ``sqrt(acc(1 − acc)/n)``
        for balanced test sets of n points in all.
    """
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    dev = p_train.device
    flat = [t.reshape(len(t), -1).float() for t in (p_train, q_train, p_test, q_test)]
    ptr, qtr, pte, qte = flat
    x = torch.cat([ptr, qtr])
    y = torch.cat([torch.ones(len(ptr), device=dev), torch.zeros(len(qtr), device=dev)])
    wts = torch.cat(
        [
            torch.full((len(ptr),), 0.5 / len(ptr), device=dev),
            torch.full((len(qtr),), 0.5 / len(qtr), device=dev),
        ]
    )
    logits = _fit_classifier(x, y, wts, hidden, steps, lr, g)
    with torch.no_grad():
        acc_p = float((logits(pte) > 0).float().mean())
        acc_q = float((logits(qte) <= 0).float().mean())
    var = 0.25 * (acc_p * (1 - acc_p) / len(pte) + acc_q * (1 - acc_q) / len(qte))
    return Estimate(0.5 * (acc_p + acc_q), math.sqrt(var))
