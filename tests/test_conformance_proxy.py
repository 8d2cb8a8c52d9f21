"""The capability proxies of the conformance suite."""

import contextlib

import pytest
import torch
from gbench_plugins.models.gaussian import IsotropicGaussian
from gbench_plugins.tasks.gaussian import GaussianTask

from benchmark_core.conformance.proxy import (
    MODEL_METHODS,
    Restricted,
    UndeclaredCapability,
    licensed,
)
from benchmark_core.contract import Model


@pytest.fixture
def model():
    torch.manual_seed(0)
    return IsotropicGaussian(GaussianTask(n_train=8, n_test=8))


def test_declared_capabilities_pass_through_and_others_are_refused_and_recorded(model):
    seen = []
    proxy = Restricted(model, frozenset({"log_prob"}), MODEL_METHODS, "model", seen)
    assert torch.equal(proxy.log_prob(torch.zeros(1, 2)), model.log_prob(torch.zeros(1, 2)))
    assert list(proxy.parameters()) == list(model.parameters())
    with pytest.raises(
        UndeclaredCapability, match=r"model.rsample\(\) needs the model's 'rsample'"
    ):
        proxy.rsample(3)
    with contextlib.suppress(Exception):  # a component that swallows the error is caught too
        proxy.mean()
    assert seen == [("model", "rsample", "rsample"), ("model", "mean", "moments")]


def test_the_proxy_looks_like_the_model_but_provides_only_what_was_declared(model):
    proxy = Restricted(model, frozenset({"rsample"}), MODEL_METHODS, "model", [])
    assert isinstance(proxy, Model) and isinstance(proxy, torch.nn.Module)
    assert proxy.provides == frozenset({"rsample", "sample"})  # rsample implies sample
    assert proxy.sample(4).shape == (4, 2)
    assert hasattr(proxy, "covariance")  # probing is allowed; calling is not
    with pytest.raises(
        UndeclaredCapability, match=r"model.covariance\(\) needs the model's 'moments'"
    ):
        proxy.covariance()
    proxy.extra = 1
    assert model.extra == 1


def test_rsample_licenses_sample():
    assert licensed(frozenset({"rsample"})) == {"rsample", "sample"}
    assert licensed(frozenset({"log_prob"})) == {"log_prob"}
