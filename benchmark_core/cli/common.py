"""Helpers that several ``gbench`` commands share (run, claims): no command lives here."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from benchmark_core.contract.errors import UsageError
from benchmark_core.results.safe_text import safe_text

#: The most worker processes ``-j`` accepts.
MAX_JOBS = 1024


class Jobs(click.ParamType):
    """``-j``: ``auto`` (one work item per usable core, or per GPU) or a count of 1 or more."""

    name = "jobs"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """``"auto"`` or the count, or a usage error."""
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            jobs = int(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            jobs = None
        if jobs is None or not 1 <= jobs <= MAX_JOBS:
            self.fail(
                f"{value!r} is not a number of jobs: give auto (the default: one per core) or "
                f"a whole number from 1 to {MAX_JOBS} (1 runs one cell at a time).",
                param,
                ctx,
            )
        return jobs


def resolve_jobs(jobs: int | str, device: Any, cells: int, executor: str) -> int:
    """``-j``'s value as a count: ``auto`` is `machine.default_jobs` locally, and 1 (as many
    tasks in flight as the cluster has CPUs, or GPUs) on Ray."""
    if jobs != "auto":
        return int(jobs)
    if executor != "local":
        return 1
    from benchmark_core.engine.machine import default_jobs

    return default_jobs(device, cells)


def workers_line(report: Any) -> str | None:
    """What starting the worker processes cost, for the end of a run (None without any)."""
    ready = sorted(report.workers_ready_s)
    if not ready:
        return None
    span = f"{ready[0]:.1f} s" if len(ready) == 1 else f"{ready[0]:.1f}-{ready[-1]:.1f} s"
    return (
        f"{len(ready)} worker process(es), each ready {span} after it started (importing "
        "torch and the grid's plugins, once per run, while the grid was planned)"
    )


def warn(text: str) -> None:
    """Print ``warning: text`` on stderr, with control characters made visible."""
    click.echo(f"warning: {safe_text(text)}", err=True)


def check_writable(out: Path) -> None:
    """Refuse (exit 2) a results folder that cannot be created or written, before any work."""
    import tempfile

    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot write results to {safe_text(out)}: {exc.strerror}. "
            f"Choose another folder with --out."
        ) from None


def sigterm_as_interrupt(signum: int, frame: Any) -> None:
    """A SIGTERM handler that stops a grid as Ctrl-C does (finished cells are kept)."""
    raise KeyboardInterrupt


def report_plugin_failures(registry: Any) -> None:
    """Warn about each plugin that failed to load; the rest loaded."""
    for name, error in registry.failures:
        first = (error.strip().splitlines() or [""])[0]
        warn(f"plugin '{name}' failed to load: {first}")


def run_with_progress(
    cells: list[Any], out: Path, device: Any, options: dict[str, Any], console: Any
) -> Any:
    """Run the grid (warm-start sources first) under a progress display on ``console``; the
    run options are ``gbench run``'s. SIGTERM stops it as Ctrl-C does. Returns the report."""
    from benchmark_core.cli.console import RichGridUI
    from benchmark_core.engine.waves import run_waves

    previous = signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    try:
        with RichGridUI(console, len(cells)) as ui:
            return run_waves(
                cells,
                out,
                device,
                force=bool(options["force"]),
                timeout=options["timeout"],
                ui=ui,
                jobs=resolve_jobs(options["jobs"], device, len(cells), options["executor"]),
                replicas=int(options["replicas"]),
                executor=str(options["executor"]),
                address=options["address"],
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
