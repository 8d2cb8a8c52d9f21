"""Where cells run, and the grid loop around them: resume, write as each cell ends, count.

Only the in-process executor exists so far; a cell is the unit of work, so a process pool or
a cluster executor slots in behind the same ``run_grid``.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from .claims import claim, release
from .errors import ResultsError
from .grid import Cell
from .pool import run_pool
from .results import cell_state, check_file, result_files, write_cell
from .runner import Outcome, TaskCache, run_cell


class GridUI(Protocol):
    """What the grid loop reports to whoever is watching (the CLI draws progress bars)."""

    def cell_started(self, cell: Cell, index: int, total: int) -> None:
        """A cell is about to run."""

    def cell_progress(self, step: int, steps: int) -> None:
        """The running cell reached ``step`` of ``steps``."""

    def cell_finished(self, cell: Cell, status: str, outcome: Outcome | None) -> None:
        """A cell ended (``outcome`` is None when it was already done and not rerun)."""


class SilentUI:
    """A GridUI that shows nothing."""

    def cell_started(self, cell: Cell, index: int, total: int) -> None:
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
) -> GridReport:
    """Run every cell that is not done yet, writing each one's file as soon as it ends.

    ``jobs`` > 1 runs cells in that many worker processes (see :mod:`benchmark_core.pool`),
    where the time limit is enforced by killing the worker. Ctrl-C ends the cells in flight
    as ``interrupted`` (partial rows kept in-process; they are run again next time) and stops
    the grid; every finished cell's file is already on disk.
    """
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

    def acquire(cell: Cell) -> Path | None:
        held = claim(out_dir, cell.cell_id)
        if held is None:
            report.counts["running elsewhere"] += 1
            ui.cell_finished(cell, "running elsewhere", None)
        elif not force and is_done(cell, out_dir)[0]:
            release(held)  # another process finished it since the plan was made
            report.counts["done earlier"] += 1
            ui.cell_finished(cell, "done earlier", None)
            return None
        return held

    def finish(cell: Cell, outcome: Outcome, held: Path) -> bool:
        try:
            meta = {"directions": outcome.directions, "budget": cell.budget.as_dict()}
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
        if jobs > 1:
            run_pool(pending, jobs, device, timeout, acquire, finish)
        else:
            tasks = TaskCache()
            for index, cell in enumerate(pending):
                held = acquire(cell)
                if held is None:
                    continue
                ui.cell_started(cell, index, len(pending))
                outcome = run_cell(
                    cell, device, timeout=timeout, task_cache=tasks, progress=ui.cell_progress
                )
                if not finish(cell, outcome, held):
                    break
    except KeyboardInterrupt:  # between cells, or the pool already recorded its cells
        report.interrupted = True
    report.wall_time_s = time.monotonic() - start
    return report
