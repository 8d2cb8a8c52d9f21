"""jspi's generator gradient on sequences, against exact gradients by enumeration (pairs).

With the discriminator replaced by the optimal one, D*(x) = πP(x) / (πP(x) + (1 − π)Q(x)),
computed from the task's exact log P and the tabular model's exact log Q, the gradient of the
generator's cost with D* held fixed is the gradient of JS_π (the envelope theorem: V is
stationary in D at D*). So the mean of the score-function estimate over many independent
batches must equal ∇ JS_π[P‖Q], computed here by enumerating all K² pairs and autograd,
within its Monte Carlo standard error. The same holds for the game on prefixes, whose value is
the mean over t of JS_π of the prefixes x_0..x_t (for pairs: of x1, and of (x1, x2)).
"""

from __future__ import annotations

import math

import pytest
import torch
from gbench_plugins.common.sequence_gan import GRUDiscriminator, RatioDiscriminator
from gbench_plugins.models.sequence import TabularModel
from gbench_plugins.objectives.adversarial import AdversarialJSPi
from gbench_plugins.tasks.pairs import PairsTask

from benchmark_core import Budget

BATCHES, N = 600, 64


def js_pi(log_p: torch.Tensor, log_q: torch.Tensor, pi: float) -> torch.Tensor:
    """JS_π of two distributions on the same enumerated points (log-probabilities)."""
    log_m = torch.logaddexp(log_p + math.log(pi), log_q + math.log1p(-pi))
    return (
        pi * (log_p.exp() * (log_p - log_m)).sum()
        + (1 - pi) * (log_q.exp() * (log_q - log_m)).sum()
    )


def exact_prefix_log_probs(task: PairsTask, model: TabularModel, x: torch.Tensor):
    """log P and log Q of the prefixes x_0 and x_0 x_1 of each row, [n, 2] each."""
    log_joint = task.joint.log()
    log_p = torch.stack([log_joint.logsumexp(1)[x[:, 0]], log_joint[x[:, 0], x[:, 1]]], 1)
    log_q = model.token_log_probs(x).double().cumsum(1)
    return log_p, log_q


def setup(pi: float, **params):
    torch.manual_seed(0)
    task = PairsTask(k=4, n_train=1000, n_test=10)
    model = TabularModel(task, init_scale=1.0)
    objective = AdversarialJSPi(pi=pi, **params)
    objective.setup(model, task, Budget("smoke", 10, N, 100, 1, 10))
    return task, model, objective


def use_optimal_discriminator(task, model, objective) -> None:
    """Replace the discriminator's prefix logits by the optimal ones, log(πP / (1 − π)Q)."""

    def optimal(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            log_p, log_q = exact_prefix_log_probs(task, model, x)
            return (math.log(objective.pi / (1 - objective.pi)) + log_p - log_q).float()

    objective.disc.prefix_logits = optimal


def exact_gradient(task, model, pi: float, game: str) -> torch.Tensor:
    x = task.enumerate()
    log_p, log_q = exact_prefix_log_probs(task, model, x)
    model.table.grad = None
    whole = js_pi(log_p[:, 1], log_q[:, 1], pi)
    if game == "prefix":
        k = task.vocab_size
        first = torch.arange(k) * k  # one row per value of x1: its prefix probabilities
        whole = 0.5 * (whole + js_pi(log_p[first, 0], log_q[first, 0], pi))
    whole.backward()
    return model.table.grad.clone()


def estimates(model, objective) -> torch.Tensor:
    """BATCHES independent gradient estimates of the generator's cost, [BATCHES, K + 1, K]."""
    out = []
    for _ in range(BATCHES):
        with torch.no_grad():
            fake = model.sample(N)
        model.table.grad = None
        objective.generator_surrogate(fake, objective.disc.prefix_logits(fake)).backward()
        out.append(model.table.grad.clone())
    return torch.stack(out).double()


@pytest.mark.parametrize(
    ("pi", "credit", "game"),
    [
        (0.5, "sequence", "sequence"),
        (0.5, "prefix", "sequence"),
        (0.9, "prefix", "sequence"),
        (0.1, "sequence", "prefix"),
        (0.5, "sequence", "prefix"),
    ],
)
def test_mean_gradient_with_optimal_discriminator_is_the_exact_gradient(pi, credit, game):
    task, model, objective = setup(pi, credit=credit, game=game)
    use_optimal_discriminator(task, model, objective)
    exact = exact_gradient(task, model, pi, game)
    g = estimates(model, objective)
    mean, se = g.mean(0), g.std(0) / math.sqrt(BATCHES)
    # The gradient is not trivially small, and the estimate resolves it.
    assert exact.abs().max() > 10 * se.max()
    # Each of the (K + 1) K table entries (rows: Q(x2 | x1 = z), and Q(x1) last) within 4.5
    # standard errors: 20 entries, so a correct estimator fails by chance about 1 in 10,000.
    z = (mean - exact) / se.clamp_min(1e-12)
    assert z.abs().max() < 4.5, (z.abs().max(), mean, exact)


def test_prefix_baselines_lower_the_variance_with_a_good_discriminator():
    """Per-token baselines from the optimal prefix logits: same mean, smaller variance."""
    variances = {}
    for credit in ("sequence", "prefix"):
        task, model, objective = setup(0.9, credit=credit)
        use_optimal_discriminator(task, model, objective)
        variances[credit] = estimates(model, objective).var(0).sum()
    assert variances["prefix"] < variances["sequence"]


@pytest.mark.parametrize("cls", [GRUDiscriminator, RatioDiscriminator])
def test_prefix_logits_read_only_the_prefix(cls):
    """Column t of a discriminator's prefix logits depends on x_0..x_t only (the baselines
    of the per-token estimator must not see the token they weigh)."""
    torch.manual_seed(0)
    disc = cls(7, 8)
    with torch.no_grad():
        if cls is RatioDiscriminator:  # its head starts at zero: give it something to say
            disc.head.weight.normal_()
        x = torch.randint(0, 7, (5, 4))
        y = x.clone()
        y[:, 2] = (y[:, 2] + 1) % 7
        a, b = disc.prefix_logits(x), disc.prefix_logits(y)
    assert torch.equal(a[:, :2], b[:, :2])
    assert not torch.allclose(a[:, 2], b[:, 2])


def test_ratio_discriminator_sums_per_token_scores_and_starts_constant():
    torch.manual_seed(0)
    disc = RatioDiscriminator(6, 5)
    x = torch.randint(0, 6, (3, 4))
    assert torch.equal(disc.prefix_logits(x), torch.zeros(3, 4))
    with torch.no_grad():
        disc.head.weight.normal_()
        disc.head.bias.normal_()
        disc.bias.fill_(0.3)
        f = disc.prefix_logits(x)
        steps = torch.diff(f, dim=1, prepend=torch.full((3, 1), 0.3))
        # Each increment is the head's score of that token from the state before it.
        bos = torch.full((3, 1), 6)
        h, _ = disc.gru(disc.embedding(torch.cat([bos, x[:, :-1]], 1)))
        expected = disc.head(h).gather(2, x[..., None])[..., 0]
    assert torch.allclose(steps, expected, atol=1e-5)


def test_ratio_discriminator_reads_the_generator_log_q_as_a_feature():
    torch.manual_seed(0)
    disc = RatioDiscriminator(6, 5, q_feature=True)
    x = torch.randint(0, 6, (3, 4))
    log_q = -torch.rand(3, 4, requires_grad=True)
    with pytest.raises(ValueError, match="log_q"):
        disc.prefix_logits(x)
    with torch.no_grad():
        disc.q_weight.fill_(0.5)
    f = disc.prefix_logits(x, log_q)
    assert torch.allclose(f, 0.5 * log_q.detach().cumsum(1))
    f.sum().backward()
    assert log_q.grad is None  # a feature, not a path for the generator's gradient
