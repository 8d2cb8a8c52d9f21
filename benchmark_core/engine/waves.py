"""Run a grid with warm starts in waves: sources first, then the cells that start from them.

Each wave is an ordinary `run_grid` call, so every executor (in-process, ``-j N``, Ray) and
replica batching work unchanged, and a source has finished, with its checkpoint written,
before any cell that needs it is sent. Before a wave runs, each of its warm-started cells
that is not done gets its source's checkpoint attached (read and checked here, in the
process that owns the results folder); a cell whose source failed, or whose checkpoint cannot
be read, is recorded as skipped with the reason, and runs when the grid is run again.

A finished source whose checkpoint is missing or corrupt, and which a cell still needs, is
reported by file name and run again (only then: a source whose dependents are all done is
left alone, so a rerun trains nothing twice that had finished).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from benchmark_core.contract.errors import ResultsError
from benchmark_core.engine.executors import GridReport, is_done, run_grid, start_pool
from benchmark_core.engine.grid import Cell
from benchmark_core.engine.warm import check_warm_starts, depth
from benchmark_core.results import checkpoints
from benchmark_core.results.store import read_file


def source_checkpoint(out_dir: Path, cell_id: str) -> tuple[str, bytes]:
    """A finished cell's checkpoint as (file name, bytes), checked against its result file.

    Raises ResultsError (a `checkpoints.CheckpointError` for the checkpoint itself) naming the
    file when the cell has no ``ok`` result or its checkpoint is missing, altered or unreadable.
    """
    path = out_dir / f"{cell_id}.parquet"
    if not path.exists():
        raise ResultsError(f"cell {cell_id} has no result yet ({path})")
    frame, meta = read_file(path)
    status = str(frame["status"].iloc[0]) if len(frame) else "empty"
    if status != "ok":
        raise ResultsError(f"cell {cell_id} ended {status} ({path})")
    path, data = checkpoints.read_bytes(out_dir, meta.get("checkpoint"), cell_id)
    checkpoints.unpack(data, str(path))  # refuse a file that is not a checkpoint here, by name
    return str(path), data


def _attach(wave: list[Cell], out_dir: Path, force: bool) -> list[Cell]:
    """Give each warm-started cell that will run its source's checkpoint, or a skip reason."""
    cache: dict[str, tuple[str, bytes] | str] = {}
    out = []
    for cell in wave:
        if cell.init is None or cell.skip_reason is not None:
            out.append(cell)
            continue
        if not force and is_done(cell, out_dir)[0]:
            out.append(cell)  # run_grid will count it done; it needs no checkpoint
            continue
        source = cell.init.cell_id
        if source not in cache:
            try:
                cache[source] = source_checkpoint(out_dir, source)
            except ResultsError as exc:
                cache[source] = str(exc)
        got = cache[source]
        if isinstance(got, str):
            why = f"its warm-start source cannot be used: {got}; run the grid again to retry"
            out.append(replace(cell, skip_reason=why))
        else:
            out.append(replace(cell, init_state=got))
    return out


def _stale_sources(
    wave: list[Cell], later: list[Cell], out_dir: Path, force: bool
) -> tuple[set[str], list[str]]:
    """Finished cells of ``wave`` that a pending later cell needs, but whose checkpoint is bad."""
    if force:
        return set(), []
    needed = {c.init.cell_id for c in later if c.init is not None and not is_done(c, out_dir)[0]}
    redo, problems = set(), []
    for cell in wave:
        if cell.cell_id not in needed or not is_done(cell, out_dir)[0]:
            continue
        try:
            source_checkpoint(out_dir, cell.cell_id)
        except ResultsError as exc:
            redo.add(cell.cell_id)
            problems.append(f"{exc}; cell {cell.cell_id} ({cell.describe()}) is run again")
    return redo, problems


def _merge(total: GridReport, part: GridReport) -> None:
    total.counts.update(part.counts)
    total.wall_time_s += part.wall_time_s
    total.interrupted |= part.interrupted
    total.failed += part.failed
    total.problems += [p for p in part.problems if p not in total.problems]


def run_waves(
    cells: list[Cell], out_dir: Path, device: torch.device, *, force: bool = False, **options: Any
) -> GridReport:
    """`run_grid` over the cells in order of warm-start depth; the same options and report.

    Without warm starts this is exactly one `run_grid` call.
    """
    check_warm_starts(cells)
    depths = [depth(cell) for cell in cells]
    if not any(depths):
        return run_grid(cells, out_dir, device, force=force, **options)
    pool = None
    if options.get("executor", "local") == "local":  # one pool for every wave
        pool = start_pool(
            cells,
            device,
            options.get("jobs", 1),
            options.get("replicas", 1),
            options.get("timeout"),
        )
    if pool is None:
        return _run_waves(cells, depths, out_dir, device, force, options)
    with pool:
        total = _run_waves(cells, depths, out_dir, device, force, {**options, "pool": pool})
    total.workers_ready_s = pool.startup_s
    return total


def _run_waves(
    cells: list[Cell],
    depths: list[int],
    out_dir: Path,
    device: torch.device,
    force: bool,
    options: dict[str, Any],
) -> GridReport:
    pairs = list(zip(cells, depths, strict=True))
    waves = [[c for c, d in pairs if d == k] for k in range(max(depths) + 1)]
    total = GridReport(out_dir)
    for k, wave in enumerate(waves):
        later = [c for w in waves[k + 1 :] for c in w]
        wave = _attach(wave, out_dir, force) if k else wave
        redo, problems = _stale_sources(wave, later, out_dir, force)
        total.problems += problems
        parts = [
            ([c for c in wave if c.cell_id not in redo], force),
            ([c for c in wave if c.cell_id in redo], True),
        ]
        for part, forced in parts:
            if part:
                _merge(total, run_grid(part, out_dir, device, force=forced, **options))
            if total.interrupted:
                return total
    return total
