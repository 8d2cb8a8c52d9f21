"""The cells of a results table: the latest run of each, their final rows, the problem ones.

A results table has one row per (cell, step, metric value); these helpers reduce it to what a
leaderboard, a figure or a report reads.
"""

from __future__ import annotations

import pandas as pd

OK = "ok"
SKIPPED = "skipped"
#: The metric_source under which the harness logs the objective's own training loss. Losses
#: of different objectives are different quantities, so they are not compared by default.
TRAINING_SOURCE = "objective"
#: What makes one leaderboard row: a task configuration, an objective configuration, a model.
CONFIG = ["task_label", "label", "model_label"]


# --- cells -----------------------------------------------------------------------------------


def latest_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Keep only the rows of the latest run of each ``cell_id``.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table.

    Returns
    -------
    pandas.DataFrame
        The rows whose ``started_at`` is the latest for their cell. A cell that failed and was
        rerun may appear twice when tables from two runs are concatenated; the older attempt
        must count neither as a seed nor as a problem.
    """
    if df.empty or (df.groupby("cell_id")["started_at"].nunique() <= 1).all():
        return df  # the usual case: one run per cell, nothing to parse
    started = pd.to_datetime(df["started_at"], utc=True, errors="coerce", format="ISO8601")
    latest = started.groupby(df["cell_id"]).transform("max")
    return df[(started == latest) | latest.isna()]


def one_row_per_cell(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: its configuration, seed, budget, status, reason and start time."""
    cols = [
        *CONFIG,
        "task",
        "objective",
        "model",
        "seed",
        "budget",
        "status",
        "error",
        "started_at",
    ]
    if df.empty:
        return pd.DataFrame(columns=["cell_id", *cols])
    return df.groupby("cell_id", sort=False)[cols].first().reset_index()


def final_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Return each ``ok`` cell's rows at its last evaluated step.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table (one row per cell, step and metric value).

    Returns
    -------
    pandas.DataFrame
        The rows of cells whose status is ``ok``, at the largest step at which a metric other
        than the training loss was recorded (or the largest step at all, for a cell that only
        logged its loss). Only the latest run of each ``cell_id`` is kept. The index is reset.
    """
    runs = latest_runs(df)
    ok = runs[runs["status"] == OK]
    if ok.empty:
        return ok.reset_index(drop=True)
    # Evaluation rows decide the final step: a loss logged after the last evaluation must not
    # hide the evaluation.
    is_eval = ok["metric"].notna() & (ok["metric_source"] != TRAINING_SOURCE)
    last_eval = ok["step"].where(is_eval).groupby(ok["cell_id"]).transform("max")
    last_any = ok.groupby("cell_id")["step"].transform("max")
    last = last_eval.fillna(last_any)
    return ok[ok["step"] == last].reset_index(drop=True)


def problem_cells(df: pd.DataFrame) -> pd.DataFrame:
    """List the cells that were skipped or did not finish, with their status and reason.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table.

    Returns
    -------
    pandas.DataFrame
        One row per cell whose (latest) status is not ``ok``, with columns ``task_label``,
        ``label``, ``model_label``, ``seed``, ``budget``, ``status``, ``reason`` (the skip
        reason or the traceback) and ``cell_id``; sorted by status, task, objective, seed.
    """
    cols = ["task_label", "label", "model_label", "seed", "budget", "status", "reason", "cell_id"]
    cells = one_row_per_cell(latest_runs(df))
    bad = cells[cells["status"] != OK].rename(columns={"error": "reason"})
    return (
        bad[cols]
        .sort_values(["status", "task_label", "label", "model_label", "seed"], kind="stable")
        .reset_index(drop=True)
    )
