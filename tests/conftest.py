"""Fixtures and hooks only: run the CLI in-process, skip GPU tests without CUDA.

Helpers that test modules import (``registry_with``, ``grid``, ``run_gbench``, ``REPO``) live
in ``tests/helpers.py``; a test module never imports from this file.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from benchmark_core.cli.main import main
from benchmark_core.registry import reset_registry

# gbench's own pytest plugin (installed as a pytest11 entry point; named here too so that the
# tests also run from a source tree that was never installed).
pytest_plugins = ["benchmark_core.conformance.pytest_plugin"]


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
