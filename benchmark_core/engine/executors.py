"""Where cells run, and the grid loop around them: resume, write as each cell ends, count.

The unit of work is an *item*: one cell, or replica cells that train together as one
vectorised model (see :mod:`benchmark_core.engine.replicas`). Items run in this process, in a local
pool of worker processes (:mod:`benchmark_core.engine.pool`) or as Ray tasks on a cluster
(:mod:`benchmark_core.engine.ray_executor`); whichever runs them, this process writes each cell's
file as soon as its outcome arrives.
"""

from __future__ import annotations

import contextlib
import errno
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from benchmark_core.contract.errors import ResultsError, UsageError
from benchmark_core.engine.grid import Cell
from benchmark_core.engine.pool import WorkerPool, run_pool
from benchmark_core.engine.replicas import group_replicas
from benchmark_core.engine.runner import Outcome, TaskCache, run_work
from benchmark_core.engine.work import Claimed, Work, deferred_signals, holder_note
from benchmark_core.results import checkpoints
from benchmark_core.results.cell_claims import Claim, claim, describe_holder, release, release_all
from benchmark_core.results.store import (
    DIRECTIONS,
    cell_state,
    check_file,
    result_files,
    write_cell,
)


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
    #: Seconds each worker process took from start to ready (empty when none was started).
    workers_ready_s: list[float] = field(default_factory=list)


def plan(cells: list[Cell], out_dir: Path, force: bool) -> tuple[list[tuple[Cell, str]], list[str]]:
    """Decide for each cell: ``run``, or ``done`` (an ok result with every metric asked for).

    Skipped cells are ``run`` too (cheap: they only record their reason) unless their file
    already records the skip. Returns the plan and the problems met reading old files,
    including finished cells whose metric values come from another version of the metric's
    plugin than the one installed (they are not recomputed: the warning names them).
    """
    actions, problems = [], []
    ids = {cell.cell_id for cell in cells}
    for path in result_files(out_dir) if out_dir.is_dir() else []:
        if path.stem not in ids:  # the grid's own files are read in full below
            try:
                check_file(path)
            except ResultsError as exc:
                problems.append(str(exc))
    stored: list[tuple[Cell, dict[str, set[str]]]] = []
    for cell in cells:
        if force:
            actions.append((cell, "run"))
            continue
        state = cell_state(out_dir, cell.cell_id)
        if state.problem:
            problems.append(f"{state.problem} (the cell will be run again)")
        done = _done(cell, state.status, state.sources)
        if done:
            stored.append((cell, state.versions))
        actions.append((cell, "done" if done else "run"))
    problems += version_notes(stored)
    return actions, problems


def version_notes(stored: list[tuple[Cell, dict[str, set[str]]]]) -> list[str]:
    """Name the finished cells whose metric values another version of the metric computed."""
    stale: dict[tuple[str, str, str], list[str]] = {}
    for cell, versions in stored:
        for metric in cell.metrics:
            installed = metric.entry.plugin.version
            old = sorted(versions.get(metric.name, set()) - {installed})
            if old:
                key = (metric.name, ", ".join(old), installed)
                stale.setdefault(key, []).append(cell.cell_id)
    notes = []
    for (name, old, installed), ids in sorted(stale.items()):
        shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        notes.append(
            f"metric '{name}': {len(ids)} finished cell(s) hold values from version {old} of "
            f"its plugin, but version {installed} is installed; they are not recomputed, so "
            f"tables mix both versions (rerun those cells with --force to refresh): {shown}"
        )
    return notes


def _done(cell: Cell, status: str | None, sources: set[str]) -> bool:
    wanted = {m.name for m in cell.metrics}
    return (status == "ok" and wanted <= sources) or (
        status == "skipped" and cell.skip_reason is not None
    )


def is_done(cell: Cell, out_dir: Path) -> tuple[bool, str | None]:
    """Whether the cell's file holds an ok result with every metric asked for (or its skip)."""
    state = cell_state(out_dir, cell.cell_id)
    return _done(cell, state.status, state.sources), state.problem


class _Grid:
    """The bookkeeping of one grid run: claims taken and given back, outcomes written."""

    def __init__(self, out_dir: Path, force: bool, ui: GridUI, report: GridReport) -> None:
        self.out_dir, self.force, self.ui, self.report = out_dir, force, ui, report

    def acquire(self, item: list[Cell]) -> tuple[Claimed, list[Cell]]:
        """Claim an item's cells: those to run, and those another process holds."""
        claimed, elsewhere = [], []
        for cell in item:
            try:
                held = claim(self.out_dir, cell.cell_id)
            except OSError as exc:
                raise self.write_failure(exc) from exc
            if held is None:
                elsewhere.append(cell)
            elif not self.force and is_done(cell, self.out_dir)[0]:
                release(held)  # another process finished it since the plan was made
                self.report.counts["done earlier"] += 1
                self.ui.cell_finished(cell, "done earlier", None)
            else:
                claimed.append((cell, held))
        return claimed, elsewhere

    def finish(self, cell: Cell, outcome: Outcome, held: Claim) -> bool:
        """Write one cell's outcome and give its claim back; False stops the grid."""
        with deferred_signals():  # a second Ctrl-C must not cut the record or leak the claim
            try:
                meta = {"directions": self.directions(outcome), "budget": cell.budget.as_dict()}
                if outcome.replicas:
                    meta["replicas"] = outcome.replicas
                if outcome.checkpoint is not None:  # the state first: no result names a lost one
                    meta["checkpoint"] = checkpoints.write(
                        self.out_dir, cell.cell_id, outcome.checkpoint
                    )
                write_cell(self.out_dir, cell.cell_id, outcome.rows, meta)
            except OSError as exc:
                raise self.write_failure(exc) from exc
            finally:
                release(held)
        report = self.report
        report.counts[outcome.status] += 1
        if outcome.status not in ("ok", "skipped"):
            report.failed.append((cell, outcome.status, outcome.error or ""))
        self.ui.cell_finished(cell, outcome.status, outcome)
        if outcome.status == "interrupted":
            report.interrupted = True
        return not report.interrupted

    def directions(self, outcome: Outcome) -> dict[str, str]:
        """The outcome's metric directions, with any a plugin gave wrong recorded as ``none``
        (so that its file stays a gbench result that every reader accepts)."""
        good = {}
        for name, direction in outcome.directions.items():
            if direction not in DIRECTIONS:
                note = (
                    f"metric value '{name}' was given direction {direction!r} by its plugin; "
                    f"it is recorded as 'none' (a direction is one of {', '.join(DIRECTIONS)})"
                )
                if note not in self.report.problems:
                    self.report.problems.append(note)
                direction = "none"
            good[str(name)] = direction
        return good

    def write_failure(self, exc: OSError) -> ResultsError:
        """What to say when the results folder stops taking writes (a full disk, a lost mount)."""
        saved = sum(n for status, n in self.report.counts.items() if status in RECORDED)
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        why = "the disk is full" if full else "writing failed"
        return ResultsError(
            f"could not write to the results folder {self.out_dir}: {why} "
            f"({exc.strerror or exc}). The {saved} cell(s) this run finished before it are "
            "saved whole; the cells in flight were stopped and their claims given back. Free "
            "space (or fix the folder) and run the same command again to resume."
        )

    def run_here(self, work: Work, device: torch.device, total: int) -> None:
        """Run the items in this process, one after the other."""
        tasks, index = TaskCache(), 0
        while work.pending:
            claimed = work.take()
            if not claimed:
                work.idle()
                continue
            self.ui.cell_started(claimed[0][0], index, total, len(claimed))
            index += len(claimed)
            cells = [cell for cell, _ in claimed]
            outcomes = run_work(cells, device, task_cache=tasks, progress=self.ui.cell_progress)
            pairs = zip(claimed, outcomes, strict=True)
            if not all([self.finish(cell, out, held) for (cell, held), out in pairs]):
                return

    def left_elsewhere(self, work: Work) -> None:
        """Report the cells that other processes still held when this run ended."""
        cells = list(work.elsewhere.values())
        if not cells or self.report.interrupted:
            return
        for cell in cells:
            self.report.counts["running elsewhere"] += 1
            why = f"claimed by {describe_holder(self.out_dir, cell.cell_id)}; no result here yet"
            self.report.failed.append((cell, "running elsewhere", why))
            self.ui.cell_finished(cell, "running elsewhere", None)
        self.report.problems.append(holder_note(self.out_dir, cells, describe_holder))


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
    wait_elsewhere: float | None = None,
    pool: WorkerPool | None = None,
) -> GridReport:
    """Run every cell that is not done yet, writing each one's file as soon as it ends.

    ``jobs`` > 1 runs items in that many worker processes (see :mod:`benchmark_core.engine.pool`)
    when the grid has more than one item; so does a ``timeout``, which is then enforced by
    killing the worker even inside a step that hangs. The workers start before the grid is
    planned; a caller running several grids passes its own ``pool`` to keep them.
    ``executor="ray"`` runs each item as a Ray task instead, on the cluster at ``address``
    (else RAY_ADDRESS, else a local Ray instance), with at most ``jobs`` (> 1) or
    the cluster's CPUs (GPUs on CUDA) in flight; see :mod:`benchmark_core.engine.ray_executor`.
    ``replicas`` > 1 lets up to that many cells that differ only in seed (or in a parameter
    their objective lists in ``replica_params``) train together as one model.
    Cells another process has claimed are waited for (at most ``wait_elsewhere`` seconds,
    default :data:`benchmark_core.engine.work.WAIT_ELSEWHERE_S`) and taken over if it dies;
    those still running elsewhere at the end are in ``failed`` as ``running elsewhere``.
    Ctrl-C ends the cells in flight as ``interrupted`` (partial rows kept in-process; they
    are run again next time) and stops the grid; every finished cell's file is on disk.
    A results folder that cannot be written (a full disk) raises ResultsError saying so, after
    every claim is given back.
    """
    if executor not in ("local", "ray"):
        raise UsageError(f"executor {executor!r}: choose local or ray.")
    ui = ui or SilentUI()
    report = GridReport(out_dir)
    start = time.monotonic()
    with contextlib.ExitStack() as stack:
        if pool is None and executor == "local":
            pool = start_pool(cells, device, jobs, replicas, timeout)
            if pool is not None:
                stack.enter_context(pool)
                stack.callback(lambda: report.workers_ready_s.extend(pool.startup_s))
        actions, report.problems = plan(cells, out_dir, force)
        out_dir.mkdir(parents=True, exist_ok=True)
        pending = []
        for cell, action in actions:
            if action == "done":
                report.counts["done earlier"] += 1
                ui.cell_finished(cell, "done earlier", None)
            else:
                pending.append(cell)
        grid = _Grid(out_dir, force, ui, report)
        work = Work(group_replicas(pending, replicas), grid.acquire, wait_elsewhere)
        try:
            _execute(grid, work, device, timeout, jobs, executor, address, len(pending), pool)
            grid.left_elsewhere(work)
        except KeyboardInterrupt:  # between cells, or the pool already recorded its cells
            report.interrupted = True
        finally:
            with deferred_signals():
                release_all()
    report.wall_time_s = time.monotonic() - start
    return report


def start_pool(
    cells: list[Cell], device: torch.device, jobs: int, replicas: int, timeout: float | None
) -> WorkerPool | None:
    """Worker processes for a local run, or None when the items run in this process: with
    ``-j 1`` and no time limit, or when the grid has a single item and no time limit (it
    then gets this process's threads, up to its task's ``max_threads``)."""
    items = len(group_replicas(cells, replicas))
    if items == 0 or (timeout is None and (jobs <= 1 or items <= 1)):
        return None
    roles = [(c.task, c.model, c.objective, *c.metrics) for c in cells]
    modules = sorted({part.cls.__module__ for parts in roles for part in parts})
    return WorkerPool(min(jobs, items), device, modules)


def _execute(
    grid: _Grid,
    work: Work,
    device: torch.device,
    timeout: float | None,
    jobs: int,
    executor: str,
    address: str | None,
    total: int,
    pool: WorkerPool | None,
) -> None:
    if executor == "ray":
        from benchmark_core.engine.ray_executor import run_ray

        run_ray(work, device, timeout, grid.finish, address=address, jobs=jobs)
    elif pool is not None:
        run_pool(work, pool, device, timeout, grid.finish)
    else:
        grid.run_here(work, device, total)


#: Statuses whose cell file this run wrote.
RECORDED = ("ok", "skipped", "error", "diverged", "timeout", "interrupted")
