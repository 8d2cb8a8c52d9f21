"""Divergences between 2-D densities by tensor-product Gauss–Legendre quadrature.

Densities are given as vectorised log-density callables ``f(x) -> log p(x)``: ``x`` is a
``torch.Tensor`` of shape ``(n, 2)`` and dtype ``float64`` (on ``device``, CPU by default), and
the result has shape ``(n,)``. A callable may return a ``numpy`` array instead; it is converted.
(A numpy-only density can be wrapped as ``lambda x: f(x.numpy())``.) Results are Python floats.

Accuracy (measured, see ``tests/test_cont_quadrature.py``): with the defaults of
:func:`integration_box` (±10 marginal standard deviations per component, subintervals of at
most three conditional standard deviations, order-10 Gauss–Legendre) KL and JS_π between 2-D
Gaussians and 8-mode mixtures are within ~1e-9 absolute (~1e-12 relative for large values) of
the converged value (closed form where there is one), densities integrate to 1 within 1e-11,
in ~2-60 ms per evaluation on one CPU core; ``width=2`` gives ~1e-13 at 2-4 times the cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from numpy.typing import ArrayLike

LogDensity = Callable[[torch.Tensor], "torch.Tensor | np.ndarray"]

#: Points evaluated per call of a log density; bounds memory on fine rules.
CHUNK = 1 << 18


@dataclass(frozen=True)
class Box:
    """A rectangle cut into subintervals per axis; each subinterval gets one Gauss–Legendre rule.

    Attributes
    ----------
    edges : tuple of two tuples of float
        Increasing subinterval edges along x and along y.
    """

    edges: tuple[tuple[float, ...], tuple[float, ...]]

    def __post_init__(self) -> None:
        # Tuples of floats keep the Box hashable, which the rule cache relies on.
        object.__setattr__(self, "edges", tuple(tuple(float(v) for v in e) for e in self.edges))
        if len(self.edges) != 2:
            raise ValueError("a Box has edges for exactly two axes")
        for e in self.edges:
            if len(e) < 2 or np.any(np.diff(e) <= 0):
                raise ValueError("edges must be strictly increasing, at least two per axis")

    @classmethod
    def uniform(
        cls, lo: Sequence[float], hi: Sequence[float], n_sub: int | Sequence[int] = 64
    ) -> Box:
        """Equal subintervals on ``[lo[0], hi[0]] x [lo[1], hi[1]]``.

        Parameters
        ----------
        lo, hi : sequence of two floats
            Lower and upper corners.
        n_sub : int or pair of int
            Subintervals per axis.
        """
        ns = (n_sub, n_sub) if isinstance(n_sub, int) else tuple(n_sub)
        edges = tuple(tuple(np.linspace(lo[a], hi[a], ns[a] + 1).tolist()) for a in range(2))
        return cls(edges)  # type: ignore[arg-type]

    @property
    def lo(self) -> tuple[float, float]:
        """Lower corner."""
        return (self.edges[0][0], self.edges[1][0])

    @property
    def hi(self) -> tuple[float, float]:
        """Upper corner."""
        return (self.edges[0][-1], self.edges[1][-1])


def integration_box(
    means: ArrayLike, covs: ArrayLike, n_std: float = 10.0, width: float = 3.0
) -> Box:
    """Pick a quadrature box from the Gaussian components of the densities involved.

    Each component (pool those of both densities, e.g. every mixture component of P and Q)
    asks for its span ``mean ± n_std`` marginal standard deviations per axis, cut into
    subintervals no wider than ``width`` conditional standard deviations ``1/sqrt(Λ_aa)``
    (``Λ`` the precision matrix: the integrand's width along an axis at fixed other
    coordinate). The union of these requests is the box; a tight component refines only
    its own span, which keeps narrow mixtures affordable.

    Parameters
    ----------
    means : array_like, shape (k, 2) or (2,)
        Component means.
    covs : array_like, shape (k, 2, 2) or (2, 2)
        Component covariances (positive definite).
    n_std : float
        Half-width of each component's span in marginal standard deviations.
    width : float
        Largest subinterval, in conditional standard deviations.

    Returns
    -------
    Box
    """
    mu = np.atleast_2d(np.asarray(means, dtype=np.float64))
    cov = np.asarray(covs, dtype=np.float64)
    cov = cov[None] if cov.ndim == 2 else cov
    if mu.shape[1:] != (2,) or cov.shape[1:] != (2, 2) or len(mu) != len(cov):
        raise ValueError("means must be (k, 2) and covs (k, 2, 2)")
    prec = np.linalg.inv(cov)
    edges = []
    for a in range(2):
        sd = np.sqrt(cov[:, a, a])
        step = width / np.sqrt(prec[:, a, a])
        lo, hi = mu[:, a] - n_std * sd, mu[:, a] + n_std * sd
        pts = np.concatenate(
            [
                np.linspace(lo[c], hi[c], math.ceil((hi[c] - lo[c]) / step[c]) + 1)
                for c in range(len(mu))
            ]
        )
        pts.sort()
        # Union of the per-component grids: drop near-duplicate edges so that overlapping
        # components do not create slivers; this widens a subinterval by at most 1/4 step.
        tol = 0.25 * step.min()
        kept = [pts[0]]
        for x in pts[1:-1]:
            if x - kept[-1] >= tol:
                kept.append(x)
        if pts[-1] - kept[-1] < tol and len(kept) > 1:
            kept.pop()
        kept.append(pts[-1])
        edges.append(tuple(float(x) for x in kept))
    return Box((edges[0], edges[1]))


@lru_cache(maxsize=64)
def _rule_1d(edges: tuple[float, ...], order: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(order)
    e = np.asarray(edges)
    half = np.diff(e) / 2
    mid = (e[:-1] + e[1:]) / 2
    return (mid[:, None] + half[:, None] * x).ravel(), (half[:, None] * w).ravel()


@lru_cache(maxsize=8)
def _rule_2d(box: Box, order: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    (x, wx), (y, wy) = (_rule_1d(e, order) for e in box.edges)
    gx, gy = np.meshgrid(x, y, indexing="ij")
    pts = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), device=device)
    return pts, torch.as_tensor(np.outer(wx, wy).ravel(), device=device)


def quad_rule(
    box: Box, order: int = 10, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of the tensor-product Gauss–Legendre rule on ``box``.

    Parameters
    ----------
    box : Box
        Region and subintervals.
    order : int
        Nodes per subinterval and axis.
    device : str or torch.device, optional
        Where the tensors live (default CPU).

    Returns
    -------
    points : torch.Tensor, shape (n, 2), float64
    weights : torch.Tensor, shape (n,), float64
        Cached and shared: do not modify in place.
    """
    return _rule_2d(box, order, str(torch.device(device or "cpu")))


def _eval(f: LogDensity, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(f(x), dtype=torch.float64, device=x.device).reshape(-1)


def integrate(
    integrand: Callable[[torch.Tensor], torch.Tensor],
    box: Box,
    order: int = 10,
    device: str | torch.device | None = None,
) -> float:
    """``∫ integrand(x) dx`` over ``box``.

    Parameters
    ----------
    integrand : callable
        Maps points ``(n, 2)`` float64 to values ``(n,)``.
    box : Box
        Region and subintervals.
    order : int
        Gauss–Legendre nodes per subinterval and axis.
    device : str or torch.device, optional
        Where to evaluate.

    Returns
    -------
    float
    """
    pts, w = quad_rule(box, order, device)
    total = torch.zeros((), dtype=torch.float64, device=pts.device)
    for s in range(0, len(pts), CHUNK):
        x = pts[s : s + CHUNK]
        total = total + (w[s : s + CHUNK] * _eval(integrand, x)).sum()
    return float(total)


def kl_integrand(lp: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """Pointwise ``p (log p − log q)`` from log densities, with 0·log 0 = 0 where p vanishes.

    Parameters
    ----------
    lp, lq : torch.Tensor
        ``log p`` and ``log q`` at the same points.

    Returns
    -------
    torch.Tensor
    """
    p = lp.exp()
    return torch.where(p > 0, p * (lp - lq), torch.zeros_like(p))


def jspi_integrand(lp: torch.Tensor, lq: torch.Tensor, pi: float) -> torch.Tensor:
    """Pointwise integrand of JS_π: ``π p log(p/m) + (1 − π) q log(q/m)``, ``m = πp + (1 − π)q``.

    Parameters
    ----------
    lp, lq : torch.Tensor
        ``log p`` and ``log q`` at the same points.
    pi : float
        Weight of P, ``0 < pi < 1``.

    Returns
    -------
    torch.Tensor
    """
    # logaddexp keeps log m finite where one density underflows.
    lm = torch.logaddexp(lp + math.log(pi), lq + math.log1p(-pi))
    return pi * kl_integrand(lp, lm) + (1.0 - pi) * kl_integrand(lq, lm)


def kl_quad(
    logp: LogDensity,
    logq: LogDensity,
    box: Box,
    order: int = 10,
    device: str | torch.device | None = None,
) -> float:
    """KL[P‖Q] = ∫ p (log p − log q) by quadrature.

    Parameters
    ----------
    logp, logq : callable
        Log densities of P and Q (see module docstring).
    box : Box
        Integration region, e.g. from :func:`integration_box`.
    order : int
        Gauss–Legendre nodes per subinterval and axis.
    device : str or torch.device, optional
        Where to evaluate.

    Returns
    -------
    float
        ``inf`` if Q vanishes where P does not.
    """

    def f(x: torch.Tensor) -> torch.Tensor:
        return kl_integrand(_eval(logp, x), _eval(logq, x))

    return integrate(f, box, order, device)


def jspi_quad(
    logp: LogDensity,
    logq: LogDensity,
    pi: float,
    box: Box,
    order: int = 10,
    device: str | torch.device | None = None,
) -> float:
    """Generalised Jensen–Shannon JS_π[P‖Q] = π KL[P‖M] + (1 − π) KL[Q‖M], M = πP + (1 − π)Q.

    Parameters
    ----------
    logp, logq : callable
        Log densities of P and Q (see module docstring).
    pi : float
        Weight of P in the mixture, ``0 < pi < 1``.
    box : Box
        Integration region, e.g. from :func:`integration_box`.
    order : int
        Gauss–Legendre nodes per subinterval and axis.
    device : str or torch.device, optional
        Where to evaluate.

    Returns
    -------
    float
    """
    if not 0.0 < pi < 1.0:
        raise ValueError(f"pi must lie in (0, 1), got {pi}")

    def f(x: torch.Tensor) -> torch.Tensor:
        return jspi_integrand(_eval(logp, x), _eval(logq, x), pi)

    return integrate(f, box, order, device)


def gaussian_log_density(mean: ArrayLike, cov: ArrayLike) -> LogDensity:
    """Vectorised log density of N(mean, cov) in 2-D (any dimension, in fact).

    Parameters
    ----------
    mean : array_like, shape (d,)
    cov : array_like, shape (d, d)
        Positive definite.

    Returns
    -------
    callable
        ``x (n, d) -> (n,)``, in ``x``'s dtype and device.
    """
    mu = np.asarray(mean, dtype=np.float64)
    c = np.asarray(cov, dtype=np.float64)
    chol = np.linalg.cholesky(c)
    prec = np.linalg.inv(c)
    const = -0.5 * len(mu) * math.log(2 * math.pi) - float(np.log(np.diag(chol)).sum())

    def logpdf(x: torch.Tensor) -> torch.Tensor:
        d = x - torch.as_tensor(mu, dtype=x.dtype, device=x.device)
        q = ((d @ torch.as_tensor(prec, dtype=x.dtype, device=x.device)) * d).sum(-1)
        return const - 0.5 * q

    return logpdf


def mixture_log_density(weights: ArrayLike, means: ArrayLike, covs: ArrayLike) -> LogDensity:
    """Vectorised log density of a Gaussian mixture.

    Parameters
    ----------
    weights : array_like, shape (k,)
        Mixture weights (normalised here).
    means : array_like, shape (k, d)
    covs : array_like, shape (k, d, d)

    Returns
    -------
    callable
        ``x (n, d) -> (n,)``.
    """
    w = np.asarray(weights, dtype=np.float64)
    logw = np.log(w / w.sum())
    comps = [
        gaussian_log_density(m, c) for m, c in zip(np.asarray(means), np.asarray(covs), strict=True)
    ]

    def logpdf(x: torch.Tensor) -> torch.Tensor:
        parts = torch.stack([float(lw) + f(x) for lw, f in zip(logw, comps, strict=True)], dim=-1)
        return torch.logsumexp(parts, dim=-1)

    return logpdf


def kl_gaussians(mu0: ArrayLike, cov0: ArrayLike, mu1: ArrayLike, cov1: ArrayLike) -> float:
    """Closed-form KL[N(mu0, cov0) ‖ N(mu1, cov1)] in any dimension.

    Parameters
    ----------
    mu0, mu1 : array_like, shape (d,)
    cov0, cov1 : array_like, shape (d, d)
        Positive definite.

    Returns
    -------
    float
    """
    m0, m1 = np.asarray(mu0, dtype=np.float64), np.asarray(mu1, dtype=np.float64)
    c0, c1 = np.asarray(cov0, dtype=np.float64), np.asarray(cov1, dtype=np.float64)
    d = m1 - m0
    _, ld0 = np.linalg.slogdet(c0)
    _, ld1 = np.linalg.slogdet(c1)
    tr = np.trace(np.linalg.solve(c1, c0))
    maha = d @ np.linalg.solve(c1, d)
    return float(0.5 * (tr + maha - len(m0) + ld1 - ld0))


def entropy_gaussian(cov: ArrayLike) -> float:
    """Differential entropy of N(·, cov), in nats.

    Parameters
    ----------
    cov : array_like, shape (d, d)

    Returns
    -------
    float
    """
    c = np.asarray(cov, dtype=np.float64)
    _, ld = np.linalg.slogdet(c)
    return float(0.5 * (len(c) * (1 + math.log(2 * math.pi)) + ld))
