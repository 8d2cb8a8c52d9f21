"""Densities as the divergence metrics see them: log-density callables, quadrature boxes, nodes.

A task or model whose density is *exactly* a finite Gaussian mixture may say so through an
optional method ``gaussian_components()`` returning :class:`GaussianComponents` (the gaussian
and mixture tasks, the Gaussian and Gaussian-mixture models do). Nothing else is needed; for
any other density the metrics fall back on its ``log_prob`` and its samples. This lets the
metrics choose a quadrature box and an exact float64 density without knowing which task or
model they are looking at (no name checks anywhere).

How the box is chosen (:func:`quadrature_box`), per side (P, then Q):

- declared components: each component's own span and resolution
  (:func:`~gbench_plugins.common.quadrature.integration_box`: ±10 marginal sd, subintervals
  of at most three conditional sd), which the quadrature module measured to be accurate to ~1e-9;
- otherwise, from samples: one Gaussian with the samples' mean and covariance (±10 sd: P's or
  Q's bulk and tails, coarsely), plus "pseudo-components" at up to 256 of the samples, each
  an isotropic Gaussian whose sd is the distance to its 8th nearest neighbour (an adaptive
  kernel bandwidth, floored at 5% of the samples' smallest sd so that near-duplicate samples do
  not explode the number of subintervals), spanning ±4 of its sds: fine subintervals where the
  samples are, coarse ones elsewhere.

A box built from samples has no accuracy guarantee. Its users (plugins/metrics/divergences.py)
accept it only when the samples look Gaussian-tailed (:func:`gaussian_tailed`), both densities
integrate to 1 over it, and two Gauss–Legendre orders agree; otherwise they use Monte Carlo.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike

from .quadrature import Box, LogDensity, _rule_1d, integration_box, mixture_log_density


class GaussianComponents(NamedTuple):
    """A density that is exactly ``Σ_j w_j N(means_j, covs_j)`` (float64 numpy arrays).

    Attributes
    ----------
    weights : np.ndarray, shape (k,)
        Mixture weights, summing to 1.
    means : np.ndarray, shape (k, d)
    covs : np.ndarray, shape (k, d, d)
        Positive definite.
    """

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    @classmethod
    def of(cls, weights: ArrayLike, means: ArrayLike, covs: ArrayLike) -> GaussianComponents:
        """Components from array-likes or tensors (converted to float64 numpy on the CPU)."""

        def arr(a: Any) -> np.ndarray:
            if isinstance(a, torch.Tensor):
                a = a.detach().cpu().double().numpy()
            return np.asarray(a, dtype=np.float64)

        w = arr(weights).reshape(-1)
        m = np.atleast_2d(arr(means))
        c = arr(covs)
        c = c[None] if c.ndim == 2 else c
        if not (len(w) == len(m) == len(c)) or c.shape[1:] != (m.shape[1], m.shape[1]):
            raise ValueError("weights (k,), means (k, d) and covs (k, d, d) do not agree")
        return cls(w / w.sum(), m, c)

    def log_density(self) -> LogDensity:
        """The exact log density as a vectorised callable (float64 in, float64 out)."""
        return mixture_log_density(self.weights, self.means, self.covs)


def gaussian_components(obj: Any) -> GaussianComponents | None:
    """``obj.gaussian_components()`` when the task or model declares it, else None."""
    method = getattr(obj, "gaussian_components", None)
    return None if method is None else method()


def _dtype_of(obj: Any) -> torch.dtype:
    if isinstance(obj, torch.nn.Module):
        param = next(obj.parameters(), None)
        return torch.float32 if param is None else param.dtype
    data = getattr(obj, "test", None)
    return data.dtype if isinstance(data, torch.Tensor) else torch.float32


def log_density(obj: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """A float64 log-density callable for a task or model.

    From its declared components when it has them (exact in float64, no network evaluation),
    otherwise its own ``log_prob`` evaluated in its own dtype and returned as float64.
    """
    comps = gaussian_components(obj)
    if comps is not None:
        return comps.log_density()
    dtype = _dtype_of(obj)
    return lambda x: obj.log_prob(x.to(dtype)).double()


#: Pseudo-components per sampled side, their neighbour rank and their half-span in bandwidths.
N_LOCAL, K_NN, LOCAL_SPAN = 256, 8, 4.0
#: Half-span in sds and largest subinterval in conditional sds (as integration_box's defaults).
N_STD, WIDTH = 10.0, 3.0


def _requests(means: np.ndarray, covs: np.ndarray, n_std: float) -> list[np.ndarray]:
    """Per axis, rows (lo, hi, largest step) asked for by Gaussian components."""
    prec = np.linalg.inv(covs)
    out = []
    for a in range(2):
        sd = np.sqrt(covs[:, a, a])
        lo, hi = means[:, a] - n_std * sd, means[:, a] + n_std * sd
        out.append(np.stack([lo, hi, WIDTH / np.sqrt(prec[:, a, a])], axis=1))
    return out


def _sample_requests(x: torch.Tensor) -> list[np.ndarray]:
    """What one side known only through samples asks for (see the module docstring)."""
    x = x.detach().double().cpu()
    mean = x.mean(0, keepdim=True).numpy()
    cov = np.atleast_2d(np.cov(x.numpy().T))
    scale = math.sqrt(float(np.trace(cov)) / 2) or 1.0
    sd_min = max(math.sqrt(max(float(np.linalg.eigvalsh(cov).min()), 0.0)), 1e-6 * scale)
    cov = cov + (1e-6 * scale) ** 2 * np.eye(2)
    reqs = _requests(mean, cov[None], N_STD)
    if len(x) > K_NN:
        centres = x[:N_LOCAL]
        # k + 1: the nearest "neighbour" of a centre is itself.
        h = torch.cdist(centres, x).topk(K_NN + 1, largest=False).values[:, -1].numpy()
        h = np.maximum(h, 0.05 * sd_min)
        local = _requests(centres.numpy(), h[:, None, None] ** 2 * np.eye(2), LOCAL_SPAN)
        reqs = [np.concatenate([r, loc]) for r, loc in zip(reqs, local, strict=True)]
    return reqs


def gaussian_tailed(x: torch.Tensor) -> bool:
    """Whether samples look no heavier-tailed than a Gaussian, as a box from samples assumes.

    Such a box reaches 10 of the samples' own sds: ample for Gaussian-like tails, but a
    heavier tail leaves mass outside, and KL[Q‖P] weights that mass by −log P, which grows
    without bound. For n Gaussian samples the largest Mahalanobis distance exceeds
    ``r = sqrt(2 ln(1000 n))`` (5.4 for n = 2000) with probability about 1e-3 in 2-D; samples
    that reach beyond it are taken as heavy-tailed.
    """
    x = x.detach().double().cpu()
    n = len(x)
    if n < 3:
        return False
    d = x - x.mean(0)
    cov = torch.cov(x.T).reshape(x.shape[1], x.shape[1])
    cov = cov + 1e-12 * torch.trace(cov) * torch.eye(x.shape[1], dtype=cov.dtype)
    r2 = (d @ torch.linalg.inv(cov) * d).sum(-1)
    return float(r2.max()) <= 2 * math.log(1000 * n)


def _sweep(req: np.ndarray) -> tuple[float, ...]:
    """Edges from the leftmost ``lo`` to the rightmost ``hi``, each subinterval no wider than
    the smallest step of any request it overlaps (a gap that no request covers is crossed in
    one subinterval, as integration_box does between distant components)."""
    lo, hi, step = req.T
    x, end = float(lo.min()), float(hi.max())
    edges = [x]
    while end - x > 1e-12 * (abs(end) + abs(x) + 1):
        if not ((lo <= x) & (hi > x)).any():  # a gap: jump to the next request
            nxt = float(lo[lo > x].min())
        else:
            # The widest w with w <= the step of every request that (x, x + w) overlaps:
            # stop just before the k-th request that starts ahead, or cross it and obey it.
            cover = (lo <= x) & (hi > x)
            ahead = lo > x
            order = np.argsort(lo[ahead])
            caps = np.minimum.accumulate(np.concatenate([[step[cover].min()], step[ahead][order]]))
            stops = np.concatenate([lo[ahead][order] - x, [np.inf]])
            width = float(np.max(np.minimum(caps, stops)))
            nxt = min(x + width, end)
        edges.append(nxt)
        x = nxt
    return tuple(edges)


def quadrature_box(
    sides: list[tuple[GaussianComponents | None, torch.Tensor | None]],
) -> tuple[Box, bool]:
    """The integration box for the densities in ``sides`` and whether it is exact.

    Parameters
    ----------
    sides : list of (components or None, samples or None)
        One entry per density (P, Q). A side with components uses them; otherwise its samples.

    Returns
    -------
    box : Box
    exact : bool
        True when every side declared its components: the box is then
        :func:`~gbench_plugins.common.quadrature.integration_box` of all of them, with the accuracy
        measured for it. Otherwise the box sweeps each axis so that every subinterval is no
        wider than any component or pseudo-component that overlaps it asks.
    """
    if all(comps is not None for comps, _ in sides):
        means = np.concatenate([c.means for c, _ in sides])
        covs = np.concatenate([c.covs for c, _ in sides])
        return integration_box(means, covs), True
    reqs: list[list[np.ndarray]] = []
    for comps, samples in sides:
        if comps is not None:
            reqs.append(_requests(comps.means, comps.covs, N_STD))
        elif samples is not None:
            reqs.append(_sample_requests(samples))
        else:
            raise ValueError("each side needs its components or samples")
    edges = [_sweep(np.concatenate([r[a] for r in reqs])) for a in range(2)]
    return Box((edges[0], edges[1])), False


def n_nodes(box: Box, order: int) -> int:
    """How many points a tensor-product rule of ``order`` puts in ``box``."""
    return (len(box.edges[0]) - 1) * (len(box.edges[1]) - 1) * order * order


class Terms(NamedTuple):
    """Quadrature weights and both log densities at the nodes of one rule."""

    weights: torch.Tensor
    log_p: torch.Tensor
    log_q: torch.Tensor

    def integrate(self, integrand: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
        """``Σ w · integrand(log p, log q)``."""
        return float((self.weights * integrand(self.log_p, self.log_q)).sum())


def quadrature_terms(
    logp: Callable[[torch.Tensor], torch.Tensor],
    logq: Callable[[torch.Tensor], torch.Tensor],
    box: Box,
    order: int,
    device: torch.device | str | None = None,
    chunk: int = 1 << 16,
) -> Terms:
    """Evaluate both log densities once on the nodes of ``box`` (in chunks, float64)."""
    # Not quad_rule: its cache would keep every sample-based box's (large, one-off) rule alive.
    (x, wx), (y, wy) = (_rule_1d(e, order) for e in box.edges)
    gx, gy = np.meshgrid(x, y, indexing="ij")
    pts = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), device=device)
    w = torch.as_tensor(np.outer(wx, wy).ravel(), device=device)
    lp = torch.cat([logp(pts[s : s + chunk]).reshape(-1) for s in range(0, len(pts), chunk)])
    lq = torch.cat([logq(pts[s : s + chunk]).reshape(-1) for s in range(0, len(pts), chunk)])
    return Terms(w, lp.double(), lq.double())


# The three divergence metrics integrate over the same box at the same evaluation (the runner
# reseeds each metric's stream identically, so Q's box samples agree): keep the nodes' log
# densities for the model's current state, so that a flow is evaluated once per checkpoint
# rather than three times. Entries go when the model changes or is garbage-collected.
_CACHE: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple, dict[tuple, Terms]]] = (
    weakref.WeakKeyDictionary()
)


def _state_key(module: torch.nn.Module) -> tuple:
    # In-place updates (optimiser steps, load_state_dict) bump a tensor's version counter.
    return tuple((t.data_ptr(), t._version) for t in (*module.parameters(), *module.buffers()))


def model_quadrature_terms(
    task: Any,
    model: torch.nn.Module,
    box: Box,
    order: int,
    device: torch.device | str | None = None,
) -> Terms:
    """:func:`quadrature_terms` of the task's and the model's log densities, reusing earlier
    values for the same task, model state, box and order."""
    state = _state_key(model)
    cached = _CACHE.get(model)
    if cached is None or cached[0] != state:
        cached = (state, {})
        _CACHE[model] = cached
    key = (id(task), box, order, str(device))
    if key not in cached[1]:
        cached[1][key] = quadrature_terms(log_density(task), log_density(model), box, order, device)
    return cached[1][key]
