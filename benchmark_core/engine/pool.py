"""A local pool of worker processes (``gbench run -j N``), with hard per-cell time limits.

Each worker is a spawned process that runs one work item at a time (a cell, or replica cells
that train together) and sends back the outcomes; the parent writes every result, so workers
never touch the results folder. A worker that dies (a segfault, the OOM killer) has its cells
recorded as ``error``; a work item that runs past its time limit has its worker killed, even
inside a step that hangs, and its cells are recorded as ``timeout``. Either way a fresh worker
takes the dead one's place and the grid goes on.
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

from benchmark_core.engine.grid import Cell
from benchmark_core.engine.runner import Outcome, TaskCache, run_work, skipped_outcome

#: A claimed work item: each cell with the claim file that reserves it.
Claimed = list[tuple[Cell, Path]]

#: Seconds a worker gets beyond the cell's own (cooperative) time limit before it is killed.
KILL_GRACE_S = 5.0


def _worker_main(conn: Connection, device: str, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for everyone
    torch.set_num_threads(threads)
    cache = TaskCache()
    conn.send("ready")  # start-up (importing torch and the plugins) is not charged to a cell
    while True:
        message = conn.recv()
        if message is None:
            return
        cells, timeout = message
        conn.send(run_work(cells, torch.device(device), timeout=timeout, task_cache=cache))


class _Worker:
    def __init__(self, ctx: Any, device: str, threads: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, device, threads), daemon=True)
        self.proc.start()
        child.close()
        self.item: Claimed | None = None
        self.started = 0.0
        self.ready = False

    def poll_ready(self) -> bool:
        """Whether the worker has started up (reading its "ready" message if it has)."""
        if not self.ready and self.conn.poll():
            with contextlib.suppress(EOFError, OSError):
                self.ready = self.conn.recv() == "ready"
        return self.ready

    def give(self, item: Claimed, timeout: float | None) -> None:
        self.item, self.started = item, time.monotonic()
        self.conn.send(([cell for cell, _ in item], timeout))

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)


def failure(cell: Cell, device: torch.device, status: str, message: str) -> Outcome:
    """The outcome of a cell whose run was lost (its worker died, was killed or stopped)."""
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
    items: list[list[Cell]],
    jobs: int,
    device: torch.device,
    timeout: float | None,
    acquire: Callable[[list[Cell]], Claimed],
    finish: Callable[[Cell, Outcome, Path], bool],
) -> None:
    """Run work ``items`` on ``jobs`` workers; ``acquire`` claims an item's cells (those it
    returns are run) and ``finish`` records one cell's outcome (returning False stops the grid).
    """
    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    devices = worker_devices(device, jobs)
    queue = deque(items)
    workers = [_Worker(ctx, devices[i], threads) for i in range(min(jobs, len(items)))]
    start_failures = 0
    try:
        while True:
            for i, worker in enumerate(workers):
                if not worker.poll_ready() and not worker.proc.is_alive():
                    start_failures += 1
                    if start_failures > 3:
                        raise RuntimeError(
                            "gbench worker processes die while starting up (exit code "
                            f"{worker.proc.exitcode}); run with -j 1 and no --timeout to see why"
                        )
                    workers[i] = _Worker(ctx, devices[i], threads)
                    continue
                while worker.ready and worker.item is None and queue:
                    claimed = acquire(queue.popleft())
                    if claimed:
                        worker.give(claimed, timeout)
            busy = [w for w in workers if w.item is not None]
            if not busy and not queue:
                return
            waiting = [w for w in workers if w.item is not None or not w.ready]
            wait([w.conn for w in waiting] + [w.proc.sentinel for w in waiting], timeout=0.5)
            for i, worker in enumerate(workers):
                if worker.item is None:
                    continue
                outcomes = _collect(worker, device, timeout)
                if outcomes is None:
                    continue
                item, worker.item = worker.item, None
                if not worker.proc.is_alive():  # died, or killed at its time limit
                    worker.stop()
                    workers[i] = _Worker(ctx, devices[i], threads)
                pairs = zip(item, outcomes, strict=True)
                going = [finish(cell, out, held) for (cell, held), out in pairs]
                if not all(going):
                    return
    except KeyboardInterrupt:
        for worker in workers:
            if worker.item is not None:
                worker.stop()
                for cell, held in worker.item:
                    why = "stopped by the user (Ctrl-C or SIGTERM)"
                    finish(cell, failure(cell, device, "interrupted", why), held)
        raise
    finally:
        for worker in workers:
            if worker.proc.is_alive() and worker.item is None:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
            worker.proc.join(timeout=2)
            worker.stop()


def _collect(worker: _Worker, device: torch.device, timeout: float | None) -> list[Outcome] | None:
    """The outcomes of the worker's item if it has ended (or died, or ran out of time)."""
    assert worker.item is not None
    cells = [cell for cell, _ in worker.item]
    if worker.conn.poll():
        with contextlib.suppress(EOFError, OSError):
            return worker.conn.recv()
    if not worker.proc.is_alive():
        why = f"worker process died (exit code {worker.proc.exitcode})"
        return [failure(cell, device, "error", why) for cell in cells]
    if timeout is not None:
        limit = timeout * len(cells) + KILL_GRACE_S
        if time.monotonic() - worker.started > limit:
            worker.stop()
            why = f"killed after {limit:g} s (time limit {timeout:g} s per cell)"
            return [failure(cell, device, "timeout", why) for cell in cells]
    return None
