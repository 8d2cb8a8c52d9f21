"""gbench's pytest plugin (entry point ``pytest11``): the conformance suite for plugin authors.

A test that takes ``gbench_check`` and carries the marker ``gbench_conformance`` runs once per
conformance check of every component the named packages register::

    import pytest

    @pytest.mark.gbench_conformance("gbench-mine")  # a distribution or entry-point name
    def test_conformance(gbench_check):
        gbench_check()

Each check is its own test, with an id such as ``objective:mine:smoke_cell[vector]``; one
that cannot run here (no compatible task installed, say) is skipped with the reason. The
``gbench_cli`` fixture runs ``gbench ARGS`` in-process and returns (exit code, stdout, stderr).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

MARKER = "gbench_conformance"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*packages): run the test taking `gbench_check` once per gbench conformance "
        "check of the components these distributions or plugins register",
    )


@dataclass(frozen=True)
class _PytestCheck:
    check: Any

    def __call__(self) -> None:
        from benchmark_core.conformance.suite import NotApplicable

        try:
            self.check()
        except NotApplicable as exc:
            pytest.skip(str(exc))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gbench_check" not in metafunc.fixturenames:
        return
    from benchmark_core.conformance.suite import collect
    from benchmark_core.contract.errors import UsageError
    from benchmark_core.registry import load_registry

    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None or not marker.args:
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid} takes gbench_check: mark it "
            f'@pytest.mark.{MARKER}("your-distribution")'
        )
    try:
        checks = collect(load_registry(), marker.args)
    except UsageError as exc:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: {exc}") from None
    metafunc.parametrize(
        "gbench_check", [_PytestCheck(c) for c in checks], ids=[c.id for c in checks]
    )


@dataclass
class CliResult:
    """What ``gbench_cli`` returns."""

    code: int
    out: str
    err: str


@pytest.fixture
def gbench_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``gbench ARGS`` in this process, with a freshly loaded plugin registry."""
    from benchmark_core.cli.main import main
    from benchmark_core.registry import reset_registry

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        reset_registry()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    yield invoke
    reset_registry()
