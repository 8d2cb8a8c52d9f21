"""ReplicaStack: R modules of one architecture as one, the engine's `ModelStack`.

The replicas' parameters are stacked with a leading axis R (``torch.func.stack_module_state``)
and their methods called through ``torch.func.vmap``. The replicas share no parameter, so the
gradient of their summed losses is each replica's own gradient, and an element-wise optimiser
(Adam) on the stacked tensors takes each replica's own step: R independent runs, computed as
one.

A stack of ``nn.Sequential`` networks made only of ``nn.Linear`` layers, each followed by at
most one element-wise activation (SiLU, ReLU, Tanh, Sigmoid, Identity) — the discriminators
objectives build with `ModelStack.stack` — is called through a dedicated kernel instead
(`_StackedMLP`): batched matrix products with the bias fused, a few replicas at a time so
that their activations stay in the core's cache, activation buffers reused from call to call
(no page faults), its own backward. Its outputs and gradients equal each replica's
network's within float rounding (on CPU bit for bit those of the vmap path); it is
differentiable once. ``call("forward", ...)`` keeps the generic vmap path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.func import functional_call, stack_module_state, vmap

Activation = tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]

#: The element-wise activations the stacked-MLP kernel knows: forward (z, out=h), and
#: backward from (grad, pre-activation z, activation h), each one fused kernel.
ACTIVATIONS: dict[type[nn.Module], Activation] = {
    nn.SiLU: (torch.ops.aten.silu.out, lambda g, z, h: torch.ops.aten.silu_backward(g, z)),
    nn.ReLU: (
        lambda z, out: torch.clamp_min(z, 0, out=out),
        lambda g, z, h: torch.ops.aten.threshold_backward(g, h, 0),
    ),
    nn.Tanh: (torch.tanh, lambda g, z, h: torch.ops.aten.tanh_backward(g, h)),
    nn.Sigmoid: (torch.sigmoid, lambda g, z, h: torch.ops.aten.sigmoid_backward(g, h)),
}

#: Bytes of one layer's activations per chunk of replicas on a CPU: a chunk's live
#: activations then stay in a core's L2 cache (1-2 MiB) from one layer to the next, where
#: all 32 replicas' (4 MiB each at n = 512, width 64) would go to L3 and memory.
CHUNK_BYTES = 512 * 1024


def mlp_plan(modules: Sequence[nn.Module]) -> list[Activation | None] | None:
    """The activation after each linear layer if ``modules`` are one ``nn.Sequential`` of
    ``nn.Linear`` layers, each followed by at most one known activation (or ``nn.Identity``);
    None for anything else (the generic vmap path then serves it)."""
    first = modules[0]
    if type(first) is not nn.Sequential or any(repr(m) != repr(first) for m in modules):
        return None
    if any(m._forward_hooks or m._forward_pre_hooks for r in modules for m in r.modules()):
        return None  # hooks see per-replica calls under vmap; keep those semantics
    plan: list[Activation | None] = []
    for layer in first:
        if type(layer) is nn.Linear:
            plan.append(None)
        elif type(layer) is nn.Identity:
            continue
        elif type(layer) in ACTIVATIONS and plan and plan[-1] is None:
            plan[-1] = ACTIVATIONS[type(layer)]
        else:
            return None
    return plan or None


class _Pool:
    """Activation buffers a stacked MLP's backward has finished with, for its next calls.

    A fresh 4 MiB tensor per layer and call costs its pages' first-touch faults, which on
    a loaded virtual machine took as long as the arithmetic; reused buffers are resident.
    Holds at most ``limit`` (as many as a few calls awaiting their backward need).
    """

    def __init__(self, limit: int = 16) -> None:
        self.free: list[torch.Tensor] = []
        self.limit = limit

    def take(self, shape: tuple[int, ...] | torch.Size, like: torch.Tensor) -> torch.Tensor:
        """A buffer of ``shape`` with ``like``'s dtype and device: a free one, or a new one."""
        for i, t in enumerate(self.free):
            if t.shape == shape and t.dtype == like.dtype and t.device == like.device:
                return self.free.pop(i)
        return like.new_empty(shape)

    def give(self, tensors: list[torch.Tensor]) -> None:
        """Buffers nothing reads any more."""
        self.free = (self.free + list(tensors))[-self.limit :]


class _StackedMLP(torch.autograd.Function):
    """R MLPs on their own rows, ``chunk`` replicas at a time, with its own backward.

    Saves each layer's pre-activation z and activation h (written once, read once: cheaper
    than recomputing an exp per element). Every tensor is cut into chunks once per call
    (``split``: one op, not one slice per chunk and layer); the weights are used as
    transposed views (no copies).
    """

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, plan: list, chunk: int, pool: _Pool, *params: Any
    ) -> torch.Tensor:
        weights, biases = params[0::2], params[1::2]
        r, n = x.shape[:2]
        # The hidden layers' z and h come from the pool; the output layer's are the output.
        shapes = [(r, n, w.shape[1]) for w in weights]
        zs = [pool.take(s, x) for s in shapes[:-1]] + [x.new_empty(shapes[-1])]
        hs = [z if act is None else pool.take(z.shape, x) for z, act in zip(zs, plan, strict=True)]
        if plan[-1] is not None:
            hs[-1] = x.new_empty(shapes[-1])
        layers = [
            (
                w.mT.split(chunk),
                None if b is None else b.unsqueeze(1).split(chunk),
                act,
                z.split(chunk),
                h.split(chunk),
            )
            for w, b, act, z, h in zip(weights, biases, plan, zs, hs, strict=True)
        ]
        for j, a in enumerate(x.split(chunk)):
            for w, b, act, z, h in layers:
                if b is None:
                    torch.bmm(a, w[j], out=z[j])
                else:
                    # The bias is the product's initial value: no separate broadcast add.
                    torch.baddbmm(b[j], a, w[j], out=z[j])
                if act is not None:
                    act[0](z[j], out=h[j])
                a = h[j]
        ctx.save_for_backward(x, *params, *zs, *hs)
        ctx.plan, ctx.chunk, ctx.pool = plan, chunk, pool
        pooled = [*zs[:-1], *(h for h, act in zip(hs[:-1], plan, strict=False) if act is not None)]
        if not any(ctx.needs_input_grad):
            pool.give(pooled)  # no backward will read them
        else:
            ctx.pooled = pooled
        return hs[-1]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        plan, chunk = ctx.plan, ctx.chunk
        saved = ctx.saved_tensors
        count = len(plan)
        x, params = saved[0], saved[1 : 1 + 2 * count]
        zs, hs = saved[1 + 2 * count : 1 + 3 * count], saved[1 + 3 * count :]
        weights, biases = params[0::2], params[1::2]
        need = ctx.needs_input_grad
        gx = torch.empty_like(x) if need[0] else None
        gw = [torch.empty_like(w) for w in weights]
        gb = [None if b is None else torch.empty_like(b) for b in biases]
        gs = grad.contiguous().split(chunk)
        gxs = None if gx is None else gx.split(chunk)
        ws = [w.split(chunk) for w in weights]
        gws = [g.split(chunk) for g in gw]
        gbs = [None if g is None else g.split(chunk) for g in gb]
        zcs = [z.split(chunk) for z in zs]
        inputs = [t.split(chunk) for t in (x, *hs[:-1])]
        hcs = [h.split(chunk) for h in hs]
        for j in range(len(gs)):
            dz = gs[j]
            for i in reversed(range(count)):
                w, a, act = ws[i][j], inputs[i][j], plan[i]
                if act is not None:
                    dz = act[1](dz, zcs[i][j], hcs[i][j])
                if w.shape[2] < w.shape[1]:
                    # A thin input (k = 2): [k, n] x [n, o] is one fast product, [o, n] x
                    # [n, k] a slow one; so is writing it straight into the transposed view.
                    gws[i][j].copy_(torch.bmm(a.mT, dz).mT)
                else:
                    torch.bmm(dz.mT, a, out=gws[i][j])
                if gbs[i] is not None:
                    torch.sum(dz, 1, out=gbs[i][j])
                if i == 0 and gxs is None:
                    break
                target = gxs[j] if i == 0 else None
                if w.shape[1] == 1:
                    # [C, n, 1] * [C, 1, k]: an outer product, not a slow bmm with k = 1.
                    dz = torch.mul(dz, w) if target is None else torch.mul(dz, w, out=target)
                else:
                    dz = torch.bmm(dz, w) if target is None else torch.bmm(dz, w, out=target)
        # Their last reader is done: the next call writes into them (were this graph kept
        # with retain_graph=True, a second backward would stop at autograd's version check).
        ctx.pool.give(ctx.pooled)
        out: list[torch.Tensor | None] = [gx, None, None, None]
        for i in range(count):
            out += [gw[i] if need[4 + 2 * i] else None, gb[i] if need[5 + 2 * i] else None]
        return tuple(out)


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
        # A stack of MLPs (a discriminator per replica) is called through `_StackedMLP`.
        self.plan = mlp_plan(modules)
        self.chunk: int | None = None  # replicas per chunk; None: sized to CHUNK_BYTES
        self.pool = _Pool()
        if self.plan is not None:
            index = {name: i for i, name in enumerate(self.names)}
            linears = [str(i) for i, m in enumerate(modules[0]) if type(m) is nn.Linear]
            self.layers = [(index[f"{i}.weight"], index.get(f"{i}.bias")) for i in linears]

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
        """Every replica's forward, as `call` ("forward", ...); a stack of MLPs maps x
        [R, ..., d] to [R, ..., o] through the stacked-MLP kernel (once differentiable)."""
        if self.plan is not None and len(args) == 1 and isinstance(args[0], torch.Tensor):
            return self.mlp(args[0])
        return self.call("forward", *args)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        """Every replica's MLP on its own rows x [R, ..., d] -> [R, ..., o], ``chunk``
        replicas at a time on a CPU (all at once on an accelerator)."""
        if self.plan is None:
            raise TypeError("mlp() needs a stack of nn.Sequential MLPs")
        r = len(self)
        if x.dim() < 2 or x.shape[0] != r:
            raise ValueError(f"expected inputs [{r}, ..., d], got {tuple(x.shape)}")
        rows = x.reshape(r, -1, x.shape[-1]).contiguous()
        params: list[torch.Tensor | None] = []
        for w, b in self.layers:
            params += [self.stacked[w], None if b is None else self.stacked[b]]
        chunk = self.chunk
        if chunk is None:
            if x.device.type == "cpu":
                width = max(p.shape[1] for p in params[0::2] if p is not None)
                chunk = max(1, CHUNK_BYTES // (rows.shape[1] * width * x.element_size()))
            else:
                chunk = r  # no cache to fit in: as few kernel launches as possible
        out = _StackedMLP.apply(rows, self.plan, chunk, self.pool, *params)
        return out.reshape(*x.shape[:-1], out.shape[-1])

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
