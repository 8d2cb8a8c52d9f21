"""The gaussian task and the Gaussian models against scipy's densities and closed forms."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from plugins.models.gaussian import FullGaussian, IsotropicGaussian
from plugins.tasks.gaussian import GaussianTask


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
