"""Render a leaderboard and its problem cells as HTML, every third-party string escaped."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from benchmark_core.reports.formatting import (
    AVERAGE_RANK_NOTE,
    DIRECTION_WORDS,
    INTERVAL_NOTE,
    format_rank,
    iter_tasks,
    metric_cell,
    metric_header,
    reason_summary,
    seeds_text,
    shown_metrics,
)


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


LEADERBOARD_CSS = """
table.gb { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.92em; }
table.gb th, table.gb td { border-bottom: 1px solid #ccc; padding: 0.3em 0.7em; }
table.gb th { text-align: left; background: #f2f2f2; }
table.gb td.num, table.gb th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.gb td.best { font-weight: bold; }
table.gb code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono",
                "Liberation Mono", monospace; font-size: 0.92em; }
section { overflow-x: auto; }
p.note { color: #444; font-size: 0.9em; max-width: 60em; }
"""


def _estimate_html(text: str) -> str:
    """Escape a metric cell, keeping ``mean ± interval`` on one line (a rank may wrap)."""
    return _h(text).replace(" ± ", "&nbsp;±&nbsp;")


def _html_table(header: list[tuple[str, str, str]], rows: list[list[tuple[str, str]]]) -> str:
    """A table from escaped cells: header (html, css class, title), rows of (html, class)."""

    def attrs(cls: str, title: str = "") -> str:
        return (f' class="{cls}"' if cls else "") + (f' title="{_h(title)}"' if title else "")

    head = "".join(f"<th{attrs(cls, title)}>{text}</th>" for text, cls, title in header)
    body = "".join(
        "<tr>" + "".join(f"<td{attrs(cls)}>{text}</td>" for text, cls in row) + "</tr>"
        for row in rows
    )
    return f'<table class="gb"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def task_table(board: pd.DataFrame, task: str, rows: pd.DataFrame) -> str:
    """One task's leaderboard as an escaped HTML table.

    Parameters
    ----------
    board : pandas.DataFrame
        A leaderboard (its ``attrs`` say which metrics the task shows).
    task : str
        The task label.
    rows : pandas.DataFrame
        The task's rows of ``board``.

    Returns
    -------
    str
        A ``<table>`` with the configurations, seeds, and each shown metric's mean ± interval
        and rank range; the clearly best value is bold.
    """
    shown = shown_metrics(board, task, rows)
    average = "avg_rank" in board
    header = [("objective", "", ""), ("model", "", ""), ("seeds", "num", "")]
    header += [(_h(metric_header(m, d)), "num", DIRECTION_WORDS[d]) for m, d in shown]
    header += [("avg rank", "num", "mean of the rank ranges' midpoints")] if average else []
    body = []
    for _, row in rows.iterrows():
        line = [
            (f"<code>{_h(row['label'])}</code>", ""),
            (f"<code>{_h(row['model_label'])}</code>", ""),
            (_h(seeds_text(row)), "num"),
        ]
        for m, d in shown:
            text, best = metric_cell(row, m, d)
            line.append((_estimate_html(text), "num best" if best else "num"))
        if average:
            line.append((_h(format_rank(row["avg_rank"])), "num"))
        body.append(line)
    return _html_table(header, body)


def to_html(
    board: pd.DataFrame, problems: pd.DataFrame | None = None, standalone: bool = False
) -> str:
    """Render a leaderboard as HTML, every third-party string escaped.

    Parameters
    ----------
    board : pandas.DataFrame
        The output of :func:`benchmark_core.reports.leaderboard.leaderboard`.
    problems : pandas.DataFrame, optional
        The output of :func:`benchmark_core.reports.leaderboard.problem_cells`.
    standalone : bool
        Wrap the tables in a complete page with its own inline CSS; otherwise return a fragment
        (the caller supplies :data:`LEADERBOARD_CSS`).

    Returns
    -------
    str
        One ``<section>`` per task, a note on intervals and ranks, and the skipped and failed
        cells.
    """
    parts: list[str] = [] if len(board) else ['<p class="note">No finished cells.</p>']
    for task, rows in iter_tasks(board):
        parts.append(f"<section><h3>{_h(task)}</h3>{task_table(board, task, rows)}</section>")
    if "avg_rank" in board:
        parts.append(f'<p class="note">{_h(AVERAGE_RANK_NOTE)}</p>')
    parts.append(f'<p class="note">{_h(INTERVAL_NOTE)}</p>')
    if problems is not None and len(problems):
        parts.append(problems_html(problems))
    fragment = "\n".join(parts)
    if not standalone:
        return fragment
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>gbench leaderboard</title><style>{LEADERBOARD_CSS}</style></head>"
        f"<body>\n{fragment}\n</body></html>\n"
    )


def problems_html(problems: pd.DataFrame, heading_level: int = 3) -> str:
    """Render skipped and failed cells as an HTML section; full tracebacks fold away.

    Parameters
    ----------
    problems : pandas.DataFrame
        The output of :func:`benchmark_core.reports.leaderboard.problem_cells`.
    heading_level : int
        The section heading's level (``<h3>`` by default).

    Returns
    -------
    str
        An escaped HTML fragment.
    """
    header = [
        (h, "num" if h == "seed" else "", "")
        for h in ("task", "objective", "model", "seed", "status", "reason")
    ]
    body = []
    for _, r in problems.iterrows():
        reason = _h(reason_summary(r["reason"]))
        full = r["reason"]
        if isinstance(full, str) and "\n" in full.strip():
            reason = f"<details><summary>{reason}</summary><pre>{_h(full)}</pre></details>"
        body.append(
            [
                (f"<code>{_h(r['task_label'])}</code>", ""),
                (f"<code>{_h(r['label'])}</code>", ""),
                (f"<code>{_h(r['model_label'])}</code>", ""),
                (_h(r["seed"]), "num"),
                (_h(r["status"]), ""),
                (reason, ""),
            ]
        )
    h = f"h{int(heading_level)}"
    return f"<section><{h}>Skipped and failed cells</{h}>{_html_table(header, body)}</section>"
