"""Objectives ``reverse_kl`` (KL[Q‖P]) and ``jspi_exact`` (JS_π[P‖Q] from the true densities).

Both need P's density. On vector tasks they differentiate through reparameterised samples of
Q; each loss is an unbiased estimate of the divergence itself, so the logged training loss
is the divergence being minimised.

On sequence tasks: ``reverse_kl`` uses the score-function gradient with cost log Q − log P
and a leave-one-out baseline, on as many samples of Q per step as the batch holds;
``jspi_exact`` needs an enumerable task and sums over its whole sample space (all K² pairs),
so its loss and gradient are exact.
"""

from __future__ import annotations

import math

import torch
from gbench_plugins.objectives.score_function import surrogate

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

_N_SAMPLES = Param(1024, "samples of Q per step (vectors; on sequences: the batch size)", low=1)


def _weighted(log_w: torch.Tensor, terms: torch.Tensor) -> torch.Tensor:
    """Σ exp(log_w) · terms, with 0 · anything = 0 (zero-probability points drop out)."""
    return torch.where(log_w > -math.inf, log_w.exp() * terms, torch.zeros_like(terms)).sum()


class _FromDensities(Objective):
    kinds = frozenset({"vector", "sequence"})
    task_requires = frozenset({"log_prob"})
    model_requires = {
        "vector": frozenset({"rsample", "log_prob"}),
        "sequence": frozenset({"autoregressive", "log_prob"}),
    }

    replica_kinds = frozenset({"vector"})

    def setup(self, model: Model | ModelStack, task: Task, budget: Budget) -> None:
        self.model, self.task = model, task
        self.opt, self.sched = self.adam(model.parameters(), self.lr, budget.steps)

    def task_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log P of points [n, d] or, from replicas, [R, n, d] (P is shared: no vmap needed)."""
        return self.task.log_prob(x.flatten(0, -2)).view(x.shape[:-1])

    def loss(self, batch: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The loss to differentiate, or (a surrogate to differentiate, the value to log);
        with replicas, one per replica [R]."""
        raise NotImplementedError

    def step(self, batch: torch.Tensor, step: int) -> torch.Tensor:
        loss = self.loss(batch)
        grad_of, value = loss if isinstance(loss, tuple) else (loss, loss)
        self.opt.zero_grad(set_to_none=True)
        grad_of.sum().backward()  # replicas share no parameter: each gets its own gradient
        self.opt.step()
        self.sched.step()
        return value.detach()


class ReverseKL(_FromDensities):
    """KL[Q‖P] = E_Q[log Q − log P] on reparameterised samples of Q (docs/science.md §1.2)."""

    name = "reverse_kl"
    description = "reverse KL[Q‖P] = E_Q[log Q − log P] with P's density (mode seeking)"
    model_requires = {
        "vector": frozenset({"rsample", "log_prob"}),
        "sequence": frozenset({"autoregressive", "log_prob", "sample"}),
    }
    param_spec = {"lr": positive(0.05, "Adam learning rate"), "n_samples": _N_SAMPLES}

    def loss(self, batch: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.task.kind == "sequence":
            # REINFORCE on as many samples as the batch holds; the cost is log Q − log P.
            x = self.model.sample(batch.shape[0])
            if "token_log_prob" not in self.task.provides:
                log_q = self.model.log_prob(x)
                cost = log_q.detach() - self.task.log_prob(x)
                return surrogate(cost, log_q), cost.mean()
            # Per-token costs: log Q(x_t | x_<t) is scored by the cost from t on only (the
            # earlier terms do not depend on x_t's choice), which is unbiased (causality)
            # and far less noisy on long sequences.
            tok_q = self.model.token_log_probs(x)
            tok_cost = tok_q.detach() - self.task.token_log_probs(x)
            to_go = tok_cost.flip(1).cumsum(1).flip(1)
            n = to_go.shape[0]
            base = (to_go.sum(0, keepdim=True) - to_go) / max(n - 1, 1)
            grad_of = ((to_go - base) * tok_q).sum(1).mean()
            return grad_of, tok_cost.sum(1).mean()
        x = self.model.rsample(self.n_samples)
        return (self.model.log_prob(x) - self.task_log_prob(x)).mean(-1)


class ExactJSPi(_FromDensities):
    """JS_π[P‖Q] = π KL[P‖M] + (1 − π) KL[Q‖M], M = πP + (1 − π)Q (docs/science.md §1.3).

    The P term is averaged over the training batch, the Q term over reparameterised samples;
    log M is computed with logaddexp so that neither density underflows.
    """

    name = "jspi_exact"
    description = "generalised JS_π[P‖Q] from the true densities, no discriminator"
    task_requires = {
        "vector": frozenset({"log_prob"}),
        "sequence": frozenset({"log_prob", "enumerable"}),
    }
    param_spec = {
        "pi": probability(0.5, "weight of P in the mixture M (the share of real samples)"),
        "lr": positive(0.05, "Adam learning rate"),
        "n_samples": _N_SAMPLES,
    }
    all_sweep = {"pi": [0.1, 0.5, 0.99]}
    replica_params = frozenset({"pi"})

    def log_m(
        self, log_p: torch.Tensor, log_q: torch.Tensor, pi: float | torch.Tensor | None = None
    ) -> torch.Tensor:
        """log M = log(π P + (1 − π) Q); ``pi`` defaults to the objective's own."""
        pi = torch.as_tensor(self.pi if pi is None else pi, dtype=log_p.dtype)
        return torch.logaddexp(log_p + torch.log(pi), log_q + torch.log1p(-pi))

    def exact(self) -> torch.Tensor:
        """JS_π summed over the task's whole (enumerable) sample space."""
        x = self.task.enumerate()
        log_p, log_q = self.task.log_prob(x).double(), self.model.log_prob(x).double()
        log_m = self.log_m(log_p, log_q)
        on_p = _weighted(log_p, log_p - log_m)
        on_q = _weighted(log_q, log_q - log_m)
        return (self.pi * on_p + (1 - self.pi) * on_q).float()

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        if self.task.kind == "sequence":
            return self.exact()
        log_p_p, log_q_p = self.task_log_prob(batch), self.model.log_prob(batch)
        x = self.model.rsample(self.n_samples)
        log_p_q, log_q_q = self.task_log_prob(x), self.model.log_prob(x)
        pi = per_replica(self.pi, log_p_p)  # with replicas [R, 1], against rows [R, n]
        on_p = (log_p_p - self.log_m(log_p_p, log_q_p, pi)).mean(-1)
        on_q = (log_q_q - self.log_m(log_p_q, log_q_q, pi)).mean(-1)
        return self.pi * on_p + (1 - self.pi) * on_q


@hookimpl
def register_objectives(register):
    register(ReverseKL)
    register(ExactJSPi)
