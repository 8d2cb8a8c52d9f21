"""A local pool of worker processes (``gbench run -j N``), with hard per-cell time limits.

Each worker is a spawned process that runs one cell at a time and sends back its outcome;
the parent writes every result, so workers never touch the results folder. A worker that
dies (a segfault, the OOM killer) has its cell recorded as ``error``; a cell that runs past
its time limit has its worker killed, even inside a step that hangs, and is recorded as
``timeout``. Either way a fresh worker takes the dead one's place and the grid goes on.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import torch

from .grid import Cell
from .runner import Outcome, TaskCache, run_cell, skipped_outcome

#: Seconds a worker gets beyond the cell's own (cooperative) time limit before it is killed.
KILL_GRACE_S = 5.0


def _worker_main(conn: Connection, device: str, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for everyone
    torch.set_num_threads(threads)
    cache = TaskCache()
    while True:
        message = conn.recv()
        if message is None:
            return
        cell, timeout = message
        conn.send(run_cell(cell, torch.device(device), timeout=timeout, task_cache=cache))


class _Worker:
    def __init__(self, ctx: Any, device: str, threads: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, device, threads), daemon=True)
        self.proc.start()
        child.close()
        self.cell: Cell | None = None
        self.held: Path | None = None
        self.started = 0.0

    def give(self, cell: Cell, held: Path, timeout: float | None) -> None:
        self.cell, self.held, self.started = cell, held, time.monotonic()
        self.conn.send((cell, timeout))

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)


def _failure(cell: Cell, device: torch.device, status: str, message: str) -> Outcome:
    outcome = skipped_outcome(cell, device)  # one row naming the cell, then relabelled
    for row in outcome.rows:
        row.update(status=status, error=message)
    outcome.status, outcome.error = status, message
    return outcome


def worker_devices(device: torch.device, jobs: int) -> list[str]:
    """One device per worker: CUDA GPUs round-robin when no index is given."""
    if device.type == "cuda" and device.index is None and torch.cuda.device_count() > 1:
        return [f"cuda:{i % torch.cuda.device_count()}" for i in range(jobs)]
    return [str(device)] * jobs


def run_pool(
    cells: list[Cell],
    jobs: int,
    device: torch.device,
    timeout: float | None,
    acquire: Callable[[Cell], Path | None],
    finish: Callable[[Cell, Outcome, Path], bool],
) -> None:
    """Run ``cells`` on ``jobs`` workers; ``acquire`` claims a cell (None: skip it) and
    ``finish`` records an outcome (returning False stops the grid)."""
    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    devices = worker_devices(device, jobs)
    queue = deque(cells)
    workers = [_Worker(ctx, devices[i], threads) for i in range(min(jobs, len(cells)))]
    limit = None if timeout is None else timeout + KILL_GRACE_S
    try:
        while True:
            for worker in workers:
                while worker.cell is None and queue:
                    cell = queue.popleft()
                    held = acquire(cell)
                    if held is not None:
                        worker.give(cell, held, timeout)
            busy = [w for w in workers if w.cell is not None]
            if not busy:
                return
            wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=0.5)
            for i, worker in enumerate(workers):
                if worker.cell is None:
                    continue
                outcome, kill = None, False
                if worker.conn.poll():
                    try:
                        outcome = worker.conn.recv()
                    except (EOFError, OSError):
                        outcome = None
                if outcome is None and not worker.proc.is_alive():
                    outcome = _failure(
                        worker.cell,
                        device,
                        "error",
                        f"worker process died (exit code {worker.proc.exitcode})",
                    )
                elif outcome is None and limit and time.monotonic() - worker.started > limit:
                    outcome, kill = (
                        _failure(
                            worker.cell,
                            device,
                            "timeout",
                            f"killed after {limit:g} s (time limit {timeout:g} s)",
                        ),
                        True,
                    )
                if outcome is None:
                    continue
                cell, held = worker.cell, worker.held
                worker.cell = None
                if kill or not worker.proc.is_alive():
                    worker.stop()
                    workers[i] = _Worker(ctx, devices[i], threads)
                if not finish(cell, outcome, held):
                    return
    except KeyboardInterrupt:
        for worker in workers:
            if worker.cell is not None:
                worker.stop()
                finish(
                    worker.cell,
                    _failure(
                        worker.cell,
                        device,
                        "interrupted",
                        "stopped by the user (Ctrl-C or SIGTERM)",
                    ),
                    worker.held,
                )
        raise
    finally:
        for worker in workers:
            if worker.proc.is_alive() and worker.cell is None:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
            worker.proc.join(timeout=2)
            worker.stop()
