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


@pytest.mark.parametrize("kind", ["sequence", "vector", "replicas"])
def test_d_pretrain_trains_only_the_discriminator_before_the_first_step(kind):
    from gbench_plugins.models.gaussian import FullGaussian
    from gbench_plugins.tasks.gaussian import GaussianTask

    from benchmark_core.engine.stack import ReplicaStack

    torch.manual_seed(0)
    if kind == "sequence":
        task = PairsTask(k=4, n_train=1000, n_test=10)
        model = TabularModel(task)
    else:
        task = GaussianTask()
        model = FullGaussian(task)
        if kind == "replicas":
            model = ReplicaStack([model, FullGaussian(task)])
    objective = AdversarialJSPi(pi=0.5, d_pretrain=3, d_steps=2, n_samples=32)
    objective.setup(model, task, Budget("smoke", 10, 16, 100, 1, 10))
    calls = []
    update = objective.d_update
    objective.d_update = lambda real, fake: calls.append(real.shape) or update(real, fake)
    batch = task.train[:16] if kind != "replicas" else task.train[:32].view(2, 16, -1)
    before = [p.detach().clone() for p in model.parameters()]
    objective.pretrain(batch)
    assert len(calls) == 3 and calls[0] == batch.shape  # real batches shaped like the data's
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    calls.clear()
    objective.pretrained = False
    objective.step(batch, 0)
    assert len(calls) == 3 + 2  # pretraining once, then the step's own
    calls.clear()
    objective.step(batch, 1)
    assert len(calls) == 2


@pytest.mark.slow
def test_learned_discriminator_variants_fit_pairs(tmp_path):
    """Each sequence option trains through the runner and brings Q close to P on pairs
    (measured, seed 0, smoke: KL[P‖Q] from 1.43 to 0.046-0.053; ~35 s)."""
    from helpers import grid, registry_with

    from benchmark_core.engine.executors import run_grid
    from benchmark_core.results.store import read_results

    variants = [
        "jspi[d_arch=ratio,credit=prefix,d_pretrain=50,g_samples=128]",
        "jspi[d_arch=ratio_q,game=prefix]",
        "jspi[d_arch=gru,game=prefix,credit=prefix]",
    ]
    cells = grid(
        registry_with(),
        objectives=",".join(variants),
        tasks="pairs",
        models="tabular",
        metrics="kl_forward",
        seeds="0,",
        budget="smoke",
    )
    report = run_grid(cells, tmp_path, torch.device("cpu"))
    assert report.counts["ok"] == len(cells), report.failed
    df = read_results([tmp_path]).frame
    v = df.set_index(["label", "step", "metric"]).value
    last = int(df.step.max())
    labels = sorted(set(df.label))
    assert len(labels) == len(variants)
    for label in labels:
        assert v[label, last, "kl_forward"] < 0.25 * v[label, 0, "kl_forward"], label
