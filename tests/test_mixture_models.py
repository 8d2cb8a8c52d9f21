"""The mixture task and the models gaussian_mixture, flow and mlp_generator: densities against
scipy and quadrature, samples against densities, and the mixture's reparameterised gradient
against the exact one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gbench_plugins.common.densities import gaussian_components, log_density, quadrature_box
from gbench_plugins.common.quadrature import integrate, integration_box, quad_rule
from gbench_plugins.models.flow import Flow
from gbench_plugins.models.gaussian import FullGaussian, IsotropicGaussian
from gbench_plugins.models.generator import MLPGenerator
from gbench_plugins.models.mixture import GaussianMixture
from gbench_plugins.tasks.mixture import MixtureTask, mode_centres
from scipy import stats
from scipy.special import logsumexp


@pytest.fixture(autouse=True)
def _one_thread():
    # As the harness runs these 2-D cells (Task.max_threads = 1): far faster on this machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def scipy_mixture_logpdf(x, means, covs, weights):
    parts = [
        math.log(w) + stats.multivariate_normal(m, c).logpdf(x)
        for w, m, c in zip(weights, means, covs, strict=True)
    ]
    return logsumexp(np.stack(parts, -1), axis=-1)


# --------------------------------------------------------------------------- the task


def test_layouts_put_the_modes_where_documented():
    ring = mode_centres(2, 3.0, "ring").numpy()
    np.testing.assert_array_equal(ring, [[3.0, 0.0], [-3.0, 0.0]])
    ring8 = mode_centres(8, 2.0, "ring").numpy()
    np.testing.assert_allclose(np.linalg.norm(ring8, axis=1), 2.0)
    grid9 = mode_centres(9, 1.0, "grid").numpy()
    assert sorted(map(tuple, grid9)) == [(x, y) for x in (-1, 0, 1) for y in (-1, 0, 1)]
    grid5 = mode_centres(5, 1.0, "grid").numpy()  # 3 columns, the second row part-filled
    np.testing.assert_array_equal(grid5, [[-1, 1], [0, 1], [1, 1], [-1, -1], [0, -1]])


@pytest.mark.parametrize("layout,k", [("ring", 8), ("grid", 9), ("ring", 2)])
def test_task_density_matches_scipy_integrates_to_one_and_fits_its_data(layout, k):
    task = MixtureTask(k=k, radius=2.0, std=0.3, layout=layout)
    means = task.centres.double().numpy()
    covs = [0.09 * np.eye(2)] * k
    x = task.test[:300].double()
    expected = scipy_mixture_logpdf(x.numpy(), means, covs, [1 / k] * k)
    np.testing.assert_allclose(task.log_prob(x).numpy(), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(task.log_prob(x.float()).numpy(), expected, rtol=1e-5, atol=1e-5)
    # The declared components are the same density.
    comps = task.gaussian_components()
    np.testing.assert_allclose(comps.log_density()(x).numpy(), expected, atol=1e-10)
    box = integration_box(comps.means, comps.covs)
    assert abs(integrate(lambda z: task.log_prob(z).exp(), box) - 1) < 1e-9
    # The fixed data follows P: mean and covariance within 4 standard errors (n = 10,000).
    data = task.train.double()
    mean, cov = task.mean().double(), task.covariance().double()
    se = (torch.diagonal(cov) / len(data)).sqrt()
    assert ((data.mean(0) - mean).abs() < 4 * se).all()
    np.testing.assert_allclose(torch.cov(data.T).numpy(), cov.numpy(), atol=0.1)


def test_task_data_is_fixed_by_its_seed_and_train_test_are_separate():
    one, two = MixtureTask(seed=3), MixtureTask(seed=3)
    assert torch.equal(one.train, two.train) and torch.equal(one.test, two.test)
    assert not torch.equal(one.train[: len(one.test)], one.test)
    assert not torch.equal(MixtureTask(seed=4).train, one.train)
    torch.manual_seed(0)
    assert one.sample(5).shape == (5, 2)


# --------------------------------------------------------------------------- density models


def _mixture_model(task):
    torch.manual_seed(1)
    model = GaussianMixture(task, k=3)
    with torch.no_grad():
        model.logits.copy_(torch.tensor([0.3, -0.5, 0.0]))
        model.mu.copy_(torch.tensor([[1.0, -0.5], [-1.5, 0.5], [0.2, 1.2]]))
        model.log_sd.copy_(torch.tensor([[-0.5, 0.1], [0.2, -0.9], [-0.3, -0.3]]))
    return model


def _bent_flow(task, bend=0.2):
    # A flow far from Gaussian: random weights in every coupling's output layer. Beyond
    # bend ≈ 0.3 the tails grow heavy (samples 20-40 sds out): see the metrics' tests.
    torch.manual_seed(2)
    model = Flow(task, layers=4, hidden=16)
    with torch.no_grad():
        for layer in model.couplings:
            last = layer.net[-1]
            last.set_(bend * torch.randn_like(last.weight), 0.2 * torch.randn_like(last.bias))
    return model


def _gaussian(cls):
    def build(task):
        torch.manual_seed(3)
        model = cls(task)
        with torch.no_grad():
            model.mu.copy_(torch.tensor([0.4, -0.3]))
            if cls is FullGaussian:
                model.log_diag.copy_(torch.tensor([0.2, -0.4]))
                model.off_diag.copy_(torch.tensor([[0.0, 0.0], [0.6, 0.0]]))
        return model

    return build


DENSITY_MODELS = {
    "isotropic_gaussian": _gaussian(IsotropicGaussian),
    "gaussian": _gaussian(FullGaussian),
    "gaussian_mixture": _mixture_model,
    "flow": _bent_flow,
}


@pytest.mark.parametrize("name", DENSITY_MODELS)
def test_density_models_integrate_to_one_and_agree_with_their_samples(name):
    task = MixtureTask(k=4, std=0.3)
    model = DENSITY_MODELS[name](task)
    torch.manual_seed(4)
    with torch.no_grad():
        x = model.sample(50_000).double()
        # The box comes from the model's samples alone (not its components), as for any model.
        box, _ = quadrature_box([(None, x[:2000])])
        pts, w = quad_rule(box, order=10)
        lq = model.log_prob(pts.float()).double()
    q = lq.exp()
    # float32 densities on a box from samples: measured |∫q − 1| = 8e-9 .. 3e-8.
    assert abs(float((w * q).sum()) - 1) < 1e-6
    # Moments, tail masses and the entropy, by quadrature and from the samples.
    feats = {
        "x": lambda z: z[:, 0],
        "y": lambda z: z[:, 1],
        "x^2": lambda z: z[:, 0] ** 2,
        "xy": lambda z: z[:, 0] * z[:, 1],
        "x > 0.5": lambda z: (z[:, 0] > 0.5).double(),
        "y < -0.5": lambda z: (z[:, 1] < -0.5).double(),
    }
    for label, f in feats.items():
        exact = float((w * q * f(pts)).sum())
        vals = f(x)
        se = float(vals.std()) / math.sqrt(len(vals))
        assert abs(float(vals.mean()) - exact) < 4 * se, (label, float(vals.mean()), exact, se)
    with torch.no_grad():
        neg_entropy = model.log_prob(x.float()).double()
    exact = float((w * q * lq).sum())
    se = float(neg_entropy.std()) / math.sqrt(len(x))
    assert abs(float(neg_entropy.mean()) - exact) < 4 * se


def test_gaussian_mixture_density_components_and_moments_are_exact():
    task = MixtureTask()
    model = _mixture_model(task)
    w = torch.softmax(model.logits, 0).detach().double().numpy()
    mu = model.mu.detach().double().numpy()
    covs = [np.diag(np.exp(2 * s)) for s in model.log_sd.detach().double().numpy()]
    x = task.test[:300]
    expected = scipy_mixture_logpdf(x.double().numpy(), mu, covs, w)
    with torch.no_grad():
        np.testing.assert_allclose(model.log_prob(x).numpy(), expected, rtol=1e-5, atol=1e-5)
        comps = gaussian_components(model)
        np.testing.assert_allclose(comps.log_density()(x.double()).numpy(), expected, atol=1e-6)
        mean = w @ mu
        second = sum(wj * (c + np.outer(m, m)) for wj, m, c in zip(w, mu, covs, strict=True))
        np.testing.assert_allclose(model.mean().numpy(), mean, atol=1e-6)
        np.testing.assert_allclose(
            model.covariance().numpy(), second - np.outer(mean, mean), atol=1e-5
        )
    assert model.provides >= {"log_prob", "sample", "rsample", "moments"}


def test_gaussian_mixture_starts_at_distinct_data_points():
    task = MixtureTask()
    torch.manual_seed(0)
    model = GaussianMixture(task, k=8)
    rows = {tuple(r) for r in task.train.tolist()}
    assert all(tuple(m) in rows for m in model.mu.tolist())
    assert len({tuple(m) for m in model.mu.tolist()}) == 8
    torch.manual_seed(0)
    assert torch.equal(GaussianMixture(task, k=8).mu, model.mu)  # seeded by the cell


def test_gaussian_mixture_rsample_gives_the_exact_gradient():
    # ∇θ E_Q[g(x)] two ways: the implicit reparameterisation (Monte Carlo over rsample) and
    # ∫ g ∇q by quadrature. g is nonlinear in both coordinates, so every parameter matters.
    task = MixtureTask()
    model = _mixture_model(task).double()

    def g(x):
        return torch.sin(1.5 * x[:, 0]) + 0.3 * x[:, 0] * x[:, 1] ** 2 + torch.tanh(x[:, 1])

    params = [model.logits, model.mu, model.log_sd]
    comps = gaussian_components(model)
    pts, w = quad_rule(integration_box(comps.means, comps.covs), order=10)
    exact = torch.autograd.grad((w * g(pts) * model.log_prob(pts).exp()).sum(), params)
    exact = torch.cat([e.reshape(-1) for e in exact])
    torch.manual_seed(5)
    batches = []
    for _ in range(40):
        grads = torch.autograd.grad(g(model.rsample(5000)).mean(), params)
        batches.append(torch.cat([e.reshape(-1) for e in grads]))
    est = torch.stack(batches)
    mean, se = est.mean(0), est.std(0) / math.sqrt(len(est))
    z = (mean - exact) / se
    assert (z.abs() < 4).all(), z
    # The weights get a real gradient (a plain "pick a component, add noise" would give 0).
    assert exact[:3].abs().max() > 0.05 and (se[:3] < 0.2 * exact[:3].abs().max()).all()


# --------------------------------------------------------------------------- flow, generator


def test_flow_samples_carry_gradients_and_start_at_the_data_gaussian():
    task = MixtureTask(k=2, std=0.5)
    torch.manual_seed(0)
    flow = Flow(task)
    assert flow.rsample(8).requires_grad and "log_prob" in flow.provides
    loc, sd = task.train.mean(0), task.train.std(0)
    x = task.test[:50]
    # Zero-initialised couplings: Q is N(loc + offset, diag(sd²)) exactly.
    expected = stats.multivariate_normal(
        flow.loc.detach().numpy(), np.diag(sd.numpy() ** 2)
    ).logpdf(x.numpy())
    np.testing.assert_allclose(flow.log_prob(x).detach().numpy(), expected, rtol=1e-5)
    assert ((flow.loc.detach() - loc).abs() < 0.5 * sd).all()


def test_mlp_generator_is_implicit_and_starts_at_the_data_scale():
    task = MixtureTask()
    torch.manual_seed(0)
    gen = MLPGenerator(task)
    assert gen.provides == frozenset({"sample", "rsample"})
    assert gen.rsample(4).requires_grad
    x = gen.sample(20_000)
    ratio = x.std(0) / task.train.std(0)
    assert ((ratio > 0.7) & (ratio < 1.5)).all(), ratio  # not collapsed onto a point
    with pytest.raises(NotImplementedError):
        gen.log_prob(x)


def test_log_density_helper_uses_components_in_float64_and_log_prob_otherwise():
    task = MixtureTask()
    flow = _bent_flow(task)
    x = task.test[:20].double()
    assert log_density(task)(x).dtype == torch.float64
    np.testing.assert_allclose(log_density(task)(x), task.log_prob(x), atol=1e-12)
    with torch.no_grad():
        np.testing.assert_allclose(log_density(flow)(x), flow.log_prob(x.float()), atol=1e-6)
