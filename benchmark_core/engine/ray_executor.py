"""Ray: every work item is one Ray task, so a grid runs unchanged on a cluster.

``gbench run --executor ray`` connects to the cluster at ``--address`` (or ``RAY_ADDRESS``),
or starts a Ray instance on this machine when neither is given. Each item (a cell, or replica
cells that train together) is a task asking for one CPU, or one GPU on CUDA, where Ray's
``CUDA_VISIBLE_DEVICES`` makes the task's GPU ``cuda``. No more tasks are in flight than the
cluster can run at once, so no cell is claimed only to wait in Ray's queue. As in the local pool
(:mod:`benchmark_core.engine.pool`) this process writes every result as its task ends; a task whose
worker dies records its cells as ``error``, a task past its time limit is cancelled (its worker
killed) and its cells are ``timeout``, and Ctrl-C cancels every task in flight, records its
cells as ``interrupted`` and re-raises. Cells travel as pickled objects, so gbench and every
plugin in the grid must be installed, at the same versions, on every node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from benchmark_core.contract.errors import UsageError
from benchmark_core.engine.grid import Cell
from benchmark_core.engine.pool import KILL_GRACE_S, failure
from benchmark_core.engine.runner import Outcome, TaskCache, run_work
from benchmark_core.engine.work import Claimed, Work, deferred_signals
from benchmark_core.results.cell_claims import Claim

#: Tasks built in this worker process, reused by the items that Ray gives it later.
_worker_tasks: TaskCache | None = None

_WORKER_LOST = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "ActorDiedError")


def import_ray() -> Any:
    """Import Ray, or raise a UsageError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--executor ray needs Ray, which is not installed here: pip install 'gbench[ray]'."
        ) from None
    return ray


def _run_item(cells: list[Cell], device: str, timeout: float | None) -> list[Outcome]:
    """The body of a Ray task: run one work item in a Ray worker."""
    global _worker_tasks
    if _worker_tasks is None:
        _worker_tasks = TaskCache()
    return run_work(cells, torch.device(device), timeout=timeout, task_cache=_worker_tasks)


def connect(ray: Any, address: str | None) -> None:
    """Connect to the cluster at ``address`` or RAY_ADDRESS, or start a local Ray instance."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        cpus = os.cpu_count() or 1
        print(
            f"gbench: starting a local Ray instance with {cpus} CPUs "
            "(give --address or set RAY_ADDRESS to use a cluster)",
            file=sys.stderr,
            flush=True,
        )
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)
        return
    hint = "Check --address (or RAY_ADDRESS), or leave both out to run Ray on this machine."
    problem = _unreachable(address)  # Ray itself retries a wrong address for minutes
    if problem:
        raise UsageError(f"cannot reach the Ray cluster at {address!r}: {problem}. {hint}")
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        message = f"cannot connect to the Ray cluster at {address!r}: {exc} {hint}"
        raise UsageError(message) from None


def _unreachable(address: str) -> str | None:
    """Why nothing listens at a ``[ray://]host:port`` address, or None (also for ``auto``)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return None


def slots(ray: Any, device: torch.device, jobs: int) -> int:
    """How many tasks to keep in flight: ``jobs`` when > 1, else the cluster's CPUs or GPUs."""
    resources = ray.cluster_resources()
    if device.type == "cuda":
        gpus = int(resources.get("GPU", 0))
        if gpus < 1:
            raise UsageError(
                "--device cuda, but the Ray cluster has no GPUs: add GPU nodes or use --device cpu."
            )
        have = gpus
    else:
        have = int(resources.get("CPU", 1))
    return jobs if jobs > 1 else max(1, have)


def run_ray(
    work: Work,
    device: torch.device,
    timeout: float | None,
    finish: Callable[[Cell, Outcome, Claim], bool],
    address: str | None = None,
    jobs: int = 1,
) -> None:
    """Run work ``items`` as Ray tasks, with the contract of
    :func:`benchmark_core.engine.pool.run_pool`.

    Parameters
    ----------
    work
        The work items (each a list of cells that run together: one cell, or replicas), with
        the claims it takes as items start and the cells other processes hold.
    device
        Where cells run: ``cpu``, or CUDA (each task then gets one GPU of its node).
    timeout
        Seconds per cell, or None; an item is cancelled ``KILL_GRACE_S`` after ``timeout``
        times its number of cells, counted from when it was dispatched.
    finish
        Records one cell's outcome; returning False stops the grid.
    address
        The Ray cluster to use; None means RAY_ADDRESS, else a local Ray instance. When Ray is
        already initialised in this process, that connection is used as it is.
    jobs
        Tasks in flight at once when > 1; by default as many as the cluster has CPUs (GPUs on
        CUDA).

    Raises
    ------
    UsageError
        When Ray is not installed, the cluster cannot be reached or has no GPU for CUDA.
    KeyboardInterrupt
        Re-raised after the cells in flight are cancelled and recorded as ``interrupted``.
    """
    ray = import_ray()
    if not work.pending:  # every cell is done: no need to start or reach a cluster
        return
    owned = not ray.is_initialized()
    if owned:
        sigterm = signal.getsignal(signal.SIGTERM)
        connect(ray, address)
        if callable(sigterm):  # Ray's core replaces the handler that makes SIGTERM a Ctrl-C
            signal.signal(signal.SIGTERM, sigterm)
    try:
        _dispatch(ray, work, device, timeout, finish, slots(ray, device, jobs))
    finally:
        if owned:
            ray.shutdown()


def _dispatch(
    ray: Any,
    work: Work,
    device: torch.device,
    timeout: float | None,
    finish: Callable[[Cell, Outcome, Claim], bool],
    width: int,
) -> None:
    cuda = device.type == "cuda"
    remote = ray.remote(_run_item).options(num_cpus=1, num_gpus=int(cuda), max_retries=0)
    target = "cuda" if cuda else str(device)  # the task's own GPU, whatever its index on the node
    device = torch.device(target)  # as the rows of the cells that ran say
    running: dict[Any, tuple[Claimed, float]] = {}
    try:
        while True:
            while len(running) < width and (claimed := work.take()):
                ref = remote.remote([cell for cell, _ in claimed], target, timeout)
                running[ref] = (claimed, time.monotonic())
            if not running:
                if not work.pending:
                    return
                time.sleep(0.5)  # only cells held by other processes are left: look again soon
                continue
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            ended = [(ref, _outcomes(ray, ref, running[ref][0], device)) for ref in ready]
            ended += _overdue(ray, running, set(ready), device, timeout)
            going = True
            for ref, outcomes in ended:
                claimed, _ = running.pop(ref)
                pairs = zip(claimed, outcomes, strict=True)
                going = all([finish(cell, out, held) for (cell, held), out in pairs]) and going
            if not going:
                _cancel_all(ray, running, device, finish, "stopped with the grid")
                return
    except KeyboardInterrupt:
        with deferred_signals():  # a second Ctrl-C must not lose a record or leak a claim
            _cancel_all(ray, running, device, finish, "stopped by the user (Ctrl-C or SIGTERM)")
        raise
    except BaseException:  # a results folder that stopped taking writes: stop the cluster's work
        for ref in running:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise


def _outcomes(ray: Any, ref: Any, claimed: Claimed, device: torch.device) -> list[Outcome]:
    """A finished task's outcomes; a task that failed as a whole fails each of its cells."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        kind = type(exc).__name__
        if kind in _WORKER_LOST:
            why = f"Ray worker died while running the cell ({kind}): {exc}"
        else:
            why = f"Ray task failed ({kind}): {exc}"
            if "ModuleNotFoundError" in why:
                why += "\nAre gbench and this plugin installed on every node of the cluster?"
        return [failure(cell, device, "error", why) for cell, _ in claimed]


def _overdue(
    ray: Any,
    running: dict[Any, tuple[Claimed, float]],
    ready: set[Any],
    device: torch.device,
    timeout: float | None,
) -> list[tuple[Any, list[Outcome]]]:
    """Cancel the tasks past their time limit (killing their workers); their cells time out."""
    if timeout is None:
        return []
    ended, now = [], time.monotonic()
    for ref, (claimed, started) in running.items():
        if ref in ready:
            continue
        limit = timeout * len(claimed) + KILL_GRACE_S
        if now - started > limit:
            ray.cancel(ref, force=True)
            why = f"cancelled after {limit:g} s (time limit {timeout:g} s per cell)"
            ended.append((ref, [failure(cell, device, "timeout", why) for cell, _ in claimed]))
    return ended


def _cancel_all(
    ray: Any,
    running: dict[Any, tuple[Claimed, float]],
    device: torch.device,
    finish: Callable[[Cell, Outcome, Claim], bool],
    why: str,
) -> None:
    """Cancel every task in flight and record its cells as ``interrupted``."""
    for ref in running:
        with contextlib.suppress(Exception):  # a cluster going down with us cancels them anyway
            ray.cancel(ref, force=True)
    for claimed, _ in running.values():
        for cell, held in claimed:
            finish(cell, failure(cell, device, "interrupted", why), held)
    running.clear()
