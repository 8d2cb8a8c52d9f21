"""Render a leaderboard as Markdown (for files and pipes) and as rich tables (the terminal).

Every label, parameter and reason string comes from a third-party plugin or from a user's
command line: Markdown puts them in code spans, so nothing in them renders as markup, and rich
gets literal :class:`rich.text.Text`, which it would otherwise read as markup
(``name[key=0.5]``). Both go through :func:`benchmark_core.reports.safe_text.printable` first,
since a terminal would act on an escape sequence inside either.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.table import Table
from rich.text import Text

from benchmark_core.reports.formatting import (
    ARROWS,
    AVERAGE_RANK_NOTE,
    INTERVAL_NOTE,
    format_rank,
    iter_tasks,
    metric_cell,
    metric_header,
    reason_summary,
    seeds_text,
    shown_metrics,
)
from benchmark_core.reports.safe_text import printable

PROBLEM_COLUMNS = ("task_label", "label", "model_label", "seed", "status")
PROBLEM_HEADER = ["task", "objective", "model", "seed", "status", "reason"]


def _notes(board: pd.DataFrame) -> list[str]:
    return [INTERVAL_NOTE] + ([AVERAGE_RANK_NOTE] if "avg_rank" in board else [])


# --- Markdown --------------------------------------------------------------------------------


def _md(text: Any) -> str:
    """A literal Markdown code span: no HTML, links or emphasis inside it can take effect."""
    s = " ".join(printable(text).split())
    if not s:
        return "–"
    # GitHub-flavoured tables split cells on "|" even inside code spans unless it is escaped.
    s = s.replace("|", "\\|")
    # A fence one backtick longer than any run inside keeps the span closed.
    ticks = 1
    while "`" * ticks in s:
        ticks += 1
    fence = "`" * ticks
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _md_table(header: list[str], rows: list[list[str]], align: list[str]) -> list[str]:
    out = ["| " + " | ".join(header) + " |"]
    out.append("| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |")
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _md_task(board: pd.DataFrame, task: str, rows: pd.DataFrame) -> list[str]:
    shown = shown_metrics(board, task, rows)
    average = "avg_rank" in board
    header = ["objective", "model", "seeds"]
    header += [f"{_md(m)} {ARROWS[d]}".rstrip() for m, d in shown]
    header += ["avg rank"] if average else []
    body = []
    for _, row in rows.iterrows():
        line = [_md(row["label"]), _md(row["model_label"]), seeds_text(row)]
        for m, d in shown:
            text, best = metric_cell(row, m, d)
            line.append(f"**{text}**" if best else text)
        line += [format_rank(row["avg_rank"])] if average else []
        body.append(line)
    align = ["l", "l", "r"] + ["r"] * (len(shown) + average)
    return [f"## {_md(task)}", "", *_md_table(header, body, align), ""]


def to_markdown(board: pd.DataFrame, problems: pd.DataFrame | None = None) -> str:
    """Render a leaderboard as GitHub-flavoured Markdown.

    Parameters
    ----------
    board : pandas.DataFrame
        The output of :func:`benchmark_core.reports.leaderboard.leaderboard`.
    problems : pandas.DataFrame, optional
        The output of :func:`benchmark_core.reports.leaderboard.problem_cells`, listed at the end.

    Returns
    -------
    str
        One section per task, a note on intervals and ranks, and the skipped and failed
        cells. Labels are code spans, so nothing in them renders as markup.
    """
    out: list[str] = [] if len(board) else ["No finished cells.", ""]
    for task, rows in iter_tasks(board):
        out += _md_task(board, task, rows)
    for note in _notes(board):
        out += [note, ""]
    if problems is not None and len(problems):
        out += ["## Skipped and failed cells", ""]
        body = [
            [_md(r[c]) if c not in ("seed", "status") else printable(r[c]) for c in PROBLEM_COLUMNS]
            + [_md(reason_summary(r["reason"]))]
            for _, r in problems.iterrows()
        ]
        out += _md_table(PROBLEM_HEADER, body, ["l", "l", "l", "r", "l", "l"])
        out.append("")
    return "\n".join(out)


# --- rich ------------------------------------------------------------------------------------


def _text(value: Any, style: str = "") -> Text:
    """A literal, printable rich Text: no markup, no control characters."""
    return Text(printable(value), style=style)


def _rich_task(board: pd.DataFrame, task: str, rows: pd.DataFrame) -> Table:
    shown = shown_metrics(board, task, rows)
    average = "avg_rank" in board
    table = Table(title=_text(task))
    table.add_column("objective")
    table.add_column("model")
    table.add_column("seeds", justify="right")
    for m, d in shown:
        table.add_column(_text(metric_header(m, d)), justify="right")
    if average:
        table.add_column("avg rank", justify="right")
    for _, row in rows.iterrows():
        cells = [_text(row["label"]), _text(row["model_label"]), _text(seeds_text(row))]
        for m, d in shown:
            text, best = metric_cell(row, m, d)
            cells.append(_text(text, style="bold" if best else ""))
        if average:
            cells.append(_text(format_rank(row["avg_rank"])))
        table.add_row(*cells)
    return table


def to_rich(board: pd.DataFrame, problems: pd.DataFrame | None = None) -> list[Table]:
    """Render a leaderboard as rich Tables for the terminal.

    Parameters
    ----------
    board : pandas.DataFrame
        The output of :func:`benchmark_core.reports.leaderboard.leaderboard`.
    problems : pandas.DataFrame, optional
        The output of :func:`benchmark_core.reports.leaderboard.problem_cells`.

    Returns
    -------
    list of rich.table.Table
        One per task and one of the skipped and failed cells. Every cell is a literal
        :class:`rich.text.Text` with control characters escaped, so brackets in labels are
        shown, not read as markup, and no escape sequence reaches the terminal.
    """
    tables = [_rich_task(board, task, rows) for task, rows in iter_tasks(board)]
    if tables:
        # The notes once, under the last task's table, rather than repeated under each.
        tables[-1].caption = _text("\n".join(_notes(board)).replace("\n", " "))
        tables[-1].caption_justify = "left"
    if problems is not None and len(problems):
        table = Table(title="Skipped and failed cells")
        for name in PROBLEM_HEADER:
            table.add_column(name, justify="right" if name == "seed" else "left")
        for _, r in problems.iterrows():
            table.add_row(
                *(_text(r[c]) for c in PROBLEM_COLUMNS), _text(reason_summary(r["reason"]))
            )
        tables.append(table)
    return tables
