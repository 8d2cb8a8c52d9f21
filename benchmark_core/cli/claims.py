"""``gbench claims``: run the cells the paper's claims need, then print each claim's verdict.

Exit codes: 0 when every claim checked is reproduced; 1 when any is not reproduced or
inconclusive (a claim that could not be decided is not a pass), or a cell failed; 2 for a usage
error (nothing was run); 130 when interrupted (finished cells are kept: run it again).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from benchmark_core.cli.common import Jobs, workers_line
from benchmark_core.contract.errors import UsageError

FORMATS = ("markdown", "json", "html")


def to_reports(checks: list[Any]) -> list[Any]:
    """ClaimReports (what the reports show) from the engine's ClaimChecks."""
    from benchmark_core.reports.claims import ClaimReport

    out = []
    for check in checks:
        cls, plugin = check.plan.entry.cls, check.plan.entry.plugin
        out.append(
            ClaimReport(
                name=cls.name,
                description=cls.description,
                statement=cls.statement,
                source=cls.source,
                science=cls.science,
                tolerances=cls.tolerances,
                plugin=f"{plugin.name} ({plugin.distribution} {plugin.version})",
                budget=check.plan.budget,
                verdict=check.verdict,
                cells=len({c.cell_id for c in check.plan.cells if c.skip_reason is None}),
                cells_ok=check.cells_ok,
            )
        )
    return out


def render(reports: list[Any], fmt: str, extra: dict[str, Any]) -> str:
    """The verdicts in ``fmt`` (markdown, json or html)."""
    from benchmark_core.reports.claims import to_json, to_markdown

    if fmt == "json":
        return to_json(reports, extra)
    if fmt == "html":
        from benchmark_core.reports.claims_html import claims_page

        return claims_page(reports)
    return to_markdown(reports)


def claims_section_for(frame: Any) -> str:
    """The HTML report's claims section for a results table ('' when it holds no claim's cells)."""
    from benchmark_core.engine.claims import claims_in
    from benchmark_core.registry import get_registry
    from benchmark_core.reports.claims_html import claims_section

    checks, partial = claims_in(get_registry(), frame)
    return claims_section(to_reports(checks), partial)


def _list_claims(entries: list[Any]) -> None:
    for entry in entries:
        cls = entry.cls
        click.echo(f"{cls.name}: {cls.description}")
        click.echo(f"  {cls.statement}")
        click.echo(f"  source: {cls.source}; science: {cls.science or 'not given'}")
        for grid in cls.grids:
            models = grid.models or "(each task's defaults)"
            click.echo(
                f"  grid: --objectives '{grid.objectives}' --tasks '{grid.tasks}' --models "
                f"'{models}' --metrics '{grid.metrics}' --seeds {grid.seeds}"
                + (f" --budget {grid.budget}" if grid.budget else "")
            )


@click.command("claims")
@click.argument("names", nargs=-1, metavar="[NAMES|all]")
@click.option(
    "--budget", default="quick", show_default=True, type=click.Choice(["smoke", "quick", "paper"])
)
@click.option(
    "--out",
    default="results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Results folder: cells already there are reused, new ones are written there.",
)
@click.option(
    "-j",
    "--jobs",
    default="auto",
    show_default=True,
    envvar="GBENCH_JOBS",
    type=Jobs(),
    help="Cells run at once, as for gbench run (auto: one per usable core).",
)
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "ray"]))
@click.option("--address", default=None, help="Ray cluster address for --executor ray.")
@click.option(
    "--replicas",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="Cells that differ only in seed (or π) trained as one model, as for gbench run.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option(
    "--timeout", default=None, type=click.FloatRange(min=0, min_open=True), help="Seconds per cell."
)
@click.option("--force", is_flag=True, help="Rerun the claims' cells even if they have results.")
@click.option(
    "--no-run", is_flag=True, help="Check against the cells already in --out; run nothing."
)
@click.option(
    "--list", "list_only", is_flag=True, help="List the claims and their grids; run nothing."
)
@click.option("--format", "fmt", default="markdown", show_default=True, type=click.Choice(FORMATS))
@click.option(
    "-o", "--output", default=None, type=click.Path(dir_okay=False), help="Write the verdicts here."
)
@click.pass_context
def claims_command(ctx: click.Context, names: tuple[str, ...], **options: Any) -> None:
    """Check each claim of the paper (or of a plugin): reproduced, not reproduced or
    inconclusive, with the figures and 95% intervals behind it.

    Runs the cells the claims need through the ordinary runner (resumable: cells already in
    --out are reused), then checks each claim on its cells' final values. Exits 0 only when
    every claim checked is reproduced, 1 otherwise (or when a cell failed), 2 on a usage
    error.
    """
    from benchmark_core.cli.common import report_plugin_failures as _report_plugin_failures
    from benchmark_core.engine.claims import (
        check_claim,
        merged_cells,
        plan_claim,
        read_cells,
        select_claims,
    )
    from benchmark_core.registry import get_registry

    registry = get_registry()
    _report_plugin_failures(registry)
    entries = select_claims(registry, names)
    if not entries:
        raise UsageError("no claim is installed: nothing to check.")
    if options["list_only"]:
        _list_claims(entries)
        return
    if options["address"] is not None and options["executor"] != "ray":
        raise UsageError("--address is a Ray cluster's address: add --executor ray.")
    plans = [plan_claim(registry, entry, options["budget"]) for entry in entries]
    cells = merged_cells(plans)
    out = Path(options["out"])
    start = time.monotonic()
    report = None
    if not options["no_run"]:
        report = _run(cells, out, options)
    wall = time.monotonic() - start
    frame, problems = read_cells(cells, out)
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)
    reports = to_reports([check_claim(plan, frame) for plan in plans])
    extra = {"budget": options["budget"], "out": str(out), "wall_time_s": round(wall, 1)}
    text = render(reports, options["fmt"], extra)
    if options["output"]:
        from benchmark_core.reports.inputs import write_text

        write_text(Path(options["output"]), text)
        click.echo(options["output"], err=True)
    else:
        click.echo(text, nl=False)
    if report is not None and report.interrupted:
        click.echo("interrupted: finished cells are saved; run it again to resume.", err=True)
        ctx.exit(130)
    if (report is not None and report.failed) or any(
        r.verdict.outcome != "reproduced" for r in reports
    ):
        ctx.exit(1)


def _run(cells: list[Any], out: Path, options: dict[str, Any]) -> Any:
    """Run the cells through the ordinary grid loop, progress on stderr."""
    from benchmark_core.cli.common import check_writable as _check_writable
    from benchmark_core.cli.common import run_with_progress
    from benchmark_core.cli.console import summary_table
    from benchmark_core.engine.runner import resolve_device

    if options["executor"] == "ray":
        from benchmark_core.engine.ray_executor import import_ray

        import_ray()
    device = resolve_device(str(options["device"]), here=options["executor"] == "local")
    _check_writable(out)
    console = Console(stderr=True)
    report = run_with_progress(cells, out, device, options, console)
    for problem in report.problems:
        click.echo(f"warning: {problem}", err=True)
    console.print(summary_table(report))
    if line := workers_line(report):
        click.echo(line)
    ran = sum(n for status, n in report.counts.items() if status != "done earlier")
    click.echo(
        f"{len(cells)} cells: {report.counts['done earlier']} reused from {out}, {ran} run; "
        f"wall time {report.wall_time_s:.1f} s",
        err=True,
    )
    return report


def add_commands(group: click.Group) -> None:
    """Add ``gbench claims`` to a click group (the ``gbench`` one)."""
    group.add_command(claims_command)
