"""Objective: a training objective that owns its optimisers and takes one step at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch

from benchmark_core.contract.model import Model
from benchmark_core.contract.needs import Needs
from benchmark_core.contract.task import Task

if TYPE_CHECKING:
    from benchmark_core.contract.budgets import Budget
    from benchmark_core.contract.stack import ModelStack


class Objective(Needs):
    """A training objective: owns its optimisers (and any auxiliary network) and takes steps.

    Attributes
    ----------
    kinds : frozenset[str]
        Task kinds it trains on.
    model_requires, task_requires : frozenset[str]
        Capabilities it needs from the model and from the task.
    budgets : dict
        Per-profile budget overrides, applied after the task's (adversarial training may
        need more steps, say); or a dict from task kind to such overrides.
    replica_kinds : frozenset[str]
        Task kinds on which the engine may train several cells as one stacked model (the
        model must provide ``vmap``). The objective still writes `setup` and `step` once:
        see `ModelStack` for what it then receives.
    replica_params : frozenset[str]
        Numeric parameters that may differ between replicas trained together (seeds always
        may). When replicas train together, each of these attributes holds a tensor of shape
        [R] (one value per replica, on the model's device) from before `setup` on; on a lone
        cell it is the plain value. `per_replica` shapes it to broadcast.
    provides : frozenset[str]
        What metrics may read from it (their ``objective_requires``): ``"feed_eps"`` when it
        feeds the model's own symbols with a keep-probability ε (`feed_eps`).
    loss_descends : bool
        Whether training lowers the loss that `step` returns (the conformance suite checks
        that it does). Set False only when the logged loss is a game value, such as an
        adversarial objective's discriminator estimate, which rises as the critic learns.
    """

    budgets: ClassVar[dict[str, Any]] = {}
    replica_kinds: ClassVar[frozenset[str]] = frozenset()
    replica_params: ClassVar[frozenset[str]] = frozenset()
    provides: ClassVar[frozenset[str]] = frozenset()
    loss_descends: ClassVar[bool] = True

    def setup(self, model: Model | ModelStack, task: Task, budget: Budget) -> None:
        """Create optimisers and auxiliary networks before the first step.

        ``model`` is the cell's model, or a `ModelStack` of R replicas when the engine trains
        several cells together (only on the kinds in ``replica_kinds``).
        """
        raise NotImplementedError

    def step(self, batch: torch.Tensor, step: int) -> torch.Tensor:
        """Take one training step on ``batch``; return the loss, detached.

        On a lone cell ``batch`` is [B, ...] and the loss is 0-d; on a `ModelStack` the batch
        is [R, B, ...] (each replica's own rows) and the loss has shape [R], one per replica.
        Must not synchronise with the device (no ``.item()``): the engine checks the loss for
        divergence every few steps.
        """
        raise NotImplementedError

    def feed_eps(self) -> float:
        """The probability ε of feeding the true symbol at the latest step; only for
        objectives that provide ``feed_eps``."""
        raise NotImplementedError(f"objective {self.name} feeds no symbols of its own")

    @staticmethod
    def adam(
        params: Any, lr: float, steps: int, betas: tuple[float, float] = (0.9, 0.999)
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """Adam with a cosine decay to ``lr / 100`` over ``steps``, so that the final iterates
        settle instead of jittering at the full learning rate."""
        params = list(params)
        # The fused kernel updates every tensor in one call: on the small models of the
        # built-in tasks it is 3x faster than the per-tensor loop (see tests/benchmarks).
        fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
        opt = torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(steps, 1), eta_min=lr / 100
        )
        return opt, sched
