"""The reporting commands: ``gbench leaderboard``, ``gbench plot`` and ``gbench report``.

:mod:`benchmark_core.cli.main` adds them to its ``cli`` group with :func:`add_commands`.
Each reads one or more results folders (default ``results/``), names every unreadable file on
stderr and goes on with the rest, and turns bad input (a folder with no results, a task,
metric or parameter that is not in them) into a :class:`UsageError`, exit code 2, whose
message lists what is there.

The reports read results, never the plugin registry; what plugins declare about showing their
components (a metric's frontier pairs, :attr:`Metric.frontier`; a task's headline metrics,
:attr:`Task.headline_metrics`) is gathered from the registry
(:mod:`benchmark_core.cli.declared`) and passed to the report functions. See
:mod:`benchmark_core.reports.figures` for why these travel this way rather than in the
results' metadata.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import click
import pandas as pd

from benchmark_core.cli.declared import frontier_pairs, frontier_references, headline_metrics
from benchmark_core.cli.environment import report_environment
from benchmark_core.contract.errors import UsageError
from benchmark_core.reports.inputs import (
    check_metrics,
    filter_frame,
    filter_options,
    load_results,
    one_task,
    results_argument,
    results_folder,
    slug,
    split_names,
    warnings_to_stderr,
    write_text,
)
from benchmark_core.reports.plot_kinds import PLOT_KINDS, PlotKind, PlotRequest
from benchmark_core.reports.safe_text import printable

FORMATS = ("rich", "markdown", "csv", "html", "json")
SUFFIX_FORMATS = {".md": "markdown", ".csv": "csv", ".html": "html", ".htm": "html"}
SUFFIX_FORMATS |= {".json": "json", ".txt": "rich"}


# --- gbench leaderboard ----------------------------------------------------------------------


def _problem_lines(problems: pd.DataFrame) -> list[str]:
    from benchmark_core.reports.formatting import reason_summary
    from benchmark_core.reports.safe_text import printable

    return [
        printable(
            f"  {r.task_label} · {r.label} · {r.model_label} · seed {r.seed}: {r.status}: "
            f"{reason_summary(r.reason)}"
        )
        for r in problems.itertuples()
    ]


def render_board(board: pd.DataFrame, problems: pd.DataFrame, fmt: str, width: int = 160) -> str:
    """Render a leaderboard and its problem cells as text in one of :data:`FORMATS`."""
    from rich.console import Console

    from benchmark_core.reports.leaderboard import to_csv, to_html, to_json, to_markdown, to_rich

    if fmt == "markdown":
        return to_markdown(board, problems)
    if fmt == "csv":
        return to_csv(board)
    if fmt == "json":
        return to_json(board, problems) + "\n"
    if fmt == "html":
        return to_html(board, problems, standalone=True)
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, soft_wrap=False)
    for table in to_rich(board, problems):
        console.print(table)
    return buffer.getvalue()


@click.command("leaderboard")
@results_argument
@filter_options
@click.option("--metric", "metrics", multiple=True, help="Metrics to show (repeat or a,b).")
@click.option(
    "--all-metrics",
    is_flag=True,
    help="Show every metric (default: the headline metrics each task declares).",
)
@click.option(
    "--average-rank",
    is_flag=True,
    help="Add each row's mean rank over the metrics shown (correlated metrics outvote others).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Default: from -o's extension (.md .csv .html .json .txt); else rich in a terminal, "
    "markdown when piped.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file.")
def leaderboard_command(
    results: tuple[str, ...],
    tasks: tuple[str, ...],
    models: tuple[str, ...],
    objectives: tuple[str, ...],
    budget: str | None,
    metrics: tuple[str, ...],
    all_metrics: bool,
    average_rank: bool,
    fmt: str | None,
    output: str | None,
) -> None:
    """Per task, mean ± 95% interval over seeds of each metric at the final step, and ranks.

    RESULTS are folders or files written by `gbench run` (default: results/). Each task shows
    the headline metrics it declares (--all-metrics or --metric for others). A rank separates
    two rows only when their 95% intervals do not overlap; ranks are per task. Skipped and
    failed cells are listed under the table (on stderr for CSV).
    """
    from benchmark_core.registry import get_registry
    from benchmark_core.reports.leaderboard import leaderboard, problem_cells

    chosen = split_names(metrics) or None
    if chosen and all_metrics:
        raise UsageError("--metric and --all-metrics choose the metrics two ways; pass one.")
    read = load_results(results)
    df = filter_frame(read.frame, tasks, models, objectives, budget)
    if chosen:
        check_metrics(df, chosen)
    headline = None if all_metrics or chosen else headline_metrics(get_registry())
    with warnings_to_stderr():
        board = leaderboard(
            df, read.directions, metrics=chosen, headline=headline, average_rank=average_rank
        )
    problems = problem_cells(df)
    if fmt is None:
        suffix = Path(output).suffix.lower() if output else ""
        fmt = SUFFIX_FORMATS.get(suffix) or (
            "rich" if output is None and sys.stdout.isatty() else "markdown"
        )
    if fmt == "csv" and len(problems):
        click.echo(f"{len(problems)} cells skipped or failed (not in the CSV):", err=True)
        for line in _problem_lines(problems):
            click.echo(line, err=True)
    if output is None and fmt == "rich" and sys.stdout.isatty():
        from rich.console import Console

        from benchmark_core.reports.leaderboard import to_rich

        for table in to_rich(board, problems):
            Console().print(table)
        for line in frontier_text(df, read.directions, get_registry()):
            Console().print(line, markup=False, highlight=False)
        return
    text = render_board(board, problems, fmt)
    if fmt in ("markdown", "rich"):
        extra = frontier_text(df, read.directions, get_registry())
        if extra:
            text = text.rstrip("\n") + "\n" + "\n".join(printable(x) for x in extra) + "\n"
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    write_text(Path(output), text)
    click.echo(printable(output))


# --- gbench plot -----------------------------------------------------------------------------


def _plot_help() -> str:
    kinds = "\n".join(f"  {name:<9} {kind.help}" for name, kind in PLOT_KINDS.items())
    return (
        "Draw a figure from results as PNG and SVG and print the paths.\n\n"
        f"\b\nKIND is one of:\n{kinds}\n\n"
        "RESULTS are folders or files written by `gbench run` (default: results/). A figure "
        "shows one task (--task) at one budget (--budget)."
    )


@click.command("plot", help=_plot_help())
@click.argument("kind", type=click.Choice(list(PLOT_KINDS)), metavar="KIND")
@results_argument
@filter_options
@click.option("--metric", "metrics", multiple=True, help="Metric(s) (repeat or a,b).")
@click.option("--param", default=None, help="sweep: the swept parameter (lr, objective.lr).")
@click.option("--x", "x", default=None, help="frontier: the metric on the x axis.")
@click.option("--y", "y", default=None, help="frontier: the metric on the y axis.")
@click.option(
    "--reference",
    default=None,
    help="frontier: the objective whose temperature curve is drawn and judged against "
    "(default: the task's declared one; 'none': the Pareto front).",
)
@click.option("--logx", is_flag=True, help="sweep: logarithmic x axis.")
@click.option("--logy", is_flag=True, help="curves: logarithmic y axes.")
@click.option(
    "-o",
    "--output",
    default=None,
    help="Path without extension; writes STEM.png and STEM.svg (default: RESULTS/_plots/...).",
)
def plot_command(
    kind: str,
    results: tuple[str, ...],
    tasks: tuple[str, ...],
    models: tuple[str, ...],
    objectives: tuple[str, ...],
    budget: str | None,
    metrics: tuple[str, ...],
    output: str | None,
    **options: Any,
) -> None:
    """Draw a figure as PNG and SVG (the --help text comes from :func:`_plot_help`)."""
    from benchmark_core.reports.plots import save

    request = PlotRequest(metrics=split_names(metrics), **options)
    plot_kind = PLOT_KINDS[kind]
    unused = sorted(request.given() - plot_kind.options)
    if unused:
        flags = ", ".join("--metric" if u == "metrics" else f"--{u}" for u in unused)
        raise UsageError(f"plot {kind} does not use {flags}; it draws {plot_kind.help}.")
    read = load_results(results)
    df = filter_frame(read.frame, tasks, models, objectives, budget)
    task = one_task(df)
    if "reference" in plot_kind.options:
        _declared_reference(request, df, read.directions)
    with warnings_to_stderr():
        try:
            fig, name = plot_kind.draw(df, read.directions, request)
        except ValueError as exc:  # the plotting functions' own checks of their input
            raise UsageError(f"plot {kind}: {exc}.") from None
    stem = Path(output) if output else results_folder(results) / "_plots" / slug(f"{name}_{task}")
    if stem.suffix.lower() in (".png", ".svg"):
        stem = stem.with_suffix("")
    try:
        paths = save(fig, stem)
    except OSError as exc:
        raise UsageError(f"cannot write {stem}.png: {exc.strerror}.") from None
    for path in paths:
        click.echo(printable(path))


def _declared_reference(request: PlotRequest, df: pd.DataFrame, directions: dict) -> None:
    """Fill the frontier's reference from the task's declaration where --reference is unset,
    and its checkpoint selection from the declaration whichever objective is named."""
    from benchmark_core.registry import get_registry

    names = df["task"].dropna().unique()
    declared = frontier_references(get_registry(), directions).get(names[0]) if len(names) else None
    if request.reference is None and declared is not None:
        request.reference = declared.objective
    if declared is not None:
        request.select_by = declared.select_by


# --- gbench report ---------------------------------------------------------------------------


@click.command("report")
@results_argument
@filter_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="The HTML file (default: RESULTS/_report.html).",
)
@click.option("--title", default="gbench report", show_default=True, help="The page title.")
@click.option(
    "--images",
    type=click.Choice(["svg", "png"]),
    default="svg",
    show_default=True,
    help="How figures are embedded.",
)
def report_command(
    results: tuple[str, ...],
    tasks: tuple[str, ...],
    models: tuple[str, ...],
    objectives: tuple[str, ...],
    budget: str | None,
    output: str | None,
    title: str,
    images: str,
) -> None:
    """Write one self-contained HTML page: figures, leaderboards, environment, problem cells.

    First the headline figures (those plugins add, and the quality-coverage frontiers the
    metrics declare), then per task a compact table of its headline metrics with the full one
    folded under it, then figures chosen from what the results hold (training curves, each
    swept objective or model parameter). The page loads nothing from the network.
    """
    from benchmark_core.registry import get_registry
    from benchmark_core.reports.figures import (
        default_figures,
        frontier_figures,
        frontier_statements,
    )
    from benchmark_core.reports.html_report import render_report

    read = load_results(results)
    df = filter_frame(read.frame, tasks, models, objectives, budget, one_budget=False)
    registry = get_registry()
    headline = _plugin_figures(df, read.directions, registry)
    pairs, references = frontier_pairs(registry), frontier_references(registry, read.directions)
    frontiers, notes = frontier_figures(df, read.directions, pairs, references)
    headline.update(frontiers)
    with warnings_to_stderr():
        statements = frontier_statements(df, read.directions, pairs, references)
    figures, more_notes = default_figures(df, read.directions)
    notes += more_notes
    for note in notes:
        click.echo(f"warning: {printable(note)}", err=True)
    from benchmark_core.cli.claims import claims_section_for

    with warnings_to_stderr():
        page = render_report(
            df,
            read.directions,
            figures,
            report_environment(read.problems),
            title=title,
            image_format=images,
            figure_notes=notes,
            headline_figures=headline,
            headline_metrics=headline_metrics(registry),
            claims_html=claims_section_for(df),
            figure_texts=statements,
        )
    out = Path(output) if output else results_folder(results) / "_report.html"
    write_text(out, page)
    click.echo(printable(out))


def frontier_text(df: pd.DataFrame, directions: dict[str, str], registry: Any) -> list[str]:
    """The frontier statements of a leaderboard's text formats: per task whose results hold
    its declared reference's curve, a heading line and the sentences."""
    from benchmark_core.reports.figures import frontier_statements

    with warnings_to_stderr():
        statements = frontier_statements(
            df, directions, frontier_pairs(registry), frontier_references(registry, directions)
        )
    lines: list[str] = []
    for caption, sentences in statements.items():
        lines += ["", f"Frontier, {caption.replace(', final values', '')}:"]
        lines += [f"- {s}" for s in sentences]
    return lines


def _plugin_figures(df: Any, directions: dict[str, str], registry: Any) -> dict[str, Any]:
    """Figures of the plot kinds plugins added (Figure 1, say), for each task they can draw.

    The standard kinds (sweep, curves, frontier) need choices the report makes itself, from
    what the results hold (:func:`benchmark_core.reports.figures.default_figures`).
    """
    from benchmark_core.reports.plot_kinds import STANDARD_KINDS

    standard = {draw for draw, _, _ in STANDARD_KINDS.values()}
    figures = {}
    for draw, help_text, _, _ in registry.plots.values():
        if draw in standard:
            continue
        for task in sorted(df["task_label"].dropna().unique()):
            try:
                fig, _ = draw(df[df["task_label"] == task], directions, PlotRequest())
            except (UsageError, ValueError, KeyError):
                continue  # this kind does not apply to these results
            figures[f"{task}: {help_text}"] = fig
    return figures


def install_plot_kinds(registry: Any) -> None:
    """Add the plot kinds that plugins registered to ``gbench plot``."""
    for name, (draw, help_text, options, _) in registry.plots.items():
        PLOT_KINDS[name] = PlotKind(draw, options, help_text)
    plot_command.params[0].type = click.Choice(list(PLOT_KINDS))
    plot_command.help = _plot_help()


def add_commands(group: click.Group) -> None:
    """Add the reporting commands to a click group (the ``gbench`` one)."""
    for command in (leaderboard_command, plot_command, report_command):
        group.add_command(command)
