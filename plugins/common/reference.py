"""Reference optima for the paper's Figure 1: an isotropic Gaussian fitted to an anisotropic one.

P = N(0, diag(a, b)) and Q = N(0, s² I) in 2-D. The optimal mean is 0 by symmetry, so only s²
is searched. KL[P‖Q] is minimised at the arithmetic mean (a + b)/2 and KL[Q‖P] at the harmonic
mean 2/(1/a + 1/b); the JS_π optimum is found numerically with the quadrature of
:mod:`gbench_plugins.common.quadrature`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from .quadrature import integration_box, jspi_integrand, kl_integrand, quad_rule

OBJECTIVES = ("jspi", "forward_kl", "reverse_kl")


def s2_forward_kl(a: float, b: float) -> float:
    """Variance s² minimising KL[P‖Q] (moment matching): ``(a + b) / 2``."""
    return (a + b) / 2


def s2_reverse_kl(a: float, b: float) -> float:
    """Variance s² minimising KL[Q‖P]: the harmonic mean ``2 / (1/a + 1/b)``."""
    return 2 / (1 / a + 1 / b)


@lru_cache(maxsize=16)
def _grid(a: float, b: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    # One rule for every s² in [min(a, b), max(a, b)] (where all three optima lie): the box
    # covers the widest Q and resolves the narrowest, so the objective is a smooth function of
    # s² (no rule switching mid-search) and log p is evaluated once.
    lo, hi = min(a, b), max(a, b)
    box = integration_box(
        np.zeros((3, 2)), [np.diag([a, b]), hi * np.eye(2), lo * np.eye(2)], n_std=10.0, width=2.0
    )
    pts, w = quad_rule(box, order=10)
    r2 = (pts**2).sum(-1)
    lp = -0.5 * (pts[:, 0] ** 2 / a + pts[:, 1] ** 2 / b) - math.log(2 * math.pi * math.sqrt(a * b))
    return pts, w, r2, lp


def isotropic_fit_divergence(
    a: float, b: float, s2: float, pi: float | None = None, objective: str = "jspi"
) -> float:
    """Divergence between P = N(0, diag(a, b)) and Q = N(0, s² I) by quadrature.

    Parameters
    ----------
    a, b : float
        P's variances, positive.
    s2 : float
        Q's variance, in ``[min(a, b), max(a, b)]`` for full accuracy (the box is sized for it).
    pi : float, optional
        Weight of P in JS_π; required for ``objective="jspi"``.
    objective : {"jspi", "forward_kl", "reverse_kl"}
        JS_π[P‖Q], KL[P‖Q] or KL[Q‖P].

    Returns
    -------
    float
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    _, w, r2, lp = _grid(float(a), float(b))
    lq = -0.5 * r2 / s2 - math.log(2 * math.pi * s2)
    if objective == "forward_kl":
        f = kl_integrand(lp, lq)
    elif objective == "reverse_kl":
        f = kl_integrand(lq, lp)
    else:
        if pi is None or not 0.0 < pi < 1.0:
            raise ValueError(f"objective 'jspi' needs 0 < pi < 1, got {pi}")
        f = jspi_integrand(lp, lq, pi)
    return float((w * f).sum())


def optimal_isotropic_s2(
    a: float, b: float, pi: float | None = None, objective: str = "jspi", xatol: float = 1e-8
) -> float:
    """Variance s² of Q = N(0, s² I) minimising a divergence to P = N(0, diag(a, b)).

    Bounded Brent search over ``log s²`` in ``[log min(a, b), log max(a, b)]``, which brackets
    every optimum here (the JS_π one lies between the harmonic and the arithmetic mean).

    Parameters
    ----------
    a, b : float
        P's variances, positive.
    pi : float, optional
        Weight of P in JS_π; required for ``objective="jspi"``.
    objective : {"jspi", "forward_kl", "reverse_kl"}
        What to minimise: JS_π[P‖Q], KL[P‖Q] or KL[Q‖P].
    xatol : float
        Absolute tolerance on ``log s²``.

    Returns
    -------
    float
        The optimal s².
    """
    if a <= 0 or b <= 0:
        raise ValueError("variances must be positive")
    if a == b:
        return float(a)
    lo, hi = math.log(min(a, b)), math.log(max(a, b))
    res = minimize_scalar(
        lambda t: isotropic_fit_divergence(a, b, math.exp(t), pi, objective),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": xatol},
    )
    if not res.success:
        raise RuntimeError(f"s² search failed: {res.message}")
    return float(math.exp(res.x))
