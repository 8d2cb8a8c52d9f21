"""Quadrature divergences against closed forms and the JS_π identities of docs/science.md §1.3."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gbench_plugins.common.quadrature import (
    Box,
    entropy_gaussian,
    gaussian_log_density,
    integrate,
    integration_box,
    jspi_quad,
    kl_gaussians,
    kl_quad,
    mixture_log_density,
)

# (mean P, cov P, mean Q, cov Q): anisotropic, correlated, very narrow vs wide, shifted.
PAIRS = [
    ([0, 0], np.diag([4.0, 0.25]), [0, 0], 2.0 * np.eye(2)),
    ([0, 0], np.diag([4.0, 0.25]), [0, 0], 0.47 * np.eye(2)),
    ([1, -0.5], [[1, 0.9], [0.9, 1]], [0, 0], [[0.3, 0], [0, 2]]),
    ([0, 0], [[1, 0.99], [0.99, 1]], [0.3, 0], [[1, -0.5], [-0.5, 1]]),
    ([5, 5], 0.01 * np.eye(2), [0, 0], 9.0 * np.eye(2)),
]

RING_MEANS = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)
RING_COVS = np.stack([0.01 * np.eye(2)] * 8)


@pytest.fixture(autouse=True)
def _one_thread():
    # As the harness runs 2-D cells (Task.max_threads = 1): on this shared 2-core machine two
    # intra-op threads made these small workloads 5-20x slower (thread hand-offs).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _pair(i: int):
    m0, c0, m1, c1 = PAIRS[i]
    box = integration_box([m0, m1], [c0, c1])
    return gaussian_log_density(m0, c0), gaussian_log_density(m1, c1), box


def _ring_vs(mean, cov):
    p = mixture_log_density(np.ones(8), RING_MEANS, RING_COVS)
    q = gaussian_log_density(mean, cov)
    means = np.concatenate([RING_MEANS, [mean]])
    covs = np.concatenate([RING_COVS, [cov]])
    return p, q, means, covs


def test_kl_gaussians_closed_form_known_values():
    assert kl_gaussians([0, 0], np.eye(2), [0, 0], np.eye(2)) == pytest.approx(0.0, abs=1e-15)
    # 1-D: KL[N(0,1) || N(1,4)] = log 2 + (1 + 1)/8 - 1/2.
    assert kl_gaussians([0], [[1]], [1], [[4]]) == pytest.approx(math.log(2) + 0.25 - 0.5)


@pytest.mark.parametrize("i", range(len(PAIRS)))
def test_kl_quad_matches_closed_form(i):
    m0, c0, m1, c1 = PAIRS[i]
    p, q, box = _pair(i)
    # Measured: within 3e-11 absolute (5e-13 relative for the KL of ~3400) on these pairs.
    assert kl_quad(p, q, box) == pytest.approx(kl_gaussians(m0, c0, m1, c1), rel=1e-11, abs=1e-9)
    assert kl_quad(q, p, box) == pytest.approx(kl_gaussians(m1, c1, m0, c0), rel=1e-11, abs=1e-9)


def test_box_integrates_densities_to_one():
    for i in range(len(PAIRS)):
        p, q, box = _pair(i)
        for f in (p, q):
            assert integrate(lambda x, f=f: f(x).exp(), box) == pytest.approx(1.0, abs=1e-10)
    p, _, means, covs = _ring_vs([0, 0], 2.5 * np.eye(2))
    assert integrate(lambda x: p(x).exp(), integration_box(means, covs)) == pytest.approx(
        1.0, abs=1e-10
    )


def test_uniform_box_and_numpy_callables():
    m0, c0, m1, c1 = PAIRS[0]
    p, q, _ = _pair(0)
    box = Box.uniform((-25, -25), (25, 25), n_sub=(40, 60))
    assert box.lo == (-25.0, -25.0) and box.hi == (25.0, 25.0)
    assert kl_quad(p, q, box) == pytest.approx(kl_gaussians(m0, c0, m1, c1), abs=1e-9)
    # Edges given as lists are normalised (the rule cache needs a hashable Box).
    assert Box([list(box.edges[0]), list(box.edges[1])]) == box
    with pytest.raises(ValueError):
        Box(((0.0, 1.0, 0.5), (0.0, 1.0)))
    # A density written with numpy gives the same answer.
    inv, logdet = np.linalg.inv(c1), np.log(np.linalg.det(c1))

    def q_numpy(x: torch.Tensor) -> np.ndarray:
        z = x.numpy()
        return -0.5 * np.einsum("ni,ij,nj->n", z, inv, z) - 0.5 * logdet - math.log(2 * math.pi)

    assert kl_quad(p, q_numpy, box) == pytest.approx(kl_quad(p, q, box), abs=1e-13)


def test_separated_mixtures_reduce_to_discrete_divergences():
    # Components 40 std apart: overlap ~exp(-200), so the divergences are those of the weights.
    means = np.array([[-20.0, 0.0], [20.0, 0.0]])
    covs = np.stack([np.eye(2)] * 2)
    w, v = np.array([0.3, 0.7]), np.array([0.6, 0.4])
    p, q = mixture_log_density(w, means, covs), mixture_log_density(v, means, covs)
    box = integration_box(means, covs)
    assert kl_quad(p, q, box) == pytest.approx(float(np.sum(w * np.log(w / v))), abs=1e-10)
    for pi in (0.1, 0.5, 0.9):
        m = pi * w + (1 - pi) * v
        js = pi * np.sum(w * np.log(w / m)) + (1 - pi) * np.sum(v * np.log(v / m))
        assert jspi_quad(p, q, pi, box) == pytest.approx(float(js), abs=1e-10)


@pytest.mark.parametrize("qmean, qvar", [([0.0, 0.0], 2.5), ([2.0, 0.0], 0.02)])
def test_ring_mixture_default_rule_is_converged(qmean, qvar):
    p, q, means, covs = _ring_vs(qmean, qvar * np.eye(2))
    coarse = integration_box(means, covs)
    # This finer rule agrees with width=0.7, order=16 (10M nodes) to ~4e-15.
    fine = integration_box(means, covs, n_std=11.0, width=2.0)
    # Measured differences of the default rule: <= 8e-10 (JS) and 2e-12 relative (KL).
    for pi in (0.1, 0.5, 0.9):
        ref = jspi_quad(p, q, pi, fine, order=12)
        assert jspi_quad(p, q, pi, coarse) == pytest.approx(ref, abs=5e-9)
    assert kl_quad(p, q, coarse) == pytest.approx(kl_quad(p, q, fine, order=12), rel=1e-10)


@pytest.mark.parametrize("i", range(len(PAIRS)))
def test_jspi_symmetry_and_bounds(i):
    p, q, box = _pair(i)
    for pi in (0.01, 0.3, 0.5, 0.8, 0.99):
        js = jspi_quad(p, q, pi, box)
        # JS_π[P‖Q] = JS_{1−π}[Q‖P], and 0 <= JS_π <= H(π).
        assert jspi_quad(q, p, 1 - pi, box) == pytest.approx(js, abs=1e-13)
        assert 0.0 < js < -(pi * math.log(pi) + (1 - pi) * math.log(1 - pi))
    assert jspi_quad(p, p, 0.3, box) == pytest.approx(0.0, abs=1e-14)


@pytest.mark.parametrize("i", [0, 2, 4])
def test_js_half_is_ordinary_js_via_entropies(i):
    _, c0, _, c1 = PAIRS[i]
    p, q, box = _pair(i)

    def neg_m_log_m(x: torch.Tensor) -> torch.Tensor:
        lm = torch.logaddexp(p(x), q(x)) - math.log(2)
        return -lm.exp() * lm

    # Ordinary JS = H(M) − (H(P) + H(Q))/2 with M the equal mixture.
    ordinary = integrate(neg_m_log_m, box) - 0.5 * (entropy_gaussian(c0) + entropy_gaussian(c1))
    assert jspi_quad(p, q, 0.5, box) == pytest.approx(ordinary, abs=1e-9)


@pytest.mark.parametrize("pi", [0.1, 0.5, 0.9])
def test_optimal_discriminator_value(pi):
    # V(D*) = π E_P log D* + (1 − π) E_Q log(1 − D*) = JS_π + π log π + (1 − π) log(1 − π).
    p, q, box = _pair(2)

    def v_integrand(x: torch.Tensor) -> torch.Tensor:
        lp, lq = p(x), q(x)
        a, b = lp + math.log(pi), lq + math.log1p(-pi)
        lm = torch.logaddexp(a, b)
        return pi * lp.exp() * (a - lm) + (1 - pi) * lq.exp() * (b - lm)

    expected = jspi_quad(p, q, pi, box) + pi * math.log(pi) + (1 - pi) * math.log1p(-pi)
    assert integrate(v_integrand, box) == pytest.approx(expected, abs=1e-10)


def test_jspi_limits_approach_the_two_kls():
    # Variances within a factor 2 of each other: the chi-square terms are finite, so the
    # approach to the limits is linear in π (resp. 1 − π).
    mp, cp, mq, cq = [0.5, 0.0], np.diag([1.5, 0.8]), [0.0, 0.0], np.eye(2)
    p, q = gaussian_log_density(mp, cp), gaussian_log_density(mq, cq)
    box = integration_box([mp, mq], [cp, cq], width=2.0)
    kl_pq, kl_qp = kl_gaussians(mp, cp, mq, cq), kl_gaussians(mq, cq, mp, cp)
    errs_fwd, errs_rev = [], []
    for eps in (1e-2, 1e-3, 1e-4):
        errs_fwd.append(abs(jspi_quad(p, q, eps, box) / eps - kl_pq) / kl_pq)
        errs_rev.append(abs(jspi_quad(p, q, 1 - eps, box) / eps - kl_qp) / kl_qp)
        # Erratum 2: JS_{1−π}[P‖Q]/π → KL[Q‖P], the same statement mirrored.
        assert jspi_quad(q, p, eps, box) / eps == pytest.approx(
            jspi_quad(p, q, 1 - eps, box) / eps, rel=1e-9
        )
    for errs in (errs_fwd, errs_rev):
        assert errs[-1] < 5e-4  # measured 2.5e-4
        assert errs[1] < errs[0] / 5 and errs[2] < errs[1] / 5


def test_jspi_rejects_pi_outside_open_interval():
    p, q, box = _pair(0)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError):
            jspi_quad(p, q, bad, box)
