"""Where cells are run from: a work item (one cell, or replicas trained together) in, one
outcome per cell out, whatever happened; the device and thread settings around it.

The training itself is :mod:`benchmark_core.engine.loop`; the rows and statuses of each cell
are :mod:`benchmark_core.engine.record`.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator

import torch

from benchmark_core.contract.errors import UsageError
from benchmark_core.engine.grid import Cell
from benchmark_core.engine.loop import TaskCache, seed_everything, train
from benchmark_core.engine.record import (
    METRIC_ERROR,
    CellRecord,
    CellTimeout,
    Outcome,
    ProgressFn,
    skipped_outcome,
)

__all__ = [
    "METRIC_ERROR",
    "CellTimeout",
    "Outcome",
    "ProgressFn",
    "TaskCache",
    "enable_determinism",
    "resolve_device",
    "run_cell",
    "run_work",
    "seed_everything",
    "skipped_outcome",
    "task_threads",
]


def resolve_device(spec: str, *, here: bool = True) -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a device, refusing one that is not there.

    With ``here=False`` (cells run elsewhere, on a Ray cluster) CUDA is not looked for on this
    machine: the executor checks that the cluster has GPUs.
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(
            f"--device {spec!r} is not a device: use auto, cpu, cuda, cuda:N or mps."
        ) from None
    if device.type == "cuda" and here:
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: CUDA is not available here; use --device cpu or auto.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here."
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: MPS is not available here; use --device cpu or auto.")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {spec!r}: use auto, cpu, cuda, cuda:N or mps.")
    return device


def enable_determinism() -> None:
    """Make CUDA runs repeatable: deterministic kernels only (an error where none exists)."""
    import os

    # cuBLAS needs a fixed workspace to be deterministic; it must be set before CUDA starts.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


@contextlib.contextmanager
def task_threads(cell: Cell) -> Iterator[None]:
    """Cap torch's intra-op threads at the task's ``max_threads`` while the cell runs, and
    numpy's and scipy's BLAS threads at the same number.

    The BLAS cap matters as much as torch's: an OpenBLAS pool sized for the whole machine
    spins while it waits, and beside another process (or another worker) a text epoch whose
    products go through numpy took 4x the CPU time uncapped.
    """
    from threadpoolctl import threadpool_limits

    threads, limit = torch.get_num_threads(), cell.task.cls.max_threads
    if limit is not None:
        torch.set_num_threads(max(1, min(threads, limit)))
    try:
        with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)


def run_work(
    cells: list[Cell],
    device: torch.device,
    *,
    timeout: float | None = None,
    task_cache: TaskCache | None = None,
    progress: ProgressFn | None = None,
) -> list[Outcome]:
    """Run one work item: a single cell, or replicas that train together as one model.

    Returns one outcome per cell, in order; never raises except on Ctrl-C, which it records.
    A NaN or infinite loss ends that cell as ``diverged`` (its replicas go on); an exception
    ends every cell still training as ``error`` with its traceback, the time limit as
    ``timeout``, and Ctrl-C as ``interrupted`` (the caller stops the grid when it sees that
    status). A metric that raises is recorded and the cell trains on, ending ``metric_error``.
    A batch's time limit is ``timeout`` per cell, and each cell's ``wall_time_s`` is its
    share of the batch's, so that the wall times of a grid's cells add up to what it cost.
    """
    if len(cells) == 1 and cells[0].skip_reason is not None:
        return [skipped_outcome(cells[0], device)]
    limit = None if timeout is None else timeout * len(cells)
    runs = [CellRecord(cell, device, limit) for cell in cells]
    done: dict[int, Outcome] = {}
    try:
        with task_threads(cells[0]):
            train(cells, runs, done, device, task_cache or TaskCache(), progress)
        status, error = "ok", None
    except CellTimeout as exc:
        status, error = "timeout", str(exc)
    except KeyboardInterrupt:
        status, error = "interrupted", "stopped by the user (Ctrl-C or SIGTERM)"
    except Exception:
        status, error = "error", traceback.format_exc()
    outcomes = [done.get(r) or run.finish(status, error) for r, run in enumerate(runs)]
    if len(cells) > 1:
        ids = [cell.cell_id for cell in cells]
        for outcome in outcomes:
            outcome.wall_time_s /= len(cells)
            for row in outcome.rows:
                row["wall_time_s"] = outcome.wall_time_s
            outcome.replicas = ids
    return outcomes


def run_cell(
    cell: Cell,
    device: torch.device,
    *,
    timeout: float | None = None,
    task_cache: TaskCache | None = None,
    progress: ProgressFn | None = None,
) -> Outcome:
    """Run one cell alone and return its outcome (see `run_work`)."""
    [outcome] = run_work([cell], device, timeout=timeout, task_cache=task_cache, progress=progress)
    return outcome
