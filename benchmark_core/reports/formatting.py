"""What every rendering of a leaderboard shares: column conventions, numbers, ranks, reasons.

The formats themselves are in :mod:`benchmark_core.reports.formatting_text` (Markdown and
rich), :mod:`benchmark_core.reports.formatting_data` (CSV and JSON) and
:mod:`benchmark_core.reports.formatting_html`.

The board's column conventions live here so that ``leaderboard.py`` can import them without
a cycle: fixed columns (``task_label``, ``label``, ``model_label``, ``n_seeds``, ...) and, for
each metric, ``"<metric>.mean"``, ``"<metric>.ci95"``, ``"<metric>.n"`` and ``"<metric>.rank"``.

Every label, parameter and reason string in a board comes from a third-party plugin or from a
user's command line, so each format escapes them for its own medium: HTML entities for HTML,
code spans for Markdown, literal :class:`rich.text.Text` for the terminal (rich would otherwise
read ``name[key=0.5]`` as markup).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pandas as pd

ARROWS = {"min": "↓", "max": "↑", "none": ""}
DIRECTION_WORDS = {"min": "lower is better", "max": "higher is better", "none": "not ranked"}
STATS = ("mean", "ci95", "n", "rank", "rank_hi")

INTERVAL_NOTE = (
    "Mean ± 95% interval over seeds (Student t: t(0.975, n−1)·sd/√n; it reflects seed-to-seed "
    "variation only). In parentheses, the rank within the task by that metric's direction "
    "(↓ lower is better, ↑ higher is better): a row ranks ahead of another only when their "
    "intervals do not overlap, so rows the seeds cannot tell apart share a range of ranks "
    "(“1–3”). Bold: ahead of every other row. Ranks are not comparable across tasks. "
    "“± n/a”: one seed, so no interval and no rank that separates it. Seeds that failed are "
    "left out of the means and counted in the seeds column."
)
AVERAGE_RANK_NOTE = (
    "avg rank: the mean of the midpoints of this row's rank ranges over the metrics shown; it "
    "weighs every metric equally, so metrics that measure nearly the same thing outvote the "
    "others. Read it beside the per-metric ranks."
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


def shown_metrics(board: pd.DataFrame, task: str, rows: pd.DataFrame) -> list[tuple[str, str]]:
    """Return the metrics one task's table shows, each with its direction.

    Parameters
    ----------
    board : pandas.DataFrame
        A leaderboard; ``attrs["task_metrics"]`` names each task's metrics (its headline ones
        by default), else every metric of the board is a candidate.
    task : str
        The task label.
    rows : pandas.DataFrame
        The task's rows.

    Returns
    -------
    list of (str, str)
        The task's metrics that have at least one value among ``rows``.
    """
    metrics = board_metrics(board)
    chosen = board.attrs.get("task_metrics", {}).get(task)
    if chosen is not None:
        directions = dict(metrics)
        metrics = [(m, directions.get(m, "none")) for m in chosen if f"{m}.n" in rows]
    # A task shows only the metrics it has values for: a column of dashes would only hide
    # the ones it has.
    return [(m, d) for m, d in metrics if rows[f"{m}.n"].sum() > 0]


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


def format_rank(best: float, worst: float | None = None) -> str:
    """Format a rank or a range of ranks: ``"1"``, ``"2–4"``, ``"1.67"``; ``"–"`` if none."""
    if not is_finite(best):
        return "–"
    text = f"{float(best):.2f}".rstrip("0").rstrip(".")
    if worst is not None and is_finite(worst) and float(worst) != float(best):
        text += "–" + f"{float(worst):.2f}".rstrip("0").rstrip(".")
    return text


def seeds_text(row: pd.Series) -> str:
    """Return the seeds column's text: ``"3"``, or ``"2 (1 failed)"``."""
    failed = int(row["n_failed"])
    return f"{int(row['n_seeds'])}" + (f" ({failed} failed)" if failed else "")


def metric_cell(row: pd.Series, metric: str, direction: str) -> tuple[str, bool]:
    """Return one metric cell's text and whether it is clearly the best in its task.

    Parameters
    ----------
    row : pandas.Series
        A leaderboard row.
    metric, direction : str
        The metric and its direction.

    Returns
    -------
    (str, bool)
        ``"1.10 ± 0.25 (1–2)"`` (no rank for an unranked metric), and whether the row ranks
        first whatever the noise: its interval is better than every other row's.
    """
    text = format_estimate(row[f"{metric}.mean"], row[f"{metric}.ci95"])
    best, worst = row[f"{metric}.rank"], row.get(f"{metric}.rank_hi", row[f"{metric}.rank"])
    if direction != "none" and is_finite(row[f"{metric}.mean"]):
        text += f" ({format_rank(best, worst)})"
    clear = is_finite(best) and is_finite(worst) and float(best) == float(worst) == 1.0
    return text, clear


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
    """Return a column header with the direction arrow: ``"loss ↓"``."""
    return f"{metric} {ARROWS[direction]}".rstrip()
