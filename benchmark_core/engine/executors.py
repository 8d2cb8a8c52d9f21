"""Where cells run, and the grid loop around them: resume, write as each cell ends, count.

The unit of work is an *item*: one cell, or replica cells that train together as one
vectorised model (see :mod:`benchmark_core.engine.replicas`). Items run in this process, in a local
pool of worker processes (:mod:`benchmark_core.engine.pool`) or as Ray tasks on a cluster
(:mod:`benchmark_core.engine.ray_executor`); whichever runs them, this process writes each cell's
file as soon as its outcome arrives.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from benchmark_core.contract.errors import ResultsError, UsageError
from benchmark_core.engine.grid import Cell
from benchmark_core.engine.pool import Claimed, run_pool
from benchmark_core.engine.replicas import group_replicas
from benchmark_core.engine.runner import Outcome, TaskCache, run_work
from benchmark_core.results import checkpoints
from benchmark_core.results.cell_claims import claim, release
from benchmark_core.results.store import cell_state, check_file, result_files, write_cell


class GridUI(Protocol):
    """What the grid loop reports to whoever is watching (the CLI draws progress bars)."""

    def cell_started(self, cell: Cell, index: int, total: int, replicas: int = 1) -> None:
        """A cell (the first of ``replicas`` that train together) is about to run."""

    def cell_progress(self, step: int, steps: int) -> None:
        """The running cell reached ``step`` of ``steps``."""

    def cell_finished(self, cell: Cell, status: str, outcome: Outcome | None) -> None:
        """A cell ended (``outcome`` is None when it was already done and not rerun)."""


class SilentUI:
    """A GridUI that shows nothing."""

    def cell_started(self, cell: Cell, index: int, total: int, replicas: int = 1) -> None:
        pass

    def cell_progress(self, step: int, steps: int) -> None:
        pass

    def cell_finished(self, cell: Cell, status: str, outcome: Outcome | None) -> None:
        pass


@dataclass
class GridReport:
    """What a grid run did."""

    out_dir: Path
    counts: Counter = field(default_factory=Counter)
    wall_time_s: float = 0.0
    interrupted: bool = False
    problems: list[str] = field(default_factory=list)
    failed: list[tuple[Cell, str, str]] = field(default_factory=list)


def plan(cells: list[Cell], out_dir: Path, force: bool) -> tuple[list[tuple[Cell, str]], list[str]]:
    """Decide for each cell: ``run``, or ``done`` (an ok result with every metric asked for).

    Skipped cells are ``run`` too (cheap: they only record their reason) unless their file
    already records the skip. Returns the plan and the problems met reading old files.
    """
    actions, problems = [], []
    ids = {cell.cell_id for cell in cells}
    for path in result_files(out_dir) if out_dir.is_dir() else []:
        if path.stem not in ids:  # the grid's own files are read in full below
            try:
                check_file(path)
            except ResultsError as exc:
                problems.append(str(exc))
    for cell in cells:
        if force:
            actions.append((cell, "run"))
            continue
        done, problem = is_done(cell, out_dir)
        if problem:
            problems.append(f"{problem} (the cell will be run again)")
        actions.append((cell, "done" if done else "run"))
    return actions, problems


def is_done(cell: Cell, out_dir: Path) -> tuple[bool, str | None]:
    """Whether the cell's file holds an ok result with every metric asked for (or its skip)."""
    status, sources, problem = cell_state(out_dir, cell.cell_id)
    wanted = {m.name for m in cell.metrics}
    done = (status == "ok" and wanted <= sources) or (
        status == "skipped" and cell.skip_reason is not None
    )
    return done, problem


def run_grid(
    cells: list[Cell],
    out_dir: Path,
    device: torch.device,
    *,
    force: bool = False,
    timeout: float | None = None,
    ui: GridUI | None = None,
    jobs: int = 1,
    replicas: int = 1,
    executor: str = "local",
    address: str | None = None,
) -> GridReport:
    """Run every cell that is not done yet, writing each one's file as soon as it ends.

    ``jobs`` > 1 runs items in that many worker processes (see :mod:`benchmark_core.engine.pool`);
    so does a ``timeout``, which is then enforced by killing the worker even inside a step
    that hangs. ``executor="ray"`` runs each item as a Ray task instead, on the cluster at
    ``address`` (else RAY_ADDRESS, else a local Ray instance), with at most ``jobs`` (> 1) or
    the cluster's CPUs (GPUs on CUDA) in flight; see :mod:`benchmark_core.engine.ray_executor`.
    ``replicas`` > 1 lets up to that many cells that differ only in seed (or in a parameter
    their objective lists in ``replica_params``) train together as one model.
    Ctrl-C ends the cells in flight as ``interrupted`` (partial rows kept in-process; they
    are run again next time) and stops the grid; every finished cell's file is on disk.
    """
    if executor not in ("local", "ray"):
        raise UsageError(f"executor {executor!r}: choose local or ray.")
    ui = ui or SilentUI()
    report = GridReport(out_dir)
    start = time.monotonic()
    actions, report.problems = plan(cells, out_dir, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    pending = []
    for cell, action in actions:
        if action == "done":
            report.counts["done earlier"] += 1
            ui.cell_finished(cell, "done earlier", None)
        else:
            pending.append(cell)

    def acquire(item: list[Cell]) -> Claimed:
        claimed = []
        for cell in item:
            held = claim(out_dir, cell.cell_id)
            if held is None:
                report.counts["running elsewhere"] += 1
                ui.cell_finished(cell, "running elsewhere", None)
            elif not force and is_done(cell, out_dir)[0]:
                release(held)  # another process finished it since the plan was made
                report.counts["done earlier"] += 1
                ui.cell_finished(cell, "done earlier", None)
            else:
                claimed.append((cell, held))
        return claimed

    def finish(cell: Cell, outcome: Outcome, held: Path) -> bool:
        try:
            meta = {"directions": outcome.directions, "budget": cell.budget.as_dict()}
            if outcome.replicas:
                meta["replicas"] = outcome.replicas
            if outcome.checkpoint is not None:  # the state first: a result never names a lost one
                meta["checkpoint"] = checkpoints.write(out_dir, cell.cell_id, outcome.checkpoint)
            write_cell(out_dir, cell.cell_id, outcome.rows, meta)
        finally:
            release(held)
        report.counts[outcome.status] += 1
        if outcome.status not in ("ok", "skipped"):
            report.failed.append((cell, outcome.status, outcome.error or ""))
        ui.cell_finished(cell, outcome.status, outcome)
        if outcome.status == "interrupted":
            report.interrupted = True
        return not report.interrupted

    try:
        items = group_replicas(pending, replicas)
        if executor == "ray":
            from benchmark_core.engine.ray_executor import run_ray

            run_ray(items, device, timeout, acquire, finish, address=address, jobs=jobs)
        elif jobs > 1 or timeout is not None:
            run_pool(items, jobs, device, timeout, acquire, finish)
        else:
            tasks, index = TaskCache(), 0
            for item in items:
                claimed = acquire(item)
                if not claimed:
                    continue
                ui.cell_started(claimed[0][0], index, len(pending), len(claimed))
                index += len(claimed)
                outcomes = run_work(
                    [cell for cell, _ in claimed],
                    device,
                    task_cache=tasks,
                    progress=ui.cell_progress,
                )
                pairs = zip(claimed, outcomes, strict=True)
                going = [finish(cell, out, held) for (cell, held), out in pairs]
                if not all(going):
                    break
    except KeyboardInterrupt:  # between cells, or the pool already recorded its cells
        report.interrupted = True
    report.wall_time_s = time.monotonic() - start
    return report
