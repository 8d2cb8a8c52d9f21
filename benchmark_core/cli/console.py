"""What gbench shows in a terminal: progress bars, the grid plan, summaries and listings."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmark_core.contract import CAPABILITIES
from benchmark_core.engine.executors import GridReport
from benchmark_core.engine.grid import Cell
from benchmark_core.engine.runner import Outcome
from benchmark_core.registry import Registry

STATUS_STYLE = {
    "ok": "green",
    "skipped": "dim",
    "done earlier": "cyan",
    "running elsewhere": "cyan",
    "error": "red",
    "metric_error": "red",
    "diverged": "magenta",
    "timeout": "yellow",
    "interrupted": "yellow",
}


class RichGridUI:
    """A progress bar over the grid and one over the running cell's steps."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.grid = self.progress.add_task("grid", total=total)
        self.cell = self.progress.add_task("cell", total=1, visible=False)

    def __enter__(self) -> RichGridUI:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def cell_started(self, cell: Cell, index: int, total: int, replicas: int = 1) -> None:
        """Show the cell's own bar."""
        text = cell.describe()
        if replicas > 1:
            text += f" (+{replicas - 1} replicas trained with it)"
        self.progress.update(
            self.cell,
            description=escape(text),
            completed=0,
            total=cell.budget.steps,
            visible=cell.skip_reason is None,
        )

    def cell_progress(self, step: int, steps: int) -> None:
        """Advance the cell's bar."""
        self.progress.update(self.cell, completed=step)

    def cell_finished(self, cell: Cell, status: str, outcome: Outcome | None) -> None:
        """Print one line for the cell and advance the grid bar."""
        self.progress.advance(self.grid)
        self.progress.update(self.cell, visible=False)
        if outcome is None:
            return
        style = STATUS_STYLE.get(status, "")
        detail = f"{outcome.wall_time_s:.1f} s"
        if status == "skipped":
            detail = escape(outcome.error or "")
        elif status != "ok":
            detail += " · " + escape((outcome.error or "").strip().splitlines()[-1][:160])
        self.console.print(f"[{style}]{status:>11}[/] {escape(cell.describe())}  [dim]{detail}[/]")


def summary_table(report: GridReport) -> Table:
    """Counts by status, wall time and where the results are."""
    table = Table(title="gbench run", show_header=True)
    table.add_column("status")
    table.add_column("cells", justify="right")
    for status, n in sorted(report.counts.items()):
        table.add_row(f"[{STATUS_STYLE.get(status, '')}]{status}[/]", str(n))
    table.add_row("[bold]total[/]", str(sum(report.counts.values())))
    table.caption = f"wall time {report.wall_time_s:.1f} s"
    return table


def plan_table(actions: list[tuple[Cell, str]]) -> Table:
    """The grid as it would run: one row per cell with what would happen to it."""
    table = Table(title=f"gbench grid: {len(actions)} cells", show_lines=False)
    for col in ("cell_id", "task", "model", "objective", "seed", "action"):
        table.add_column(col)
    counts: Counter = Counter()
    for cell, action in actions:
        if cell.skip_reason is not None:
            what = f"[dim]skip: {escape(cell.skip_reason)}[/]"
            counts["skip"] += 1
        elif action == "done":
            what = "[cyan]done earlier[/]"
            counts["done earlier"] += 1
        else:
            what = "[green]run[/]"
            counts["run"] += 1
        table.add_row(
            cell.cell_id,
            escape(cell.task.label),
            escape(cell.model.label),
            escape(cell.objective.label),
            str(cell.seed),
            what,
        )
    table.caption = " · ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    return table


def metric_notes(cells: list[Cell]) -> list[str]:
    """The metrics each (task, model) pair will and will not compute, once per pair."""
    notes, seen = [], set()
    for cell in cells:
        key = (cell.task.label, cell.model.label)
        if key in seen or cell.skip_reason is not None:
            continue
        seen.add(key)
        names = ", ".join(m.label for m in cell.metrics) or "none"
        notes.append(f"{key[0]} · {key[1]}: metrics {names}")
        notes.extend(f"    not computed: {why}" for why in cell.metric_skips)
    return notes


def _params_text(cls: Any) -> str:
    return (
        "\n".join(f"{k}={p.default!r} ({p.describe()})" for k, p in cls.param_spec.items()) or "—"
    )


def _needs_text(kind: str, cls: Any) -> str:
    if kind == "task":
        caps = ", ".join(sorted(cls.provides)) or "—"
        return f"kind: {cls.kind}\nprovides: {caps}"
    if kind == "model":
        return f"kinds: {', '.join(sorted(cls.kinds))}\nprovides: {', '.join(sorted(cls.provides))}"
    lines = [f"kinds: {', '.join(sorted(cls.kinds))}"]
    for on in sorted(cls.kinds):
        task_needs, model_needs = cls.requirements(on)
        prefix = (
            f"{on} "
            if isinstance(cls.task_requires, dict) or isinstance(cls.model_requires, dict)
            else ""
        )
        for who, needs in (("task", task_needs), ("model", model_needs)):
            if needs:
                words = ", ".join(CAPABILITIES.get(c, c) for c in sorted(needs))
                line = f"{prefix}{who}: {words}"
                if line not in lines:
                    lines.append(line)
    if kind == "metric":
        lines.append(
            {"min": "lower is better ↓", "max": "higher is better ↑"}.get(
                cls.direction, "diagnostic"
            )
        )
    return "\n".join(lines)


def component_table(registry: Registry, kind: str) -> Table:
    """Every component of one kind: parameters with defaults, requirements, description."""
    table = Table(title=f"{kind}s", show_lines=True)
    for col in ("name", "parameters (default, type)", "declares", "description", "plugin"):
        table.add_column(col)
    for name, entry in sorted(registry.of_kind(kind).items()):
        table.add_row(
            escape(name),
            escape(_params_text(entry.cls)),
            escape(_needs_text(kind, entry.cls)),
            escape(entry.cls.description),
            escape(entry.plugin.distribution),
        )
    return table


def plugins_table(registry: Registry) -> Table:
    """Every loaded plugin with its version, hooks and components."""
    table = Table(title="gbench plugins")
    for col in ("name", "distribution", "version", "hooks", "components"):
        table.add_column(col)
    for info in registry.plugins:
        table.add_row(
            escape(info.name),
            escape(info.distribution),
            escape(info.version),
            escape(", ".join(info.hooks)),
            escape(", ".join(info.components)),
        )
    return table
