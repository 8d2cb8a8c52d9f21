"""Render a leaderboard (from :func:`benchmark_core.reports.leaderboard.leaderboard`) as text.

Markdown, CSV, JSON and rich tables are here, with the helpers every format shares; HTML is in
:mod:`benchmark_core.reports.formatting_html`.

The board's column conventions live here so that ``leaderboard.py`` can import them without
a cycle: fixed columns (``task_label``, ``label``, ``model_label``, ``n_seeds``, ...) and, for
each metric, ``"<metric>.mean"``, ``"<metric>.ci95"``, ``"<metric>.n"`` and ``"<metric>.rank"``.

Every label, parameter and reason string in a board comes from a third-party plugin or from a
user's command line, so each format escapes them for its own medium: HTML entities for HTML,
code spans for Markdown, literal :class:`rich.text.Text` for the terminal (rich would otherwise
read ``jspi[pi=0.5]`` as markup).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table
from rich.text import Text

ARROWS = {"min": "↓", "max": "↑", "none": ""}
DIRECTION_WORDS = {"min": "lower is better", "max": "higher is better", "none": "not ranked"}
STATS = ("mean", "ci95", "n", "rank")

INTERVAL_NOTE = (
    "Mean ± 95% interval over seeds (Student t: t(0.975, n−1)·sd/√n; it reflects seed-to-seed "
    "variation only). The number in parentheses is the rank within the task by that metric's "
    "direction (↓ lower is better, ↑ higher is better; ties share the average rank; metrics "
    "without a direction are not ranked). “± n/a”: one seed, so no interval. Seeds that failed "
    "are left out of the means and counted in the seeds column."
)


# --- reading a board -------------------------------------------------------------------------


def board_metrics(board: pd.DataFrame) -> list[tuple[str, str]]:
    """Return the board's metrics in column order, each with its direction.

    Parameters
    ----------
    board : pandas.DataFrame
        A leaderboard; its ``attrs["directions"]`` is used when present (pandas may drop
        ``attrs`` on some operations, in which case directions fall back to ``"none"``).

    Returns
    -------
    list of (str, str)
        ``(metric, direction)`` pairs, direction one of ``"min"``, ``"max"``, ``"none"``.
    """
    directions = board.attrs.get("directions", {})
    names = board.attrs.get("metrics")
    if names is None:
        names = [c[: -len(".mean")] for c in board.columns if c.endswith(".mean")]
    return [(m, directions.get(m, "none")) for m in names]


def iter_tasks(board: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """Yield each task label with its rows.

    Parameters
    ----------
    board : pandas.DataFrame
        A leaderboard.

    Yields
    ------
    (str, pandas.DataFrame)
        The task label and its rows, in the board's order.
    """
    # Keep the board's own order (sorted by task, then average rank) rather than re-sorting.
    for task in dict.fromkeys(board["task_label"]):
        yield str(task), board[board["task_label"] == task]


def shown_metrics(rows: pd.DataFrame, metrics: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the metrics that have at least one value among ``rows``.

    Parameters
    ----------
    rows : pandas.DataFrame
        One task's rows of a leaderboard.
    metrics : list of (str, str)
        ``(metric, direction)`` pairs, as from :func:`board_metrics`.

    Returns
    -------
    list of (str, str)
        The pairs to show for this task.
    """
    # A task shows only the metrics it has values for: a text task has no covariance
    # eigenvalues, and a column of dashes would only hide the ones it has.
    return [(m, d) for m, d in metrics if rows[f"{m}.n"].sum() > 0]


def across_tasks(board: pd.DataFrame) -> pd.DataFrame:
    """Return one row per (objective label, model label) with its average rank across tasks.

    Parameters
    ----------
    board : pandas.DataFrame
        A leaderboard.

    Returns
    -------
    pandas.DataFrame
        Columns ``label, model_label, n_tasks, avg_rank_all_tasks``, best first.
    """
    cols = ["label", "model_label", "n_tasks", "avg_rank_all_tasks"]
    across = board[cols].drop_duplicates(["label", "model_label"])
    return across.sort_values(["avg_rank_all_tasks", "label"], na_position="last")


# --- numbers ---------------------------------------------------------------------------------


def is_finite(x: Any) -> bool:
    """Return whether ``x`` is a finite number (not None, NaN, NA or infinite)."""
    return x is not None and not pd.isna(x) and math.isfinite(float(x))


def format_estimate(mean: float, half: float) -> str:
    """Format ``mean ± half`` with the interval to two significant figures.

    Parameters
    ----------
    mean : float
        The mean over seeds; NaN gives ``"–"``.
    half : float
        The 95% interval half-width; NaN (one seed) gives ``"<mean> ± n/a"``.

    Returns
    -------
    str
        The mean rounded to the interval's precision, so no digit is shown that the seeds
        cannot support.
    """
    if not is_finite(mean):
        return "–"
    if not is_finite(half):
        return f"{mean:.4g} ± n/a"
    if half == 0:
        return f"{mean:.4g} ± 0"
    decimals = 1 - math.floor(math.log10(abs(half)))
    if decimals > 6 or abs(mean) >= 1e7:
        return f"{mean:.3g} ± {half:.2g}"
    decimals = max(decimals, 0)
    return f"{mean:.{decimals}f} ± {half:.{decimals}f}"


def format_rank(rank: float) -> str:
    """Format a rank: ``"1"``, ``"2.5"`` for a tie, ``"1.67"`` for an average, ``"–"`` if none."""
    if not is_finite(rank):
        return "–"
    return f"{float(rank):.2f}".rstrip("0").rstrip(".")


def seeds_text(row: pd.Series) -> str:
    """Return the seeds column's text: ``"3"``, or ``"2 (1 failed)"``."""
    failed = int(row["n_failed"])
    return f"{int(row['n_seeds'])}" + (f" ({failed} failed)" if failed else "")


def metric_cell(row: pd.Series, metric: str, direction: str) -> tuple[str, bool]:
    """Return one metric cell's text and whether it ranks first in its task.

    Parameters
    ----------
    row : pandas.Series
        A leaderboard row.
    metric, direction : str
        The metric and its direction.

    Returns
    -------
    (str, bool)
        ``"1.10 ± 0.25 (1)"`` (no rank for an unranked metric) and the rank-1 flag.
    """
    text = format_estimate(row[f"{metric}.mean"], row[f"{metric}.ci95"])
    rank = row[f"{metric}.rank"]
    if direction != "none" and is_finite(row[f"{metric}.mean"]):
        text += f" ({format_rank(rank)})"
    return text, is_finite(rank) and float(rank) == 1.0


def reason_summary(reason: Any, limit: int = 200) -> str:
    """One line that says why a cell did not finish.

    Parameters
    ----------
    reason : str or None
        A skip reason or a traceback.
    limit : int
        Longest summary returned; longer ones are cut with an ellipsis.

    Returns
    -------
    str
        For a traceback its last line (the exception and message), otherwise the first line.
    """
    if reason is None or (not isinstance(reason, str) and pd.isna(reason)):
        return "(no reason recorded)"
    lines = [line.strip() for line in str(reason).strip().splitlines() if line.strip()]
    if not lines:
        return "(no reason recorded)"
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def metric_header(metric: str, direction: str) -> str:
    """Return a column header with the direction arrow: ``"nll_test ↓"``."""
    return f"{metric} {ARROWS[direction]}".rstrip()


# --- Markdown --------------------------------------------------------------------------------


def _md(text: Any) -> str:
    """A literal Markdown code span: no HTML, links or emphasis inside it can take effect."""
    s = " ".join(str(text).split())
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
        One section per task, an across-task section when there are several tasks, and the
        skipped and failed cells. Labels are code spans, so nothing in them renders as markup.
    """
    metrics = board_metrics(board)
    out: list[str] = [] if len(board) else ["No finished cells.", ""]
    for task, rows in iter_tasks(board):
        shown = shown_metrics(rows, metrics)
        out += [f"## {_md(task)}", ""]
        header = ["objective", "model", "seeds"]
        header += [f"{_md(m)} {ARROWS[d]}".rstrip() for m, d in shown]
        header.append("avg rank")
        body = []
        for _, row in rows.iterrows():
            line = [_md(row["label"]), _md(row["model_label"]), seeds_text(row)]
            for m, d in shown:
                text, best = metric_cell(row, m, d)
                line.append(f"**{text}**" if best else text)
            line.append(format_rank(row["avg_rank"]))
            body.append(line)
        out += _md_table(header, body, ["l", "l", "r"] + ["r"] * (len(shown) + 1))
        out.append("")
    if board["task_label"].nunique() > 1:
        out += ["## Average rank across tasks", ""]
        body = [
            [
                _md(r["label"]),
                _md(r["model_label"]),
                str(int(r["n_tasks"])),
                format_rank(r["avg_rank_all_tasks"]),
            ]
            for _, r in across_tasks(board).iterrows()
        ]
        out += _md_table(["objective", "model", "tasks", "avg rank"], body, ["l", "l", "r", "r"])
        out.append("")
    out += [INTERVAL_NOTE, ""]
    if problems is not None and len(problems):
        out += ["## Skipped and failed cells", ""]
        body = [
            [
                _md(r["task_label"]),
                _md(r["label"]),
                _md(r["model_label"]),
                str(r["seed"]),
                str(r["status"]),
                _md(reason_summary(r["reason"])),
            ]
            for _, r in problems.iterrows()
        ]
        out += _md_table(
            ["task", "objective", "model", "seed", "status", "reason"],
            body,
            ["l", "l", "l", "r", "l", "l"],
        )
        out.append("")
    return "\n".join(out)


# --- CSV and JSON ----------------------------------------------------------------------------


def to_csv(board: pd.DataFrame) -> str:
    """Render a leaderboard as CSV, one row per (task, objective, model), numbers unrounded.

    Parameters
    ----------
    board : pandas.DataFrame
        The output of :func:`benchmark_core.reports.leaderboard.leaderboard`.

    Returns
    -------
    str
        CSV text. Metric columns are headed ``"<metric> <arrow> mean"``, ``... ci95``,
        ``... n`` and ``... rank`` so that the direction travels with the numbers.
    """
    renames = {}
    for metric, direction in board_metrics(board):
        for stat in STATS:
            renames[f"{metric}.{stat}"] = f"{metric_header(metric, direction)} {stat}"
    return board.rename(columns=renames).to_csv(index=False, lineterminator="\n")


def _num(x: Any) -> float | int | None:
    """A JSON-safe number: NaN and infinities become null (JSON has no NaN)."""
    if not is_finite(x):
        return None
    return int(x) if isinstance(x, int | np.integer) else float(x)


def to_json(board: pd.DataFrame, problems: pd.DataFrame | None = None) -> str:
    """Render a leaderboard as JSON.

    Parameters
    ----------
    board : pandas.DataFrame
        The output of :func:`benchmark_core.reports.leaderboard.leaderboard`.
    problems : pandas.DataFrame, optional
        The output of :func:`benchmark_core.reports.leaderboard.problem_cells`.

    Returns
    -------
    str
        An object with ``metrics`` (direction and arrow of each), ``interval`` (how intervals
        were computed), ``tasks`` (task label -> list of rows, each with per-metric ``mean``,
        ``ci95``, ``n``, ``rank``), ``across_tasks`` and ``problems``. Missing numbers are null.
    """
    metrics = board_metrics(board)
    tasks: dict[str, list[dict[str, Any]]] = {}
    for task, rows in iter_tasks(board):
        tasks[task] = [
            {
                "objective": row["label"],
                "objective_name": row["objective"],
                "model": row["model_label"],
                "n_seeds": int(row["n_seeds"]),
                "n_failed": int(row["n_failed"]),
                "metrics": {m: {s: _num(row[f"{m}.{s}"]) for s in STATS} for m, _ in metrics},
                "avg_rank": _num(row["avg_rank"]),
                "n_ranked": int(row["n_ranked"]),
            }
            for _, row in rows.iterrows()
        ]
    doc = {
        "metrics": {m: {"direction": d, "arrow": ARROWS[d]} for m, d in metrics},
        "interval": "95% Student t over seeds: t(0.975, n-1) * sd / sqrt(n); null with one seed",
        "budget": board.attrs.get("budget"),
        "tasks": tasks,
        "across_tasks": [
            {
                "objective": r["label"],
                "model": r["model_label"],
                "n_tasks": int(r["n_tasks"]),
                "avg_rank": _num(r["avg_rank_all_tasks"]),
            }
            for _, r in across_tasks(board).iterrows()
        ],
    }
    if problems is not None:
        doc["problems"] = [
            {k: (None if pd.isna(v) else (int(v) if k == "seed" else str(v))) for k, v in r.items()}
            for _, r in problems.iterrows()
        ]
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)


# --- rich ------------------------------------------------------------------------------------


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
        One per task, one across tasks when there are several, and one of the skipped and
        failed cells. Every cell is a literal :class:`rich.text.Text`, so brackets in labels
        are shown, not read as markup.
    """
    metrics = board_metrics(board)
    tables: list[Table] = []
    for task, rows in iter_tasks(board):
        shown = shown_metrics(rows, metrics)
        table = Table(title=Text(task))
        table.add_column("objective")
        table.add_column("model")
        table.add_column("seeds", justify="right")
        for m, d in shown:
            table.add_column(Text(metric_header(m, d)), justify="right")
        table.add_column("avg rank", justify="right")
        for _, row in rows.iterrows():
            cells = [Text(str(row["label"])), Text(str(row["model_label"])), Text(seeds_text(row))]
            for m, d in shown:
                text, best = metric_cell(row, m, d)
                cells.append(Text(text, style="bold" if best else ""))
            cells.append(Text(format_rank(row["avg_rank"])))
            table.add_row(*cells)
        tables.append(table)
    if tables:
        # The note once, under the last task's table, rather than repeated under each.
        tables[-1].caption = Text(INTERVAL_NOTE)
        tables[-1].caption_justify = "left"
    if board["task_label"].nunique() > 1:
        table = Table(title="Average rank across tasks")
        for name in ("objective", "model", "tasks", "avg rank"):
            table.add_column(name, justify="right" if name in ("tasks", "avg rank") else "left")
        for _, r in across_tasks(board).iterrows():
            table.add_row(
                Text(str(r["label"])),
                Text(str(r["model_label"])),
                Text(str(int(r["n_tasks"]))),
                Text(format_rank(r["avg_rank_all_tasks"])),
            )
        tables.append(table)
    if problems is not None and len(problems):
        table = Table(title="Skipped and failed cells")
        for name in ("task", "objective", "model", "seed", "status", "reason"):
            table.add_column(name, justify="right" if name == "seed" else "left")
        for _, r in problems.iterrows():
            table.add_row(
                *(
                    Text(str(r[c]))
                    for c in ("task_label", "label", "model_label", "seed", "status")
                ),
                Text(reason_summary(r["reason"])),
            )
        tables.append(table)
    return tables
