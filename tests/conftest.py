"""Fixtures and hooks only: run the CLI in-process, skip GPU tests without CUDA.

Helpers that test modules import (``registry_with``, ``grid``, ``run_gbench``, ``REPO``) live
in ``tests/helpers.py``; a test module never imports from this file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from benchmark_core.cli.main import main
from benchmark_core.registry import reset_registry

# gbench's own pytest plugin (installed as a pytest11 entry point; named here too so that the
# tests also run from a source tree that was never installed).
pytest_plugins = ["benchmark_core.pytest_plugin"]

# Tests run cells one at a time in-process unless they ask for workers (-j N): the default,
# one worker per core, is tested on its own (tests/test_machine.py), and in-process runs see
# the test's own plugin registrations. Subprocesses that tests start inherit it.
os.environ.setdefault("GBENCH_JOBS", "1")


@pytest.fixture(autouse=True, scope="session")
def _one_intra_op_thread():
    """Run torch on one intra-op thread, as gbench runs every built-in task's cells.

    (``Task.max_threads`` = 1.) On a shared 2-core machine a second thread turned small
    workloads 10-100x slower (thread hand-offs under load: one text-task test took 9 s on one
    thread and 104 s on two). Cells that tests start in other processes cap their own threads.
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):  # numpy's products too (text kernels)
        yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``gpu`` where torch sees no CUDA device."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (marked gpu); torch sees no CUDA device")
    for item in gpu_items:
        item.add_marker(skip)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def gbench(capsys):
    """Run ``gbench ARGS`` in this process; return its exit code and output."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    reset_registry()
    yield invoke
    reset_registry()
