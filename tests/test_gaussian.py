"""The gaussian task and the Gaussian models against scipy's densities and closed forms."""

import math

import numpy as np
import pytest
import torch
from gbench_plugins.models.gaussian import FullGaussian, IsotropicGaussian
from gbench_plugins.tasks.gaussian import GaussianTask
from scipy import stats


def rotated_cov(a, b, angle):
    t = math.radians(angle)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return rot @ np.diag([a, b]) @ rot.T


def test_task_log_prob_matches_scipy_and_data_has_the_declared_covariance():
    task = GaussianTask(a=9.0, b=0.5, angle=30.0, n_train=50_000)
    cov = rotated_cov(9, 0.5, 30)
    x = task.test[:100]
    expected = stats.multivariate_normal(np.zeros(2), cov).logpdf(x.double().numpy())
    np.testing.assert_allclose(task.log_prob(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    emp = np.cov(task.train.double().numpy().T)
    np.testing.assert_allclose(emp, cov, atol=4 * 9 * math.sqrt(2 / 50_000))


def test_task_data_is_fixed_by_its_seed_and_train_test_are_separate():
    one, two = GaussianTask(seed=3), GaussianTask(seed=3)
    assert torch.equal(one.train, two.train) and torch.equal(one.test, two.test)
    assert not torch.equal(one.train[: len(one.test)], one.test)
    assert not torch.equal(GaussianTask(seed=4).train, one.train)


@pytest.mark.parametrize("cls", [IsotropicGaussian, FullGaussian])
def test_model_log_prob_matches_scipy_and_samples_match_moments(cls):
    task = GaussianTask()
    torch.manual_seed(0)
    model = cls(task)
    with torch.no_grad():
        model.mu.copy_(torch.tensor([0.5, -1.0]))
        if cls is FullGaussian:
            model.log_diag.copy_(torch.tensor([0.3, -0.2]))
            model.off_diag.copy_(torch.tensor([[0.0, 0.0], [0.7, 0.0]]))
        else:
            model.log_s.fill_(0.4)
    mean = model.mean().detach().double().numpy()
    cov = model.covariance().detach().double().numpy()
    x = task.test[:200]
    expected = stats.multivariate_normal(mean, cov).logpdf(x.double().numpy())
    np.testing.assert_allclose(model.log_prob(x).detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    samples = model.sample(200_000).double().numpy()
    np.testing.assert_allclose(samples.mean(0), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(samples.T), cov, atol=0.03)
    assert model.rsample(4).requires_grad


def test_moments_metric_is_exact_for_gaussians_and_sampled_otherwise():
    from gbench_plugins.metrics.moments import Moments

    from benchmark_core.contract import EvalContext
    from benchmark_core.contract.budgets import PROFILES

    task = GaussianTask(a=9.0, b=0.5, angle=30.0)
    torch.manual_seed(0)
    model = FullGaussian(task)
    with torch.no_grad():
        model.off_diag.copy_(torch.tensor([[0.0, 0.0], [1.5, 0.0]]))
    ctx = EvalContext(PROFILES["quick"], torch.device("cpu"), 0, None)
    exact = Moments().compute(model, task, ctx)
    cov = model.covariance().detach().double().numpy()
    assert exact["cov_01"].value == pytest.approx(cov[0, 1])
    assert exact["cov_eig_0"].value == pytest.approx(np.linalg.eigvalsh(cov)[1])
    assert math.isnan(exact["mean_0"].stderr)

    class SamplesOnly(FullGaussian):
        provides = frozenset({"sample", "rsample"})

    torch.manual_seed(0)
    sampled = SamplesOnly(task)
    sampled.load_state_dict(model.state_dict())
    est = Moments().compute(sampled, task, ctx)
    n = ctx.budget.n_eval
    for key in ("cov_00", "cov_01", "cov_11"):
        assert est[key].value == pytest.approx(exact[key].value, abs=6 * 3 / math.sqrt(n))
    assert abs(est["mean_0"].value - exact["mean_0"].value) < 4 * est["mean_0"].stderr
