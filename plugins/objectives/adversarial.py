"""Objective ``jspi``: adversarial training that minimises the generalised JS_π divergence.

A discriminator D(x) = σ(f(x)) maximises V(D) = π E_P[log D] + (1 − π) E_Q[log(1 − D)].
π is the share of real (P) samples the discriminator sees (docs/science.md §4: π < ½ means P
is *under*-represented). At the optimum D* = πP / (πP + (1 − π)Q) and
V(D*) = JS_π[P‖Q] + π log π + (1 − π) log(1 − π), so a generator that minimises V (the
minimax game) descends JS_π. The common "non-saturating" generator loss −E_Q[log D] is a
different divergence: it is offered, labelled, never the default.

On sequence tasks (docs/science.md §1.4, "On sequences") the discriminator returns a logit
for every prefix x_0..x_t (``d_arch``: ``gru``, a GRU state read out at each position;
``ratio``, a sum of per-token scores, the shape of log P − log Q; ``ratio_q``, which also reads
the generator's own log Q(x_t | x_<t) as a feature). The generator, whose samples are
discrete, gets a score-function gradient with a leave-one-out baseline, unbiased for the
given discriminator: with ``credit=sequence`` one cost per sample on every token; with
``credit=prefix`` each token's cost less the cost the discriminator saw in the prefix before
it. ``game=prefix`` plays the game on every prefix at once (the mean over t of JS_π of the
prefixes: another divergence, zero only at Q = P), whose per-token costs-to-go are exact.
Each step draws ``g_samples`` sequences of Q (default: the batch size) and uses them for every
discriminator step and the generator step; ``d_pretrain`` discriminator steps against the
start model come before the first generator step (default 0: on text they measured no gain).

On text, from a maximum-likelihood start, JS_π of whole sequences sits at its maximum
(P and Q barely overlap over 20 tokens), so even the optimal discriminator gives the generator
almost no gradient; docs/science.md gives the measurements.
"""

from __future__ import annotations

import math

import torch
from gbench_plugins.common.sequence_gan import (
    GRUDiscriminator,
    RatioDiscriminator,
    token_surrogate,
)
from gbench_plugins.objectives.score_function import surrogate
from torch import nn
from torch.nn import functional as F

from benchmark_core import (
    Budget,
    Model,
    ModelStack,
    Objective,
    Param,
    Task,
    hookimpl,
    per_replica,
    positive,
    probability,
)


def mlp(inputs: int, width: int, depth: int) -> nn.Sequential:
    """A depth-hidden-layer SiLU network with one output logit."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(inputs if i == 0 else width, width), nn.SiLU()]
    layers.append(nn.Linear(width if depth else inputs, 1))
    return nn.Sequential(*layers)


class AdversarialJSPi(Objective):
    """The GAN game with class prior π, on reparameterised samples of Q (docs/science.md §1.4)."""

    name = "jspi"
    description = "adversarial JS_π: a discriminator with real-sample share π (minimax GAN)"
    kinds = frozenset({"vector", "sequence"})
    model_requires = {
        "vector": frozenset({"rsample"}),
        "sequence": frozenset({"autoregressive", "log_prob", "sample"}),
    }
    param_spec = {
        "pi": probability(0.5, "share of real (P) samples the discriminator sees"),
        "lr": positive(0.01, "generator Adam learning rate"),
        "d_lr": positive(0.002, "discriminator Adam learning rate"),
        "d_width": Param(64, "discriminator hidden width", low=1),
        "d_depth": Param(2, "discriminator hidden layers", low=0),
        "d_steps": Param(2, "discriminator steps per generator step", low=1),
        "n_samples": Param(512, "samples drawn from Q per step", low=1),
        "d_arch": Param(
            "gru",
            "sequences: gru (a logit from the GRU state), ratio (a sum of per-token scores) or "
            "ratio_q (ratio, plus a learned multiple of the generator's log Q per token)",
            choices=("gru", "ratio", "ratio_q"),
        ),
        "d_pretrain": Param(
            0, "discriminator steps on the start model's samples before the game", low=0
        ),
        "g_samples": Param(
            0, "sequences: samples of Q per generator step (0: the batch size)", low=0
        ),
        "credit": Param(
            "sequence",
            "sequences, game=sequence: sequence (one cost per sample) or prefix (the prefix "
            "logits as per-token baselines); both unbiased",
            choices=("sequence", "prefix"),
        ),
        "game": Param(
            "sequence",
            "sequences: sequence (JS_π of whole sequences) or prefix (the mean over t of "
            "JS_π of the prefixes x_0..x_t: another divergence, zero only at Q = P)",
            choices=("sequence", "prefix"),
        ),
        "generator_loss": Param(
            "minimax",
            "minimax minimises V (JS_π); nonsaturating maximises E_Q log D (another divergence)",
            choices=("minimax", "nonsaturating"),
        ),
    }
    all_sweep = {"pi": [0.1, 0.5, 0.99]}
    budgets = {"vector": {"quick": {"steps": 3000}, "paper": {"steps": 30_000}}}
    replica_kinds = frozenset({"vector"})
    replica_params = frozenset({"pi"})
    # The logged loss is the discriminator's JS_π estimate: it rises as D learns.
    loss_descends = False

    def setup(self, model: Model | ModelStack, task: Task, budget: Budget) -> None:
        self.model, self.task = model, task
        self.sequences = task.kind == "sequence"
        self.pretrained = self.d_pretrain == 0
        self.disc = self.discriminator(model, task)
        self.opt, self.sched = self.adam(model.parameters(), self.lr, budget.steps, (0.5, 0.999))
        self.d_opt, self.d_sched = self.adam(
            self.disc.parameters(), self.d_lr, budget.steps, (0.5, 0.999)
        )
        pi = self.pi  # a float, or one per replica [R] (and then so is the offset)
        if isinstance(pi, torch.Tensor):
            self.offset = pi * torch.log(pi) + (1 - pi) * torch.log1p(-pi)
        else:
            self.offset = pi * math.log(pi) + (1 - pi) * math.log1p(-pi)

    def discriminator(self, model: Model | ModelStack, task: Task) -> nn.Module:
        """A new discriminator on the model's device; for a stack, one per replica, stacked."""
        if isinstance(model, ModelStack):
            dim = task.train.shape[1]
            return model.stack([mlp(dim, self.d_width, self.d_depth) for _ in range(len(model))])
        device = next(model.parameters()).device
        if self.sequences:
            if self.d_arch == "gru":
                return GRUDiscriminator(task.vocab_size, self.d_width).to(device)
            q_feature = self.d_arch == "ratio_q"
            return RatioDiscriminator(task.vocab_size, self.d_width, q_feature).to(device)
        return mlp(task.train.shape[1], self.d_width, self.d_depth).to(device)

    def value(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """V(D) = π E_P[log D] + (1 − π) E_Q[log(1 − D)], with D = σ(logit).

        With replicas (real, fake [R, n, d]) it is every replica's V, [R]. On sequences it is
        V for each prefix length, [L] (the last entry: whole sequences, the game's V).
        """
        if self.sequences:
            # One GRU pass over both batches (each row is its own sequence): the recurrence's
            # many small per-step ops run once instead of twice.
            logits = self.prefix_logits(torch.cat([real, fake]))
            real_logits, fake_logits = logits[: real.shape[0]], logits[real.shape[0] :]
            on_p, on_q = F.logsigmoid(real_logits).mean(0), F.logsigmoid(-fake_logits).mean(0)
        else:
            real_logits, fake_logits = self.disc(real), self.disc(fake)
            on_p = F.logsigmoid(real_logits).flatten(-2).mean(-1)
            on_q = F.logsigmoid(-fake_logits).flatten(-2).mean(-1)
        return self.pi * on_p + (1 - self.pi) * on_q

    def prefix_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The discriminator's logit for each prefix of the sequences ``x``, [n, L]."""
        if self.d_arch != "ratio_q":
            return self.disc.prefix_logits(x)
        with torch.no_grad():
            log_q = self.model.token_log_probs(x)
        return self.disc.prefix_logits(x, log_q)

    def d_update(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """One discriminator step; returns the game's V (detached; [R] with replicas)."""
        v = self.value(real, fake)
        if self.sequences and self.game == "prefix":
            v = v.mean()
            loss = -v
        elif self.sequences:
            # With prefix credit the prefix logits are baselines: training each prefix's
            # logit as a classifier of prefixes makes it track the cost still to come.
            loss = -(v[-1] + v[:-1].mean()) if self.credit == "prefix" and len(v) > 1 else -v[-1]
            v = v[-1]
        else:
            # With replicas v is [R]: they share no parameter, so each gets its own gradient.
            loss = -v.sum()
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.d_opt.step()
        return v.detach()

    def pretrain(self, like: torch.Tensor) -> None:
        """``d_pretrain`` discriminator steps against the start model, before the first
        generator step: random training batches against fresh samples of Q."""
        self.pretrained = True
        train = self.task.train
        n = (self.g_samples or like.shape[0]) if self.sequences else self.n_samples
        for _ in range(self.d_pretrain):
            real = train[torch.randint(len(train), like.shape[:-1], device=train.device)].to(
                like.device
            )
            with torch.no_grad():
                fake = self.model.sample(n)
            self.d_update(real, fake)

    def generator_cost(self, logits: torch.Tensor) -> torch.Tensor:
        """The generator's loss per sample, from the discriminator's logits [n, 1] (or any
        shape on sequences; with replicas [R, n, 1]: π is then [R, 1, 1])."""
        pi = per_replica(self.pi, logits)
        if self.generator_loss == "minimax":
            return (1 - pi) * F.logsigmoid(-logits)
        return -(1 - pi) * F.logsigmoid(logits)

    def generator_surrogate(self, fake: torch.Tensor, prefix_logits: torch.Tensor) -> torch.Tensor:
        """A scalar whose gradient is the score-function estimate of ∇ E_Q[cost] on the
        samples ``fake`` [n, L], given the discriminator's ``prefix_logits`` [n, L]."""
        costs = self.generator_cost(prefix_logits)  # [n, L], no gradient
        if self.game == "prefix":
            # The cost is the mean over prefixes: token t can change the prefixes from t on.
            to_go = costs.flip(1).cumsum(1).flip(1) / costs.shape[1]
            return token_surrogate(to_go, torch.zeros_like(to_go), self.model.token_log_probs(fake))
        if self.credit == "prefix":
            final = costs[:, -1:].expand_as(costs)
            # b_t = c(f_{t-1}(x_<t)), the cost the discriminator sees in the prefix before x_t.
            base = torch.cat([torch.zeros_like(costs[:, :1]), costs[:, :-1]], dim=1)
            return token_surrogate(final, base, self.model.token_log_probs(fake))
        return surrogate(costs[:, -1], self.model.log_prob(fake))

    def sequence_step(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            fake = self.model.sample(self.g_samples or batch.shape[0])
        for _ in range(self.d_steps):
            v = self.d_update(batch, fake)
        with torch.no_grad():
            logits = self.prefix_logits(fake)
        self.generator_update(self.generator_surrogate(fake, logits))
        return v - self.offset

    def generator_update(self, g_loss: torch.Tensor) -> None:
        """One generator step on ``g_loss``, then both learning-rate schedules advance."""
        self.opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt.step()
        self.sched.step()
        self.d_sched.step()

    def step(self, batch: torch.Tensor, step: int) -> torch.Tensor:
        if not self.pretrained:
            self.pretrain(batch)
        if self.sequences:
            return self.sequence_step(batch)
        return self.vector_step(batch)

    def vector_step(self, batch: torch.Tensor) -> torch.Tensor:
        """The game on reparameterised samples (on replicas: every replica's own, [R])."""
        for _ in range(self.d_steps):
            fake = self.model.sample(self.n_samples)
            v = self.d_update(batch, fake)
        fake = self.model.rsample(self.n_samples)
        self.generator_update(self.generator_cost(self.disc(fake)).flatten(-2).mean(-1).sum())
        # The discriminator's estimate of JS_π (a lower bound while D is not optimal).
        return v - self.offset


@hookimpl
def register_objectives(register):
    register(AdversarialJSPi)
