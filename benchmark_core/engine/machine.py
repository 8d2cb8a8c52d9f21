"""How much of this machine a grid may use: cores (CPU affinity and cgroup quota), and the
default number of work items run at once.

``gbench run`` without ``-j`` runs as many items at once as there are usable cores (on CUDA,
one per GPU), never more than the grid has items; each worker then gets ``cores // jobs``
threads, within its task's ``max_threads``. Measured on a 2-core machine (results/performance.md):
two one-thread workers beat one two-thread item for every built-in task, so items come first
and threads only fill cores that items leave idle.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch

#: Environment variables that size the thread pools of the numerical libraries a worker loads
#: (OpenMP for torch, OpenBLAS and MKL for numpy and scipy). Set before a worker starts, so
#: that no library sizes its pool for the whole machine and spins beside the other workers.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cgroup_cpus(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup, in cores (None when there is none).

    Reads cgroup v2's ``cpu.max`` ("max 100000" or "<quota> <period>"), else cgroup v1's
    ``cpu/cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (quota -1 means none).
    """
    with contextlib.suppress(OSError, ValueError):
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    return None


def usable_cores(root: Path = Path("/sys/fs/cgroup")) -> int:
    """Cores this process may run on: its CPU affinity, within its cgroup's quota (rounded up,
    a quota of 1.5 cores lets two threads make progress), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpus(root)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def default_jobs(device: torch.device, items: int) -> int:
    """Work items to run at once when ``-j`` is not given: one per usable core on CPU, one
    per GPU on CUDA (``cuda`` without an index; else that one GPU), one on MPS; never more
    than ``items``."""
    if device.type == "cuda":
        jobs = torch.cuda.device_count() if device.index is None else 1
    elif device.type == "mps":
        jobs = 1
    else:
        jobs = usable_cores()
    return max(1, min(jobs, items))


def worker_threads(jobs: int) -> int:
    """Intra-op threads for each of ``jobs`` workers sharing the usable cores."""
    return max(1, usable_cores() // max(1, jobs))


@contextlib.contextmanager
def thread_environment(threads: int) -> Iterator[None]:
    """Set :data:`THREAD_VARIABLES` to ``threads`` while worker processes are started (a
    spawned process reads its environment before any library sizes its pool)."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
