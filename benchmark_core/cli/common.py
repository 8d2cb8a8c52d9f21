"""Helpers that several ``gbench`` commands share (run, claims): no command lives here."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from benchmark_core.contract.errors import UsageError
from benchmark_core.results.safe_text import safe_text


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
                jobs=int(options["jobs"]),
                replicas=int(options["replicas"]),
                executor=str(options["executor"]),
                address=options["address"],
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
