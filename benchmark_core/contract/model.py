"""Model: a parametric distribution Q, built for a task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch

from benchmark_core.contract.component import Component

if TYPE_CHECKING:
    from benchmark_core.contract.task import Task


class Model(torch.nn.Module, Component):
    """A parametric distribution Q, built for a given task.

    Subclasses implement ``build(task)`` and the methods their ``provides`` declares.

    Attributes
    ----------
    kinds : frozenset[str]
        Task kinds the model can be built for.
    provides : frozenset[str]
        Subset of ``log_prob``, ``sample``, ``rsample``, ``autoregressive``, ``moments``,
        ``vmap`` (its methods run under torch.func.vmap, so replicas can train as one).
    """

    kinds: ClassVar[frozenset[str]] = frozenset({"vector"})
    provides: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, task: Task, **params: Any) -> None:
        torch.nn.Module.__init__(self)
        Component.__init__(self, **params)
        self.build(task)

    def build(self, task: Task) -> None:
        """Create the model's parameters for ``task``'s shapes."""
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log Q(x) for each row of ``x``."""
        raise NotImplementedError

    def sample(self, n: int) -> torch.Tensor:
        """Draw ``n`` samples (no gradient)."""
        with torch.no_grad():
            return self.rsample(n)

    def rsample(self, n: int) -> torch.Tensor:
        """Draw ``n`` reparameterised samples that carry gradients to the parameters."""
        raise NotImplementedError

    def mean(self) -> torch.Tensor:
        """Exact mean of Q; only for models that provide ``moments``."""
        raise NotImplementedError

    def covariance(self) -> torch.Tensor:
        """Exact covariance of Q; only for models that provide ``moments``."""
        raise NotImplementedError
