"""A local pool of worker processes (``gbench run -j N``), with hard per-cell time limits.

Each worker is a spawned process that runs one work item at a time (a cell, or replica cells
that train together) and sends back the outcomes; the parent writes every result, so workers
never touch the results folder. A worker that dies (a segfault, the OOM killer) has its cells
recorded as ``error``; a work item that runs past its time limit has its worker killed, even
inside a step that hangs, and its cells are recorded as ``timeout``. Either way a fresh worker
takes the dead one's place and the grid goes on.

Workers die with the process that started them, however it ends (``prctl(PR_SET_PDEATHSIG)``
on Linux; elsewhere a thread that sees the parent's end of a pipe close), so a SIGKILLed
``gbench run`` leaves nothing computing. They start with Ctrl-C ignored: the parent alone
handles it, and records the cells in flight.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from typing import Any

import torch

from benchmark_core.contract.errors import GbenchError
from benchmark_core.engine.grid import Cell
from benchmark_core.engine.machine import thread_environment, worker_threads
from benchmark_core.engine.runner import Outcome, TaskCache, run_work, skipped_outcome
from benchmark_core.engine.work import Claimed, Work, deferred_signals
from benchmark_core.results.cell_claims import Claim

__all__ = ["KILL_GRACE_S", "Claimed", "WorkerPool", "failure", "run_pool", "worker_devices"]

#: Seconds a worker gets beyond the cell's own (cooperative) time limit before it is killed.
KILL_GRACE_S = 5.0
#: Workers that may die while starting up before the grid gives up.
START_FAILURES = 3
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, lifeline: Connection | None = None) -> None:
    """End this process when ``parent`` ends: by the kernel on Linux, else by a watcher thread
    that sees ``lifeline`` (the read end of a pipe whose write end only the parent holds) close.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent went before the line above took effect
            os._exit(1)
    if lifeline is not None:
        threading.Thread(target=_watch, args=(lifeline,), name="lifeline", daemon=True).start()


def _watch(lifeline: Connection) -> None:
    with contextlib.suppress(EOFError, OSError):
        while True:
            lifeline.recv()
    os._exit(1)  # the parent is gone: its results can no longer be written


def _worker_main(
    conn: Connection,
    device: str,
    threads: int,
    parent: int,
    lifeline: Connection,
    modules: tuple[str, ...],
) -> None:
    die_with_parent(parent, lifeline)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for everyone
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # only settable before any inter-op work
        torch.set_num_interop_threads(1)
    for module in modules:  # the grid's components, imported before "ready", not in a cell
        with contextlib.suppress(Exception):  # a module that fails says so in its cell
            importlib.import_module(module)
    cache = TaskCache()
    conn.send("ready")  # start-up (importing torch and the plugins) is not charged to a cell
    while True:
        message = conn.recv()
        if message is None:
            return
        cells, timeout = message
        conn.send(run_work(cells, torch.device(device), timeout=timeout, task_cache=cache))


@contextlib.contextmanager
def _sigint_ignored_by_child() -> Iterator[None]:
    """Spawn a worker with Ctrl-C ignored: an ignored signal stays ignored across exec, so a
    Ctrl-C while it imports torch cannot print a traceback there. Here it is blocked, not lost:
    Linux keeps a blocked signal pending even while ignored, and delivers it after."""
    if threading.current_thread() is not threading.main_thread() or os.name != "posix":
        yield
        return
    resource_tracker.ensure_running()  # it unblocks Ctrl-C when it starts: start it before
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if handler is None else handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


class _Worker:
    def __init__(self, ctx: Any, device: str, threads: int, modules: tuple[str, ...]) -> None:
        self.conn, child = ctx.Pipe()
        lifeline, self.lifeline = ctx.Pipe(duplex=False)
        args = (child, device, threads, os.getpid(), lifeline, modules)
        self.proc = ctx.Process(target=_worker_main, args=args, daemon=True)
        self.spawned = time.monotonic()
        with _sigint_ignored_by_child(), thread_environment(threads):
            self.proc.start()
        child.close()
        lifeline.close()
        self.item: Claimed | None = None
        self.started = 0.0
        self.ready = False
        self.startup_s: float | None = None

    def poll_ready(self) -> bool:
        """Whether the worker has started up (reading its "ready" message if it has)."""
        if not self.ready and self.conn.poll():
            with contextlib.suppress(EOFError, OSError):
                self.ready = self.conn.recv() == "ready"
                self.startup_s = time.monotonic() - self.spawned
        return self.ready

    def give(self, item: Claimed, timeout: float | None) -> None:
        self.item, self.started = item, time.monotonic()
        with contextlib.suppress(OSError):  # a worker that died idle: _collect records it
            self.conn.send(([cell for cell, _ in item], timeout))

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        for conn in (self.conn, self.lifeline):
            conn.close()


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


class WorkerPool:
    """``size`` worker processes for a whole run, replaced as they die or are killed.

    They start when the pool is made, so that they import torch and the ``modules`` of the
    grid's components while the caller plans the grid; a run with warm starts keeps one pool
    for all its waves. Each
    worker gets ``cores // size`` intra-op threads (at least one), and the same number for
    the OpenMP and BLAS pools of the libraries it loads (`machine.thread_environment`).
    ``startup_s`` holds each worker's seconds from start to ready.
    """

    def __init__(self, size: int, device: torch.device, modules: Sequence[str] = ()) -> None:
        self.ctx = mp.get_context("spawn")
        self.modules = tuple(modules)
        self.size = max(1, size)
        self.threads = worker_threads(self.size)
        self.devices = worker_devices(device, self.size)
        self.workers = [self.spawn(i) for i in range(self.size)]
        self.start_failures = 0
        self.retired: list[float] = []

    def spawn(self, i: int) -> _Worker:
        return _Worker(self.ctx, self.devices[i], self.threads, self.modules)

    @property
    def startup_s(self) -> list[float]:
        """Seconds from start to ready of every worker that got ready, replaced ones too."""
        ready = [w.startup_s for w in self.workers if w.startup_s is not None]
        return self.retired + ready

    def replace(self, i: int) -> None:
        old = self.workers[i]
        if old.startup_s is not None:
            self.retired.append(old.startup_s)
        old.stop()
        self.workers[i] = self.spawn(i)

    def restart_failed(self) -> None:
        """Replace the workers that died starting up; give up after a few."""
        for i, worker in enumerate(self.workers):
            if worker.poll_ready() or worker.proc.is_alive():
                continue
            self.start_failures += 1
            if self.start_failures > START_FAILURES:
                raise GbenchError(
                    f"gbench worker processes keep dying while they start up (exit code "
                    f"{worker.proc.exitcode}, {self.start_failures} times); their error is "
                    "printed above. Run with -j 1 and no --timeout to see it in this process."
                )
            self.replace(i)

    def close(self) -> None:
        """Stop every worker (those idle are asked to finish first)."""
        with deferred_signals():
            for worker in self.workers:
                if worker.proc.is_alive() and worker.item is None:
                    with contextlib.suppress(OSError):
                        worker.conn.send(None)
            for worker in self.workers:
                worker.proc.join(timeout=2)
                worker.stop()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_pool(
    work: Work,
    pool: WorkerPool,
    device: torch.device,
    timeout: float | None,
    finish: Callable[[Cell, Outcome, Claim], bool],
) -> None:
    """Run the ``work`` on the ``pool``'s workers; ``finish`` records one cell's outcome
    (returning False stops the grid). The pool stays up for the caller's next grid.
    """
    if not work.pending:
        return
    try:
        while True:
            pool.restart_failed()
            for worker in pool.workers:
                if worker.ready and worker.item is None and (claimed := work.take()):
                    worker.give(claimed, timeout)
            busy = [w for w in pool.workers if w.item is not None]
            if not busy and not work.pending:
                return
            waiting = [w for w in pool.workers if w.item is not None or not w.ready]
            if waiting:
                wait([w.conn for w in waiting] + [w.proc.sentinel for w in waiting], 0.5)
            else:
                time.sleep(0.5)  # only cells held by other processes are left: look again soon
            if not _record_ended(pool, device, timeout, finish):
                return
    except KeyboardInterrupt:
        with deferred_signals():  # a second Ctrl-C must not lose a record or leak a claim
            why = "stopped by the user (Ctrl-C or SIGTERM)"
            for worker in pool.workers:
                if worker.item is not None:
                    worker.stop()
                    for cell, held in worker.item:
                        finish(cell, failure(cell, device, "interrupted", why), held)
                    worker.item = None
        raise


def _record_ended(
    pool: WorkerPool,
    device: torch.device,
    timeout: float | None,
    finish: Callable[[Cell, Outcome, Claim], bool],
) -> bool:
    """Record the items that ended; False when ``finish`` says to stop the grid."""
    for i, worker in enumerate(pool.workers):
        if worker.item is None:
            continue
        outcomes = _collect(worker, device, timeout)
        if outcomes is None:
            continue
        item, worker.item = worker.item, None
        if not worker.proc.is_alive():  # died, or killed at its time limit
            pool.replace(i)
        pairs = zip(item, outcomes, strict=True)
        if not all([finish(cell, out, held) for (cell, held), out in pairs]):
            return False
    return True


def _collect(worker: _Worker, device: torch.device, timeout: float | None) -> list[Outcome] | None:
    """The outcomes of the worker's item if it has ended (or died, or ran out of time)."""
    assert worker.item is not None
    cells = [cell for cell, _ in worker.item]
    if worker.conn.poll():
        try:
            return worker.conn.recv()
        except (EOFError, OSError):
            pass  # it died: said below
        except Exception as exc:
            why = f"could not read the worker's result ({type(exc).__name__}: {exc})"
            return [failure(cell, device, "error", why) for cell in cells]
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
