"""Render a leaderboard as CSV and JSON: every number unrounded, for other programs to read.

Both may end up in front of a person: a CSV in a spreadsheet, which runs a text field that
starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and either on a terminal. Text fields of
the CSV are defused (:func:`benchmark_core.reports.safe_text.csv_text`; numbers, negative ones
included, stay numbers), and the JSON escapes every control character as ``\\uXXXX``, which
any JSON reader turns back into the same string.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd

from benchmark_core.reports.formatting import (
    ARROWS,
    STATS,
    board_metrics,
    is_finite,
    iter_tasks,
    metric_header,
)
from benchmark_core.reports.safe_text import csv_text

# What json.dumps(ensure_ascii=False) leaves raw but a terminal acts on: DEL, the C1 controls
# and the bidirectional controls.
_JSON_RAW = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


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
        ``... n``, ``... rank`` and ``... rank_hi`` so that the direction travels with the
        numbers. Text fields that a spreadsheet would run as a formula start with ``'``.
    """
    renames = {}
    for metric, direction in board_metrics(board):
        for stat in STATS:
            renames[f"{metric}.{stat}"] = f"{metric_header(metric, direction)} {stat}"
    out = board.rename(columns=renames)
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):  # numbers, negative ones too, stay
            out[col] = out[col].map(csv_text)
    out.columns = [csv_text(str(c)) for c in out.columns]
    return out.to_csv(index=False, lineterminator="\n")


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
        ``ci95``, ``n``, ``rank``, ``rank_hi``), ``task_metrics`` (the metrics each task's table
        shows) and ``problems``. Missing numbers are null.
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
            }
            | (
                {"avg_rank": _num(row["avg_rank"]), "n_ranked": int(row["n_ranked"])}
                if "avg_rank" in row
                else {}
            )
            for _, row in rows.iterrows()
        ]
    doc = {
        "metrics": {m: {"direction": d, "arrow": ARROWS[d]} for m, d in metrics},
        "interval": "95% Student t over seeds: t(0.975, n-1) * sd / sqrt(n); null with one seed",
        "budget": board.attrs.get("budget"),
        "tasks": tasks,
        "task_metrics": board.attrs.get("task_metrics", {}),
    }
    if problems is not None:
        doc["problems"] = [
            {k: (None if pd.isna(v) else (int(v) if k == "seed" else str(v))) for k, v in r.items()}
            for _, r in problems.iterrows()
        ]
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
