"""Objective ``ml``: maximum likelihood, i.e. minimising KL[P‖Q] + H[P] = −E_P log Q."""

from __future__ import annotations

import torch

from benchmark_core import Budget, Model, ModelStack, Objective, Task, hookimpl, positive


class MaximumLikelihood(Objective):
    """Mean −log Q of the training batch, teacher-forced on sequences (docs/science.md §1.1)."""

    name = "ml"
    description = "maximum likelihood: minimise −E_P log Q, i.e. KL[P‖Q] (mode covering)"
    model_requires = frozenset({"log_prob"})
    param_spec = {"lr": positive(0.05, "Adam learning rate (cosine-decayed to lr/100)")}
    replica_kinds = frozenset({"vector"})

    def setup(self, model: Model | ModelStack, task: Task, budget: Budget) -> None:
        self.model = model
        # An autoregressive model's weighted sum computes its gradient in one pass.
        self.fused = "autoregressive" in getattr(model, "provides", ())
        self.opt, self.sched = self.adam(model.parameters(), self.lr, budget.steps)

    def step(self, batch: torch.Tensor, step: int) -> torch.Tensor:
        if self.fused:
            weights = torch.full((batch.shape[0],), 1.0 / batch.shape[0], device=batch.device)
            loss = -self.model.weighted_log_prob(batch, weights)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            return loss.detach()
        # One code path for a lone model ([B] -> 0-d) and a stack of replicas ([R, B] -> [R]).
        loss = -self.model.log_prob(batch).mean(-1)
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()  # replicas share no parameter: each gets its own gradient
        self.opt.step()
        self.sched.step()
        return loss.detach()


@hookimpl
def register_objectives(register):
    register(MaximumLikelihood)
