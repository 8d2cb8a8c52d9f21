"""Objective ``ml``: maximum likelihood, i.e. minimising KL[P‖Q] + H[P] = −E_P log Q."""

from __future__ import annotations

import torch

from benchmark_core import Budget, Model, Objective, Task, hookimpl, positive
from benchmark_core.engine.replicas import ReplicaStack


class MaximumLikelihood(Objective):
    """Mean −log Q of the training batch, teacher-forced on sequences (docs/science.md §1.1)."""

    name = "ml"
    description = "maximum likelihood: minimise −E_P log Q, i.e. KL[P‖Q] (mode covering)"
    model_requires = frozenset({"log_prob"})
    param_spec = {"lr": positive(0.05, "Adam learning rate (cosine-decayed to lr/100)")}
    replica_kinds = frozenset({"vector"})

    def setup(self, model: Model, task: Task, budget: Budget) -> None:
        self.model = model
        self.opt, self.sched = self.adam(model.parameters(), self.lr, budget.steps)

    def step(self, batch: torch.Tensor, step: int) -> torch.Tensor:
        loss = -self.model.log_prob(batch).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        return loss.detach()

    def setup_replicas(
        self, models: ReplicaStack, task: Task, budget: Budget, params: list[dict]
    ) -> None:
        self.models = models
        self.opt, self.sched = self.adam(models.parameters(), self.lr, budget.steps)

    def step_replicas(self, batch: torch.Tensor, step: int) -> torch.Tensor:
        loss = -self.models.call("log_prob", batch).mean(1)
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()  # replicas share no parameter: each gets its own gradient
        self.opt.step()
        self.sched.step()
        return loss.detach()


@hookimpl
def register_objectives(register):
    register(MaximumLikelihood)
