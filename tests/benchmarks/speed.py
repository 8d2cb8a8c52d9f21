"""Workloads timed by the benchmark suite and by ``ratios.py``: each is built exactly as the
runner builds a cell, so the figures are those of real runs.

Times are process CPU seconds (``time.process_time``) on one intra-op thread unless a caller
sets more: on a shared machine CPU time is robust to other processes, wall time is not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from helpers import grid

from benchmark_core.contract import Model, Objective, Task
from benchmark_core.engine.executors import run_grid
from benchmark_core.engine.grid import Cell
from benchmark_core.engine.loop import build as build_work
from benchmark_core.engine.runner import TaskCache, seed_everything
from benchmark_core.registry import Registry

CPU = torch.device("cpu")
_CACHE = TaskCache()


def cells(
    registry: Registry,
    objectives: str,
    tasks: str,
    models: str | None = None,
    seeds: str = "1",
    metrics: str = "moments",
    budget: str = "quick",
) -> list[Cell]:
    """The runnable cells of a grid given as CLI selection strings (skipped ones dropped)."""
    built = grid(registry, objectives, tasks, models, metrics, seeds, budget)
    return [cell for cell in built if cell.skip_reason is None]


def build(cell: Cell) -> tuple[Task, Model, Objective]:
    """The cell's task, model and set-up objective, as `run_cell` makes them."""
    seed_everything(cell.seed)
    task = _CACHE.get(cell.task, CPU)
    model = cell.model.cls(task, **cell.model.params)
    objective = cell.objective.cls(**cell.objective.params)
    objective.setup(model, task, cell.budget)
    return task, model, objective


def cpu_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """The best process CPU time of ``repeats`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def batches(task: Task, cell: Cell, steps: int, replicas: int = 0) -> list[torch.Tensor]:
    """``steps`` training batches of the cell's size ([R, B, ...] when ``replicas``)."""
    gen = torch.Generator().manual_seed(cell.seed)
    shape = (replicas, cell.budget.batch_size) if replicas else (cell.budget.batch_size,)
    n = task.train.shape[0]
    return [task.train[torch.randint(n, shape, generator=gen)] for _ in range(steps)]


def step_seconds(cell: Cell, steps: int) -> float:
    """CPU seconds per training step of the cell's objective at its budget's batch size."""
    task, _, objective = build(cell)
    data = batches(task, cell, steps)
    objective.step(data[0], 0)  # warm-up: first-call costs are not per-step costs

    def run() -> None:
        for i, batch in enumerate(data):
            objective.step(batch, i)

    return cpu_time(run, repeats=1) / steps


def replica_step_seconds(group: list[Cell], steps: int) -> float:
    """CPU seconds per training step of ``group`` trained together as one stack."""
    first = group[0]
    task = _CACHE.get(first.task, CPU)
    _, _, objective = build_work(group, task, CPU)  # as the engine builds a replica batch
    data = batches(task, first, steps, replicas=len(group))
    objective.step(data[0], 0)

    def run() -> None:
        for i, batch in enumerate(data):
            objective.step(batch, i)

    return cpu_time(run, repeats=1) / steps


class Noop(Objective):
    """A trivial objective: the cost of a cell is then the harness's own."""

    name = "noop"
    description = "does nothing (measures the harness)"

    def setup(self, model: Model, task: Task, budget: object) -> None:
        self.zero = torch.zeros(())

    def step(self, batch: torch.Tensor, step: int) -> torch.Tensor:
        return self.zero


def trivial_cells(registry: Registry, n: int) -> list[Cell]:
    """``n`` cells of one step and no metric (the registry must hold a ``noop`` objective)."""
    grid = cells(registry, "noop", "gaussian", "isotropic_gaussian", str(n), metrics="moments")
    tiny = {"steps": 1, "checkpoints": 1, "log_every": 1}
    return [replace(c, budget=replace(c.budget, **tiny), metrics=()) for c in grid]


def grid_seconds(grid: list[Cell], out_dir: Path, **options: object) -> float:
    """Wall seconds of `run_grid` over ``grid``, writing into ``out_dir`` (forced)."""
    start = time.perf_counter()
    run_grid(grid, out_dir, CPU, force=True, **options)  # type: ignore[arg-type]
    return time.perf_counter() - start
