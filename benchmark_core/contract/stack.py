"""ModelStack: what an objective may rely on when the engine trains R replicas as one.

An objective that lists a task kind in ``replica_kinds`` writes its `Objective.step` once.
On a lone cell ``setup`` receives the model itself and ``step`` returns a 0-d loss; when
replicas train together ``setup`` receives a `ModelStack` (the engine's implementation), the
batch is [R, B, ...] and ``step`` returns the losses, shape [R]. Written with reductions over
the last axis (``.mean(-1)``) and ``loss.sum().backward()``, one code path serves both: the
replicas share no parameter, so the gradient of their summed losses is each replica's own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch
from torch import nn

V = TypeVar("V")


@runtime_checkable
class ModelStack(Protocol):
    """R models of one architecture trained as one (``isinstance(model, ModelStack)``).

    The `Model` methods the models provide (``log_prob``, ``sample``, ``rsample``, ``mean``,
    ``covariance``) take the same arguments and return outputs with a leading replica axis
    R: ``log_prob(x)`` maps x [R, n, ...] to [R, n]; ``rsample(n)`` gives [R, n, ...].
    Randomness inside a call differs between replicas. ``parameters()`` yields the stacked
    tensors (leading axis R), so one optimiser on them takes every replica's own step.
    """

    def __len__(self) -> int:
        """The number of replicas R."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        """The stacked parameters, each with a leading axis R."""
        ...

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Every replica's log Q of its own rows: x [R, n, ...] -> [R, n]."""
        ...

    def sample(self, n: int) -> torch.Tensor:
        """``n`` samples from every replica, [R, n, ...], without gradients."""
        ...

    def rsample(self, n: int) -> torch.Tensor:
        """``n`` reparameterised samples from every replica, [R, n, ...]."""
        ...

    def call(self, method: str, *args: Any) -> Any:
        """Any other method of the models, for every replica: tensor arguments are mapped
        over their leading axis R, other arguments passed to every replica unchanged."""
        ...

    def stack(self, modules: Sequence[nn.Module]) -> nn.Module:
        """R auxiliary networks of one class (a discriminator per replica) as one module on
        the stack's device: calling it maps inputs [R, ...] to outputs [R, ...], and its
        ``parameters()`` are stacked like the models'."""
        ...


def per_replica(value: V | torch.Tensor, like: torch.Tensor) -> V | torch.Tensor:
    """A parameter listed in ``replica_params``, shaped to broadcast against ``like``.

    When replicas train together the engine sets each attribute named in the objective's
    ``replica_params`` to a tensor of shape [R] (one value per replica, on the model's
    device) before ``setup``; on a lone cell it keeps its plain value. This turns the [R]
    tensor into [R, 1, ...] with ``like``'s number of dimensions, and returns a plain value
    unchanged.
    """
    if not isinstance(value, torch.Tensor) or value.dim() == 0:
        return value
    return value.view(-1, *([1] * (like.dim() - 1)))
