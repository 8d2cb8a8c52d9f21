"""ReplicaStack: R modules of one architecture as one, the engine's `ModelStack`.

The replicas' parameters are stacked with a leading axis R (``torch.func.stack_module_state``)
and their methods called through ``torch.func.vmap``. The replicas share no parameter, so the
gradient of their summed losses is each replica's own gradient, and an element-wise optimiser
(Adam) on the stacked tensors takes each replica's own step: R independent runs, computed as
one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


class _Method(nn.Module):
    """Calls one method of a module, so that functional_call can reach methods but forward."""

    def __init__(self, module: nn.Module, method: str) -> None:
        super().__init__()
        self.m, self.method = module, method

    def forward(self, *args: Any) -> Any:
        return getattr(self.m, self.method)(*args)


class ReplicaStack(nn.Module):
    """R modules of one architecture as one: stacked parameters, methods called under vmap.

    Parameters
    ----------
    modules : sequence of nn.Module
        The replicas, all of one class and shape. They are not changed while the stack
        trains; `write_back` copies the stack's current parameters into them.

    Notes
    -----
    Implements `benchmark_core.contract.ModelStack`. ``parameters()`` yields only the
    stacked tensors (leading axis R), so an optimiser built on them updates every replica.
    `call` maps tensor arguments over their leading axis and passes anything else (a sample
    count) to every replica unchanged; randomness inside a call differs between replicas.
    """

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        super().__init__()
        modules = list(modules)
        if not modules or len({type(m) for m in modules}) != 1:
            raise ValueError("a ReplicaStack needs one or more modules of a single class")
        params, buffers = stack_module_state(modules)
        self.names = list(params)
        self.stacked = nn.ParameterList(nn.Parameter(params[n]) for n in self.names)
        self.buffer_names = list(buffers)
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"buffer{i}", buffers[name])
        # A plain list and dict: registering them would add the replicas' own parameters.
        self.replicas: list[nn.Module] = modules
        self._methods: dict[str, _Method] = {}

    def __len__(self) -> int:
        return len(self.replicas)

    def state(self) -> dict[str, torch.Tensor]:
        """The stacked parameters and buffers by their names in one replica, prefixed ``m.``."""
        state = {f"m.{n}": p for n, p in zip(self.names, self.stacked, strict=True)}
        for i, name in enumerate(self.buffer_names):
            state[f"m.{name}"] = getattr(self, f"buffer{i}")
        return state

    def call(self, method: str, *args: Any) -> Any:
        """``replica.method(*args)`` for every replica at once; outputs gain a leading axis R."""
        if method not in self._methods:
            self._methods[method] = _Method(self.replicas[0], method)
        bound = self._methods[method]
        dims = tuple(0 if isinstance(a, torch.Tensor) else None for a in args)

        def one(state: dict[str, torch.Tensor], *a: Any) -> Any:
            return functional_call(bound, state, a)

        return vmap(one, in_dims=(0, *dims), randomness="different")(self.state(), *args)

    def forward(self, *args: Any) -> Any:
        """Every replica's forward, as `call` ("forward", ...)."""
        return self.call("forward", *args)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Every replica's ``log_prob`` of its own rows: [R, n, ...] -> [R, n]."""
        return self.call("log_prob", x)

    def sample(self, n: int) -> torch.Tensor:
        """``n`` samples from every replica, [R, n, ...]."""
        return self.call("sample", n)

    def rsample(self, n: int) -> torch.Tensor:
        """``n`` reparameterised samples from every replica, [R, n, ...]."""
        return self.call("rsample", n)

    def mean(self) -> torch.Tensor:
        """Every replica's exact mean, [R, ...]."""
        return self.call("mean")

    def covariance(self) -> torch.Tensor:
        """Every replica's exact covariance, [R, ...]."""
        return self.call("covariance")

    def stack(self, modules: Sequence[nn.Module]) -> ReplicaStack:
        """``modules`` (one per replica) as a stack on this stack's device."""
        if len(modules) != len(self):
            raise ValueError(
                f"stack() needs one module per replica ({len(self)}), not {len(modules)}"
            )
        device = self.stacked[0].device if len(self.stacked) else torch.device("cpu")
        return ReplicaStack(modules).to(device)

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the stack's current parameters and buffers into the replica modules."""
        state = self.state()
        for r, module in enumerate(self.replicas):
            for name in self.names + self.buffer_names:
                target = (
                    module.get_parameter(name) if name in self.names else module.get_buffer(name)
                )
                target.copy_(state[f"m.{name}"][r])
