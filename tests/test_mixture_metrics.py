"""The divergence and two-sample metrics: zero (or chance) at Q = P, the closed forms for two
Gaussians by every route (quadrature from components, quadrature from samples, Monte Carlo),
and their declarations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gbench_plugins.common.quadrature import (
    gaussian_log_density,
    integration_box,
    jspi_quad,
    kl_gaussians,
)
from gbench_plugins.metrics.divergences import JSPi, KLForward, KLReverse
from gbench_plugins.metrics.two_sample import C2ST, MMD, PRDC
from gbench_plugins.models.flow import Flow
from gbench_plugins.models.gaussian import FullGaussian
from gbench_plugins.models.mixture import GaussianMixture
from gbench_plugins.tasks.gaussian import GaussianTask
from gbench_plugins.tasks.mixture import MixtureTask
from helpers import grid, registry_with

from benchmark_core.contract import EvalContext, Task
from benchmark_core.contract.budgets import PROFILES
from benchmark_core.contract.errors import UsageError

SMOKE = EvalContext(PROFILES["smoke"], torch.device("cpu"), 0, None)
QUICK = EvalContext(PROFILES["quick"], torch.device("cpu"), 0, None)
DIVERGENCES = (KLForward, KLReverse, JSPi)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def compute(metric, model, task, ctx=SMOKE, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():  # as the runner calls metrics
        return metric.compute(model, task, ctx)


def gaussian_model(task, mean, cov):
    """A FullGaussian set to N(mean, cov)."""
    torch.manual_seed(0)
    model = FullGaussian(task)
    chol = torch.linalg.cholesky(torch.as_tensor(cov, dtype=torch.float64)).float()
    with torch.no_grad():
        model.mu.copy_(torch.as_tensor(mean, dtype=torch.float32))
        model.log_diag.copy_(torch.log(torch.diagonal(chol)))
        model.off_diag.copy_(torch.tril(chol, -1))
    return model


def p_task():
    return GaussianTask(a=4.0, b=0.25, angle=30.0)


def p_cov(task):
    return task.covariance().double().numpy()


def mixture_equal_to(task):
    torch.manual_seed(0)
    model = GaussianMixture(task, k=task.k)
    with torch.no_grad():
        model.mu.copy_(task.centres)
        model.log_sd.fill_(math.log(task.std))
        model.logits.zero_()
    return model


def gaussian_flow(task, mean, sd):
    """A flow with identity couplings set to N(mean, diag(sd²)): no components, so the
    metrics must place their box from its samples."""
    torch.manual_seed(0)
    flow = Flow(task, layers=2, hidden=8)
    with torch.no_grad():
        flow.loc.copy_(torch.tensor(mean))
        flow.log_scale.copy_(torch.log(torch.tensor(sd)))
    return flow


# --------------------------------------------------------------------------- Q = P


@pytest.mark.parametrize("case", ["gaussian", "mixture"])
def test_divergences_vanish_at_q_equal_p_exactly_and_by_monte_carlo(case):
    if case == "gaussian":
        task = p_task()
        model = gaussian_model(task, [0.0, 0.0], p_cov(task))
    else:
        task = MixtureTask(k=8, std=0.2)
        model = mixture_equal_to(task)
    for cls in DIVERGENCES:
        for name, est in compute(cls(), model, task).items():
            # quadrature from the declared components: exact (stderr NaN); measured ≤ 2e-15
            assert math.isnan(est.stderr) and abs(est.value) < 1e-9, (name, est)
        for name, est in compute(cls(max_nodes=1), model, task).items():
            # forced Monte Carlo: 0 within its standard error (float32 vs float64 densities)
            assert abs(est.value) <= 3 * est.stderr + 1e-6, (name, est)


@pytest.mark.parametrize("case", ["gaussian", "mixture"])
def test_two_sample_metrics_are_at_chance_at_q_equal_p(case):
    if case == "gaussian":
        task = p_task()
        model = gaussian_model(task, [0.0, 0.0], p_cov(task))
    else:
        task = MixtureTask(k=8, std=0.2)
        model = mixture_equal_to(task)
    acc = compute(C2ST(), model, task)["c2st_acc"]
    assert abs(acc.value - 0.5) < 3 * acc.stderr and 0.005 < acc.stderr < 0.02, acc
    mmd = compute(MMD(), model, task)["mmd2"]
    assert abs(mmd.value) < 3 * mmd.stderr, mmd
    pr = compute(PRDC(k=5), model, task)
    # Naeem et al. (2020): at Q = P with N = M, coverage → 1 − 2^−k and density → 1; precision
    # and recall are near 1 (measured 0.991-0.999 at n = 2000, k = 5).
    assert pr["precision"].value > 0.97 and pr["recall"].value > 0.97, pr
    assert abs(pr["coverage"].value - (1 - 2**-5)) < 4 * pr["coverage"].stderr, pr
    assert abs(pr["density"].value - 1) < 4 * pr["density"].stderr, pr


# --------------------------------------------------------------------------- two Gaussians

QS = [([0.5, -0.3], [[1.0, 0.3], [0.3, 0.5]]), ([-1.0, 0.8], [[0.2, 0.0], [0.0, 3.0]])]


@pytest.mark.parametrize("mq,cq", QS)
def test_divergences_match_the_closed_forms_for_two_gaussians(mq, cq):
    task = p_task()
    cp = p_cov(task)
    model = gaussian_model(task, mq, cq)
    comps = model.gaussian_components()  # the float32-rounded parameters it holds
    mq, cq = comps.means[0], comps.covs[0]
    fwd, rev = kl_gaussians([0, 0], cp, mq, cq), kl_gaussians(mq, cq, [0, 0], cp)
    pis = [0.1, 0.5, 0.99]
    ref_box = integration_box([[0, 0], mq], [cp, cq], width=2.0)  # a finer, independent rule
    lp, lq = gaussian_log_density([0, 0], cp), gaussian_log_density(mq, cq)
    js = {JSPi.key(pi): jspi_quad(lp, lq, pi, ref_box) for pi in pis}
    exact = {"kl_forward": fwd, "kl_reverse": rev, **js}

    got = {}
    for cls in DIVERGENCES:
        got.update(compute(cls(), model, task))
    assert set(got) == set(exact)
    for name, value in exact.items():
        assert math.isnan(got[name].stderr)
        assert abs(got[name].value - value) < 1e-8 * max(1.0, value), (name, got[name], value)

    mc = {}
    for cls in DIVERGENCES:
        mc.update(compute(cls(max_nodes=1), model, task, ctx=QUICK))
    for name, value in exact.items():
        est = mc[name]
        assert 0 < est.stderr < 0.05 * max(value, 0.2), (name, est)
        assert abs(est.value - value) < 4 * est.stderr, (name, est, value)


def test_a_model_without_components_gets_a_sample_based_box_that_is_still_exact():
    task = p_task()
    mean, sd = [0.3, -0.2], [1.5, 0.6]
    flow = gaussian_flow(task, mean, sd)
    cq = np.diag(np.square(sd))
    values = {}
    for cls in DIVERGENCES:
        values.update(compute(cls(), flow, task))
    assert all(math.isnan(e.stderr) for e in values.values()), values  # quadrature accepted
    # float32 flow densities: measured errors 1e-7 .. 4e-7 against the float64 closed forms.
    assert abs(values["kl_forward"].value - kl_gaussians([0, 0], p_cov(task), mean, cq)) < 1e-5
    assert abs(values["kl_reverse"].value - kl_gaussians(mean, cq, [0, 0], p_cov(task))) < 1e-5


def test_a_heavy_tailed_flow_falls_back_to_monte_carlo():
    from test_mixture_models import _bent_flow

    task = MixtureTask(k=4, std=0.3)
    wild = _bent_flow(task, bend=0.4)  # samples out to 20-40 sds: the box misses mass
    for cls in DIVERGENCES:
        for name, est in compute(cls(), wild, task).items():
            assert math.isfinite(est.value) and 0 < est.stderr < math.inf, (name, est)


class Gaussian3D(Task):
    """A 3-D Gaussian task: no quadrature there, the metrics must use Monte Carlo."""

    name = "gaussian3d"
    provides = frozenset({"log_prob", "sample"})
    dim = 3
    cov = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]])

    def setup(self):
        g = torch.Generator().manual_seed(0)
        self.scale_tril = torch.linalg.cholesky(self.cov)
        self.train = torch.randn(2000, 3, generator=g) @ self.scale_tril.T
        self.test = torch.randn(10_000, 3, generator=g) @ self.scale_tril.T

    def log_prob(self, x):
        return torch.distributions.MultivariateNormal(
            torch.zeros(3), scale_tril=self.scale_tril
        ).log_prob(x)


def test_beyond_two_dimensions_the_divergences_are_monte_carlo_estimates():
    task = Gaussian3D()
    torch.manual_seed(0)
    model = FullGaussian(task)  # N(offset, I)
    mq, cq = model.mu.detach().double().numpy(), np.eye(3)
    fwd = compute(KLForward(), model, task, ctx=QUICK)["kl_forward"]
    rev = compute(KLReverse(), model, task, ctx=QUICK)["kl_reverse"]
    for est, value in ((fwd, kl_gaussians(np.zeros(3), task.cov, mq, cq)),
                       (rev, kl_gaussians(mq, cq, np.zeros(3), task.cov))):  # fmt: skip
        assert 0 < est.stderr < 0.05 and abs(est.value - value) < 4 * est.stderr, (est, value)
    js = compute(JSPi(pis=[0.5]), model, task, ctx=QUICK)["jspi[pi=0.5]"]
    assert 0 < js.stderr < 0.01 and 0 < js.value < math.log(2)


def test_two_sample_metrics_see_a_difference():
    task = p_task()
    model = gaussian_model(task, [0.5, 0.0], np.eye(2))
    acc = compute(C2ST(), model, task)["c2st_acc"]
    assert acc.value > 0.5 + 10 * acc.stderr
    mmd = compute(MMD(), model, task)["mmd2"]
    assert mmd.value > 10 * mmd.stderr
    pr = compute(PRDC(), model, task)
    assert pr["coverage"].value < 0.85 and pr["density"].value < 0.9, pr  # measured 0.74, 0.82
    # A narrow Q inside P's bulk: quality without diversity (measured 0.999, 0.74, 0.54).
    narrow = compute(PRDC(), gaussian_model(task, [0.0, 0.0], 0.3 * np.eye(2)), task)
    assert narrow["precision"].value > 0.97, narrow
    assert narrow["recall"].value < 0.85 and narrow["coverage"].value < 0.7, narrow


# --------------------------------------------------------------------------- declarations


def test_jspi_metric_names_its_values_and_validates_its_pis():
    task = p_task()
    model = gaussian_model(task, [0.0, 0.0], np.eye(2))
    assert set(compute(JSPi(pis=[0.2, 0.75]), model, task)) == {"jspi[pi=0.2]", "jspi[pi=0.75]"}
    reg = registry_with()
    [cell] = grid(reg, metrics="jspi[pis=[0.3]]")
    assert cell.metrics[0].params["pis"] == [0.3]
    for bad in ("[0,0.5]", "[0.5,1]", "[]", "[a]"):
        with pytest.raises(UsageError, match="strictly between 0 and 1"):
            grid(reg, metrics=f"jspi[pis={bad}]")


def test_declared_directions_and_requirements():
    assert {c.name: c.direction for c in (*DIVERGENCES, C2ST, MMD, PRDC)} == {
        "kl_forward": "min",
        "kl_reverse": "min",
        "jspi": "min",
        "c2st": "min",
        "mmd": "min",
        "prdc": "max",
    }
    assert KLForward.requirements("vector") == ({"log_prob"}, {"log_prob"})
    assert KLReverse.requirements("vector") == ({"log_prob"}, {"log_prob", "sample"})
    for cls in (C2ST, MMD, PRDC):
        assert cls.requirements("vector") == (frozenset(), {"sample"})
