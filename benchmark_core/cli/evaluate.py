"""``gbench evaluate``: metrics on stored checkpoints, added to the same cells' results.

:mod:`benchmark_core.cli.main` adds it to its ``cli`` group with :func:`add_commands`.
"""

from __future__ import annotations

from pathlib import Path

import click

from benchmark_core.contract.errors import UsageError


@click.command("evaluate")
@click.argument("results", type=click.Path(file_okay=False))
@click.option(
    "--metrics",
    default="all",
    show_default=True,
    help="'all' or a list of metrics to bring up to date (name or name[param=value,...]).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option(
    "-j",
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes computing metrics (the files are written by this process).",
)
@click.option("--force", is_flag=True, help="Recompute the metrics even where they are current.")
@click.pass_context
def evaluate_command(
    ctx: click.Context, results: str, metrics: str, device: str, jobs: int, force: bool
) -> None:
    """Compute METRICS on the checkpoints in RESULTS without training, adding their rows.

    A metric is recomputed where a cell lacks it or holds it from another version of its
    plugin; cells keep their checkpoints with `gbench run --checkpoints final|all` (warm-start
    sources always do). Exit code 1 when a cell could not be brought up to date.
    """
    from rich.console import Console

    from benchmark_core.engine.reevaluate import evaluate_folder
    from benchmark_core.engine.runner import resolve_device
    from benchmark_core.engine.selection import parse_selection
    from benchmark_core.registry import get_registry

    folder = Path(results)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such results folder.")
    registry = get_registry()
    for name, error in registry.failures:
        click.echo(f"warning: plugin '{name}' failed to load: {error.splitlines()[0]}", err=True)
    specs = parse_selection(metrics, "metrics")
    console = Console()

    def echo(status: str, text: str) -> None:
        console.print(f"{status:>8} {text}", markup=False, highlight=False, soft_wrap=True)

    report = evaluate_folder(
        folder, specs, registry, resolve_device(device), force=force, jobs=jobs, echo=echo
    )
    for problem in report.problems:
        click.echo(f"warning: {problem}", err=True)
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(report.counts.items())) or "no cells"
    console.print(f"cells {counts} · {report.wall_time_s:.1f} s", markup=False, highlight=False)
    if report.interrupted:
        click.echo("interrupted: rewritten cells are saved; run the same command to resume.")
        ctx.exit(130)
    if report.counts["failed"] or report.counts["no checkpoint"]:
        ctx.exit(1)


def add_commands(cli: click.Group) -> None:
    """Add ``evaluate`` to the ``gbench`` group."""
    cli.add_command(evaluate_command)
