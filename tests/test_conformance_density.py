"""The density checks of the conformance suite on distributions of known shape."""

import math

import pytest
import torch
from torch import distributions as D

from benchmark_core.conformance.density import sequence_problems, vector_problems


class Wrapped:
    """A torch distribution with gbench's ``sample(n)`` / ``log_prob(x)`` interface."""

    def __init__(self, dist, sampler=None):
        self.dist, self.sampler = dist, sampler or dist

    def sample(self, n):
        return self.sampler.sample((n,))

    def log_prob(self, x):
        return self.dist.log_prob(x)


def _mixture(weights, means, var):
    k, d = means.shape
    comps = D.MultivariateNormal(means, var * torch.eye(d).expand(k, d, d))
    return D.MixtureSameFamily(D.Categorical(torch.tensor(weights)), comps)


RING = torch.stack([3 * torch.tensor([math.cos(a), math.sin(a)]) for a in torch.arange(8) * 0.785])
GOOD = {
    "two modes": _mixture([0.3, 0.7], torch.tensor([[-4.0, 0.0], [4.0, 1.0]]), 0.2),
    "ring of narrow modes": _mixture([1.0] * 8, RING, 0.01),
    "heavy tails": D.Independent(D.StudentT(3.0, torch.zeros(2), torch.ones(2)), 1),
    "4-D": D.MultivariateNormal(torch.zeros(4), torch.eye(4)),
    "1-D, narrow": D.Independent(D.Normal(torch.zeros(1), 1e-3 * torch.ones(1)), 1),
}


@pytest.mark.parametrize("name", GOOD)
def test_correct_densities_pass(name):
    assert vector_problems(Wrapped(GOOD[name])) == []


def test_samples_with_the_wrong_mixture_weights_fail():
    q = GOOD["two modes"]
    wrong = _mixture([0.6, 0.4], q.component_distribution.loc, 0.2)
    problems = vector_problems(Wrapped(q, sampler=wrong))
    assert problems and "the samples do not follow the density" in problems[0]


def test_an_unnormalised_density_fails():
    class Half(Wrapped):
        def log_prob(self, x):
            return super().log_prob(x) - math.log(2)

    [problem] = vector_problems(Half(GOOD["4-D"]))
    assert problem.startswith("exp(log_prob) integrates to 0.49") and "not 1" in problem


def test_sequences_from_a_categorical_pass_and_a_biased_sampler_fails():
    probs = torch.tensor([0.5, 0.25, 0.125, 0.125])

    class Pairs:  # two independent symbols
        def __init__(self, sample_probs):
            self.sample_probs = sample_probs

        def sample(self, n):
            return torch.multinomial(self.sample_probs, 2 * n, replacement=True).view(n, 2)

        def log_prob(self, x):
            return probs.log()[x].sum(1)

    assert sequence_problems(Pairs(probs), vocab=4, enumerable=True) == []
    biased = sequence_problems(Pairs(torch.tensor([0.4, 0.35, 0.125, 0.125])), 4, True)
    assert biased and "the samples do not follow Q" in biased[0]
