"""What the process that makes a report knows about itself: versions, plugins, platform,
date and its own command line (the HTML report's environment section)."""

from __future__ import annotations

import platform
import shlex
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmark_core import __version__


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def command_line(argv: list[str] | None = None) -> str:
    """This process's command line (``sys.argv``), as a shell would take it.

    The program is shown by its name (``gbench``), not its install path; run as
    ``python -m benchmark_core.cli.main`` it is shown so.
    """
    argv = list(sys.argv if argv is None else argv)
    if argv:
        program = Path(argv[0])
        is_module = program.name in ("main.py", "__main__.py") and program.parent.name == "cli"
        argv[:1] = ["python", "-m", "benchmark_core.cli.main"] if is_module else [program.name]
    return shlex.join(argv)


def report_environment(problems: list[str]) -> dict[str, Any]:
    """What the report-making process knows: versions, plugins, platform, date, command line."""
    from benchmark_core.registry import get_registry

    plugins = get_registry().plugins
    env: dict[str, Any] = {
        "gbench": __version__,
        "torch": _version("torch"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "plugins loaded": [f"{p.name} ({p.distribution} {p.version})" for p in plugins],
        "report made": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command line": command_line(),
    }
    if problems:
        env["unreadable result files (ignored)"] = problems
    return env
