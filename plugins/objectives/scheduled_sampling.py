"""Objective ``scheduled_sampling`` (Bengio et al. 2015): an improper objective (Huszár §3-4).

At each position the next input is the true symbol with probability ε (teacher forcing) and
otherwise a symbol drawn from the model's own predictive distribution there (``feed=sample``)
or its most likely symbol (``feed=argmax``); the fed symbols carry no gradient. The loss is
always −log Q(true next symbol | prefix as fed), summed over positions (nats per sequence,
like ``ml``), averaged over the batch. ε = 1 is maximum likelihood.

Schedules over the training step i: ``constant`` (ε = eps, the paper's analysis), ``linear``
ε_i = max(eps_min, k − c·i), ``exponential`` ε_i = k^i (k < 1), ``inverse_sigmoid``
ε_i = k / (k + exp(i / k)) (k ≥ 1). ``k = 0`` picks the schedule's default constant.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from gbench_plugins.models.sequence import categorical
from torch.nn import functional as F

from benchmark_core import Budget, Model, Objective, Param, Task, UsageError, hookimpl, positive

#: The schedule constant k used when the user leaves k = 0.
DEFAULT_K = {"linear": 1.0, "exponential": 0.999, "inverse_sigmoid": 200.0}


def schedule_eps(schedule: str, i: int, eps: float, k: float, c: float, eps_min: float) -> float:
    """ε at training step ``i`` (0-based) under ``schedule``; see the module docstring."""
    if schedule == "constant":
        return eps
    k = k or DEFAULT_K[schedule]
    if schedule == "linear":
        return min(1.0, max(eps_min, k - c * i))
    if schedule == "exponential":
        return max(eps_min, k**i)
    return max(eps_min, k / (k + math.exp(min(i / k, 700.0))))


class ScheduledSampling(Objective):
    """Feed Q's own symbols with probability 1 − ε, score the true next (docs/science.md §1.5)."""

    name = "scheduled_sampling"
    description = "scheduled sampling: feed true tokens with prob. ε, else the model's (improper)"
    kinds = frozenset({"sequence"})
    model_requires = frozenset({"autoregressive"})
    provides = frozenset({"feed_eps"})
    param_spec = {
        "eps": Param(0.5, "probability of feeding the TRUE symbol (1 = ml)", float, 0.0, 1.0),
        "schedule": Param(
            "constant",
            "how ε changes with the step",
            choices=("constant", "linear", "exponential", "inverse_sigmoid"),
        ),
        "k": Param(0.0, "schedule constant k (0 = the schedule's default)", float, 0.0),
        "c": Param(1e-3, "slope of the linear schedule, per step", float, 0.0),
        "eps_min": Param(0.0, "floor of ε under a schedule", float, 0.0, 1.0),
        "feed": Param("sample", "the model's symbols fed back", choices=("sample", "argmax")),
        "lr": positive(0.05, "Adam learning rate (cosine-decayed to lr/100)"),
    }
    all_sweep = {"eps": [0.0, 0.5]}

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        k, schedule = params["k"], params["schedule"]
        if schedule == "exponential" and k and not k < 1:
            raise UsageError(f"scheduled_sampling[k={k:g}]: the exponential schedule needs k < 1")
        if schedule == "inverse_sigmoid" and k and k < 1:
            raise UsageError(
                f"scheduled_sampling[k={k:g}]: the inverse_sigmoid schedule needs k >= 1"
            )

    def setup(self, model: Model, task: Task, budget: Budget) -> None:
        self.model = model
        self.opt, self.sched = self.adam(model.parameters(), self.lr, budget.steps)
        self.current_eps = self.eps_at(0)

    def feed_eps(self) -> float:
        """ε at the latest step (``ss_fixed_point_tv`` compares Q with its fixed point)."""
        return self.current_eps

    def eps_at(self, i: int) -> float:
        """ε at training step i."""
        return schedule_eps(self.schedule, i, self.eps, self.k, self.c, self.eps_min)

    @torch.no_grad()
    def fed_inputs(self, batch: torch.Tensor, eps: float) -> torch.Tensor:
        """The symbols read at each position: BOS, then per position the true previous
        symbol with probability eps, else the model's own (sampled or argmax) given the
        prefix as fed so far."""
        model = self.model
        n, length = batch.shape
        inputs = torch.empty_like(batch)
        token, state = model.initial_token(n), None
        inputs[:, 0] = token
        for t in range(length - 1):
            logits, state = model.step(token, state)
            if self.feed == "argmax":
                own = logits.argmax(dim=1)
            else:
                own = categorical(F.softmax(logits.float(), dim=1))
            keep = torch.rand(n, device=batch.device) < eps
            token = torch.where(keep, batch[:, t], own)
            inputs[:, t + 1] = token
        return inputs

    def loss(self, batch: torch.Tensor, eps: float) -> torch.Tensor:
        """The SS loss of one batch with keep-probability eps (nats per sequence).

        The fed symbols are chosen in a pass without gradient; the loss then rescores the
        true symbols given them in one differentiable pass. No gradient flows through the
        choice of fed symbols either way, so this equals the step-by-step loss (and its
        gradient) while letting an LSTM run its whole sequence at once.
        """
        inputs = self.fed_inputs(batch, eps)
        return -self.model.fed_log_probs(inputs, batch).sum(dim=1).mean()

    def step(self, batch: torch.Tensor, step: int) -> torch.Tensor:
        self.current_eps = self.eps_at(step)
        loss = self.loss(batch, self.current_eps)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        return loss.detach()


@hookimpl
def register_objectives(register):
    register(ScheduledSampling)
