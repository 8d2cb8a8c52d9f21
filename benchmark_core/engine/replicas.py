"""Replicas: cells that differ only in seed (or a scalar their objective allows) train as one.

When an objective lists the task's kind in ``replica_kinds`` and the model provides ``vmap``,
the grid groups cells with the same task, model, budget, metrics and objective parameters
(up to the objective's ``replica_params``, π say) into one work item. Each replica's model is
built under its own cell's seed, exactly as an unbatched run builds it; the models are then
stacked into a `ReplicaStack` (parameters with a leading replica axis, methods called through
``torch.func.vmap``) and the objective trains the stack with ``setup_replicas`` and
``step_replicas``. The replicas share no parameter, so the gradient of their summed losses is
each replica's own gradient, and an element-wise optimiser (Adam) on the stacked tensors
takes each replica's own step: R independent runs, computed as one.

Each replica keeps its own data order (from its seed), its own metrics (evaluated on its own
model with the cell's own metric stream) and its own result file, identical in form to an
unbatched run. What differs: the random numbers drawn during training (Q's samples, a
discriminator's initial weights) come from one stream for the whole batch, so a batched cell
is reproducible when it runs in the same batch, not bit-for-bit equal to the cell run alone.
The batch is recorded in each file's metadata (``replicas``: the cell ids trained together),
and each cell's ``wall_time_s`` is its share of the batch's wall time, so that the wall times
of a grid's cells still add up to what the grid cost.
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from benchmark_core.contract import Estimate
from benchmark_core.engine.grid import Cell
from benchmark_core.engine.runner import (
    CellTimeout,
    Outcome,
    ProgressFn,
    TaskCache,
    _CellRun,
    run_cell,
    seed_everything,
    task_threads,
)
from benchmark_core.engine.warm import start_from_source


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
    ``parameters()`` yields only the stacked tensors (leading axis R), so an optimiser built
    on them updates every replica. `call` maps tensor arguments over their leading axis and
    passes anything else (a sample count) to every replica unchanged; randomness inside a
    call differs between replicas.
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


def _key(cell: Cell) -> str | None:
    """Cells with the same key may train together; None: this cell trains alone."""
    objective = cell.objective.cls
    if (
        cell.skip_reason is not None
        or cell.task.cls.kind not in objective.replica_kinds
        or "vmap" not in cell.model.cls.provides
    ):
        return None
    own = {k: v for k, v in cell.objective.params.items() if k not in objective.replica_params}
    key = [
        [cell.task.name, cell.task.params],
        [cell.model.name, cell.model.params],
        [cell.objective.name, own],
        [[m.name, m.params] for m in cell.metrics],
        cell.budget.as_dict(),
        [str(e.plugin.distribution) for e in (cell.task.entry, cell.objective.entry)],
    ]
    return json.dumps(key, sort_keys=True, default=str)


def group_replicas(cells: list[Cell], most: int) -> list[list[Cell]]:
    """Split ``cells`` into work items: groups of up to ``most`` replicas, or single cells.

    Items keep the order of their first cells.
    """
    if most <= 1:
        return [[cell] for cell in cells]
    items: list[list[Cell]] = []
    open_groups: dict[str, list[Cell]] = {}
    for cell in cells:
        key = _key(cell)
        group = open_groups.get(key) if key is not None else None
        if group is not None and len(group) < most:
            group.append(cell)
            continue
        items.append([cell])
        if key is not None:
            open_groups[key] = items[-1]
    return items


def run_replicas(
    cells: list[Cell],
    device: torch.device,
    *,
    timeout: float | None = None,
    task_cache: TaskCache | None = None,
    progress: ProgressFn | None = None,
) -> list[Outcome]:
    """Train ``cells`` (one group from `group_replicas`) as one stacked model.

    Returns one outcome per cell, as `run_cell` would: a replica whose loss becomes NaN ends
    ``diverged`` while the others go on; an exception or the time limit ends them all.
    """
    if len(cells) == 1:
        cell = cells[0]
        return [run_cell(cell, device, timeout=timeout, task_cache=task_cache, progress=progress)]
    runs = [_CellRun(cell, device, timeout) for cell in cells]
    done: dict[int, Outcome] = {}
    try:
        with task_threads(cells[0]):
            _train(cells, runs, done, device, task_cache or TaskCache(), progress)
        status, error = "ok", None
    except CellTimeout as exc:
        status, error = "timeout", str(exc)
    except KeyboardInterrupt:
        status, error = "interrupted", "stopped by the user (Ctrl-C or SIGTERM)"
    except Exception:
        status, error = "error", traceback.format_exc()
    ids = [cell.cell_id for cell in cells]
    outcomes = [done.get(r) or run.finish(status, error) for r, run in enumerate(runs)]
    for outcome in outcomes:
        # A cell's cost is its share of the batch: the wall times of a grid's cells add up.
        outcome.wall_time_s /= len(cells)
        for row in outcome.rows:
            row["wall_time_s"] = outcome.wall_time_s
        outcome.replicas = ids
    return outcomes


def _train(
    cells: list[Cell],
    runs: list[_CellRun],
    done: dict[int, Outcome],
    device: torch.device,
    cache: TaskCache,
    progress: ProgressFn | None,
) -> None:
    first, budget = cells[0], cells[0].budget
    task = cache.get(first.task, device)
    models = []
    for cell in cells:  # each replica starts where its cell alone would
        seed_everything(cell.seed)
        models.append(cell.model.cls(task, **cell.model.params).to(device))
        start_from_source(cell, models[-1])
    seed_everything(first.seed)
    objective = first.objective.cls(**first.objective.params)
    stack = ReplicaStack(models).to(device)
    objective.setup_replicas(stack, task, budget, [dict(c.objective.params) for c in cells])
    metrics = [[(m, m.cls(**m.params)) for m in cell.metrics] for cell in cells]
    eval_steps = set(budget.eval_steps())

    def evaluate(step: int) -> None:
        stack.write_back()
        for r, run in enumerate(runs):
            if r not in done:
                run.evaluate(step, models[r], task, objective, metrics[r])

    data = task.train
    n = data.shape[0]
    batch = min(budget.batch_size, n)
    orders = [torch.Generator().manual_seed(cell.seed) for cell in cells]

    def permutations() -> torch.Tensor:
        return torch.stack([torch.randperm(n, generator=g) for g in orders]).to(device)

    perm, cursor = permutations(), 0
    loss_sum, in_window = torch.zeros(len(cells), device=device), 0
    if 0 in eval_steps:
        evaluate(0)
    for step in range(1, budget.steps + 1):
        if cursor + batch > n:
            perm, cursor = permutations(), 0
        loss = objective.step_replicas(data[perm[:, cursor : cursor + batch]], step - 1)
        if loss.shape != loss_sum.shape:
            raise ValueError(
                f"{first.objective.name}.step_replicas returned a loss of shape "
                f"{tuple(loss.shape)}: it must return one loss per replica, shape [{len(cells)}]"
            )
        cursor += batch
        loss_sum += loss.detach()
        in_window += 1
        if step % budget.log_every == 0 or step in eval_steps:
            means = (loss_sum / in_window).tolist()  # the one sync per window
            for r, mean in enumerate(means):
                if r in done:
                    continue
                if not math.isfinite(mean):
                    why = f"training loss became {mean} near step {step}"
                    done[r] = runs[r].finish("diverged", why)
                else:
                    runs[r].record(step, "train_loss", None, Estimate(mean))
            if len(done) == len(runs):
                return
            loss_sum.zero_()
            in_window = 0
            if progress is not None:
                progress(step, budget.steps)
            runs[0].check_time()
        if step in eval_steps:
            evaluate(step)
