"""Objectives ``reverse_kl`` (KL[Q‖P]) and ``jspi_exact`` (JS_π[P‖Q] from the true densities).

Both need P's density. On vector tasks they differentiate through reparameterised samples of
Q; each loss is an unbiased estimate of the divergence itself, so the logged training loss
is the divergence being minimised.

On sequence tasks ``reverse_kl`` draws as many samples of Q per step as the batch holds. Where
the task gives P's whole next-symbol distribution (``next_token_log_prob``) it takes each
position's KL in closed form along the sampled prefixes and scores each prefix with the
score-function gradient of the KL still to come (``estimator=exact_step``, the default);
otherwise (or with ``estimator=reinforce``) it uses the score-function gradient with cost
log Q − log P, per token where the task gives per-token log-probabilities, and a
leave-one-out baseline.
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
    """KL[Q‖P] = E_Q[log Q − log P] (docs/science.md §1.2).

    Vectors: on reparameterised samples of Q. Sequences: Q's samples x, and with
    ``estimator=exact_step`` (where the task provides ``next_token_log_prob``) the per-step
    divergences KL_n = Σ_v Q(v | x_<n) (log Q(v | x_<n) − log P(v | x_<n)) in closed form:
    KL[Q‖P] = E_Q[Σ_n KL_n] (the chain rule of KL), so the logged Σ_n KL_n is unbiased. Its
    gradient is ∇KL_n through Q's softmax at each position (pathwise) plus the score-function
    term log Q(x_n | x_<n) · (Σ_{m>n} KL_m − b_n) for the prefixes, with b_n the mean over the
    other samples of the batch (leave-one-out). ``estimator=reinforce`` (and the fallback on
    tasks without next-symbol distributions) scores the sampled symbols only.
    """

    name = "reverse_kl"
    description = "reverse KL[Q‖P] = E_Q[log Q − log P] with P's density (mode seeking)"
    model_requires = {
        "vector": frozenset({"rsample", "log_prob"}),
        "sequence": frozenset({"autoregressive", "log_prob", "sample"}),
    }
    param_spec = {
        "lr": positive(0.05, "Adam learning rate"),
        "n_samples": _N_SAMPLES,
        "estimator": Param(
            "exact_step",
            "sequences: exact_step (closed-form KL per position, needs the task's "
            "next_token_log_prob; else reinforce) or reinforce (score function only)",
            choices=("exact_step", "reinforce"),
        ),
    }

    def loss(self, batch: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.task.kind == "sequence":
            x = self.model.sample(batch.shape[0])
            if self.estimator == "exact_step" and "next_token_log_prob" in self.task.provides:
                return self.exact_step(x)
            return self.reinforce(x)
        x = self.model.rsample(self.n_samples)
        return (self.model.log_prob(x) - self.task_log_prob(x)).mean(-1)

    def exact_step(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(surrogate, Σ_n KL_n averaged over the batch) for Q's samples ``x`` [B, L]."""
        log_q = self.model.next_token_log_probs(x)  # [B, L, V], carries the gradient
        with torch.no_grad():
            log_p = self.task.next_token_log_probs(x)
            q = log_q.exp()
            grad = log_q - log_p
            step_kl = torch.linalg.vecdot(q, grad)  # [B, L], without a [B, L, V] temporary
            # x_n's choice changes the KL of every later position: its score is weighted by
            # Σ_{m>n} KL_m (the KL at n and before does not depend on x_n).
            after = step_kl.flip(1).cumsum(1).flip(1) - step_kl
            weight = after - _leave_one_out(after)
            # The surrogate's gradient with respect to the logits z, written out rather than
            # taken by autograd through a chain of [B, L, V] operations (each a pass over
            # 25 MB on text, kept for the backward): ∂KL_n/∂z = q (log q − log p − KL_n)
            # (pathwise) and ∂ log Q(x_n)/∂z = onehot(x_n) − q (the score term, weighted).
            # G sums to zero over the vocabulary, so ⟨log q, G⟩ has the gradient G − q ΣG = G
            # with respect to z.
            grad.sub_(step_kl[..., None] + weight[..., None]).mul_(q)
            grad.scatter_add_(-1, x[..., None], weight[..., None])
        surrogate = torch.dot(log_q.reshape(-1), grad.reshape(-1)) / x.shape[0]
        return surrogate, step_kl.sum(1).mean()

    def reinforce(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(surrogate, mean of log Q − log P) with the score-function gradient only."""
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
        grad_of = ((to_go - _leave_one_out(to_go)) * tok_q).sum(1).mean()
        return grad_of, tok_cost.sum(1).mean()


def _leave_one_out(values: torch.Tensor) -> torch.Tensor:
    """Per column of ``values`` [n, L], the mean of the other n − 1 rows (a baseline for each
    row that does not depend on that row's sample; zeros for a single row)."""
    n = values.shape[0]
    if n < 2:
        return torch.zeros_like(values)
    return (values.sum(0, keepdim=True) - values) / (n - 1)


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
