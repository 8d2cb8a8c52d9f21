"""Leaderboards from a tidy results table: per-task means, 95% intervals over seeds, ranks.

The input is the harness's tidy table, one row per (cell, step, metric). A leaderboard keeps
each ``ok`` cell's rows at its last evaluated step, averages each metric over seeds for every
(task label, objective label, model label), and ranks the configurations within each task by
each metric's declared direction. The formatters (Markdown, CSV, JSON and rich in
:mod:`benchmark_core.reports.formatting`, HTML in :mod:`benchmark_core.reports.formatting_html`) are
re-exported here.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from benchmark_core.reports.formatting import (
    ARROWS,
    board_metrics,
    format_estimate,
    format_rank,
    to_csv,
    to_json,
    to_markdown,
    to_rich,
)
from benchmark_core.reports.formatting_html import to_html
from benchmark_core.reports.labels import natural_key

__all__ = [
    "ARROWS",
    "CONFIG",
    "board_metrics",
    "final_rows",
    "format_estimate",
    "format_rank",
    "interval95",
    "latest_runs",
    "leaderboard",
    "natural_key",
    "problem_cells",
    "to_csv",
    "to_html",
    "to_json",
    "to_markdown",
    "to_rich",
]

OK = "ok"
SKIPPED = "skipped"
DIRECTIONS = ("min", "max", "none")
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


def _cells(df: pd.DataFrame) -> pd.DataFrame:
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
    cells = _cells(latest_runs(df))
    bad = cells[cells["status"] != OK].rename(columns={"error": "reason"})
    return (
        bad[cols]
        .sort_values(["status", "task_label", "label", "model_label", "seed"], kind="stable")
        .reset_index(drop=True)
    )


# --- statistics ------------------------------------------------------------------------------


def interval95(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean and 95% Student-t interval half-width of per-seed values.

    Parameters
    ----------
    values : iterable of float
        One value per seed; NaNs are ignored.

    Returns
    -------
    (float, float, int)
        ``(mean, half_width, n)`` with ``half_width = t(0.975, n - 1) * sd / sqrt(n)`` and
        ``sd`` the sample standard deviation; the half-width is NaN when ``n < 2`` (one seed
        says nothing about seed-to-seed spread) and the mean is NaN when ``n == 0``.
    """
    x = np.asarray([v for v in values if not pd.isna(v)], dtype=float)
    n = len(x)
    if n == 0:
        return float("nan"), float("nan"), 0
    if n == 1:
        return float(x[0]), float("nan"), 1
    half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return float(x.mean()), float(half), n


def _round_sig(x: float, digits: int = 12) -> float:
    return float(f"{x:.{digits}g}") if np.isfinite(x) else x


# --- selection -------------------------------------------------------------------------------


def _as_list(names: str | Iterable[str] | None) -> list[str] | None:
    # A bare string would otherwise be iterated character by character.
    if names is None:
        return None
    return [names] if isinstance(names, str) else list(names)


def _select(
    df: pd.DataFrame,
    task: str | None,
    models: Iterable[str] | None,
    objectives: Iterable[str] | None,
    budget: str | None,
) -> pd.DataFrame:
    """Filter rows; each name matches a component name or a full label."""
    keep = pd.Series(True, index=df.index)
    if task is not None:
        keep &= (df["task"] == task) | (df["task_label"] == task)
    for names, name_col, label_col in (
        (models, "model", "model_label"),
        (objectives, "objective", "label"),
    ):
        chosen = _as_list(names)
        if chosen is not None:
            keep &= df[name_col].isin(chosen) | df[label_col].isin(chosen)
    if budget is not None:
        keep &= df["budget"] == budget
    return df[keep]


def _check_directions(directions: Mapping[str, str]) -> dict[str, str]:
    bad = {m: d for m, d in directions.items() if d not in DIRECTIONS}
    if bad:
        raise ValueError(f"metric directions must be one of {DIRECTIONS}; got {bad}")
    return dict(directions)


def _one_seed_each(final: pd.DataFrame) -> pd.DataFrame:
    """Drop all but the latest cell of a configuration and seed that ran more than once.

    Two cells with the same configuration and seed but different ``cell_id`` (a plugin was
    upgraded between runs) would otherwise count as two seeds and shrink the interval.
    """
    cells = _cells(final)
    cells["_started"] = pd.to_datetime(
        cells["started_at"], utc=True, errors="coerce", format="ISO8601"
    )
    cells = cells.sort_values("_started", kind="stable", na_position="first")
    dup = cells.duplicated([*CONFIG, "budget", "seed"], keep="last")
    if dup.any():
        names = sorted(
            {f"{r.label} on {r.task_label} seed {r.seed}" for r in cells[dup].itertuples()}
        )
        warnings.warn(
            "these configurations ran more than once with the same seed; only the latest run "
            f"counts: {', '.join(names)}",
            stacklevel=3,
        )
        final = final[~final["cell_id"].isin(cells.loc[dup, "cell_id"])]
    return final


# --- the leaderboard -------------------------------------------------------------------------


def leaderboard(
    df: pd.DataFrame,
    directions: Mapping[str, str],
    task: str | None = None,
    metrics: Iterable[str] | None = None,
    models: Iterable[str] | None = None,
    objectives: Iterable[str] | None = None,
    budget: str | None = None,
) -> pd.DataFrame:
    """Per task, one row per (objective label, model label): mean ± 95% interval and ranks.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table.
    directions : mapping of str to str
        Each metric's direction: ``"min"`` (lower is better), ``"max"`` or ``"none"`` (not
        ranked). A metric missing from the mapping is not ranked.
    task : str, optional
        Keep one task, by component name (all its configurations) or full task label.
    metrics : iterable of str, optional
        The metrics to show, in this order. By default every metric recorded at the final
        step except the objectives' own training losses, which are not comparable across
        objectives.
    models, objectives : iterable of str, optional
        Keep these models / objectives, each by component name or full label.
    budget : str, optional
        Keep one run profile. Required when the table mixes profiles, whose numbers are not
        comparable.

    Returns
    -------
    pandas.DataFrame
        Columns ``task_label, label, model_label, task, objective, model, budget, n_seeds,
        n_failed``; for each metric ``<metric>.mean``, ``<metric>.ci95`` (the 95% half-width
        over seeds, NaN with one seed), ``<metric>.n`` and ``<metric>.rank`` (within the task,
        ties averaged, NaN for unranked metrics); then ``avg_rank`` (mean of the ranks a row
        has), ``n_ranked`` (how many ranks went into it), ``avg_rank_all_tasks`` (mean of
        ``avg_rank`` over tasks for this objective and model) and ``n_tasks``. Rows are sorted
        by task and average rank. ``attrs`` holds ``metrics``, ``directions`` and ``budget``.

    Notes
    -----
    Only ``ok`` cells count. A configuration with failed seeds keeps its row, with the
    failures counted in ``n_failed``, so that a run that diverged on two seeds out of three
    cannot pass for a clean one; a configuration with no ``ok`` seed has NaN means and no
    rank. Skipped cells (incompatible combinations) are in :func:`problem_cells` only.
    """
    dirs = _check_directions(directions)
    chosen = _select(df, task, models, objectives, budget)
    budgets = sorted(chosen["budget"].dropna().unique())
    if len(budgets) > 1:
        raise ValueError(f"the results mix budgets {budgets}; pass budget= to choose one")
    final = _one_seed_each(final_rows(chosen))
    if metrics is None:
        is_eval = final["metric"].notna() & (final["metric_source"] != TRAINING_SOURCE)
        names = sorted(final.loc[is_eval, "metric"].unique())
    else:
        names = list(dict.fromkeys(_as_list(metrics) or []))
        absent = [m for m in names if m not in set(final["metric"].dropna())]
        if absent:
            warnings.warn(f"no final values for metrics {absent}", stacklevel=2)

    cells = _cells(latest_runs(chosen))
    cells = cells[cells["status"] != SKIPPED]
    info = ["task", "objective", "model", "budget"]
    board = cells.groupby(CONFIG, sort=True)[info].first()
    board["n_seeds"] = cells[cells["status"] == OK].groupby(CONFIG)["seed"].nunique()
    board["n_failed"] = cells[cells["status"] != OK].groupby(CONFIG)["seed"].size()
    board[["n_seeds", "n_failed"]] = board[["n_seeds", "n_failed"]].fillna(0).astype(int)

    rank_cols = []
    for m in names:
        # One number per cell; a metric reported twice at the final step is averaged first.
        per_cell = final[final["metric"] == m].groupby([*CONFIG, "cell_id"])["value"].mean()
        summary = pd.DataFrame(
            [(*key, *interval95(v)) for key, v in per_cell.groupby(level=CONFIG)],
            columns=[*CONFIG, f"{m}.mean", f"{m}.ci95", f"{m}.n"],
        ).set_index(CONFIG)
        board = board.join(summary)
        board[f"{m}.n"] = board[f"{m}.n"].fillna(0).astype(int)
        direction = dirs.get(m, "none")
        if direction == "none":
            board[f"{m}.rank"] = np.nan
        else:
            # Means equal in exact arithmetic can differ in the last bits (3.2 vs
            # 3.1999999999999997); rounding to 12 significant figures lets them tie.
            key = board[f"{m}.mean"].map(_round_sig)
            board[f"{m}.rank"] = key.groupby(level="task_label").rank(
                method="average", ascending=direction == "min", na_option="keep"
            )
            rank_cols.append(f"{m}.rank")

    board = board.reset_index()
    board["avg_rank"] = board[rank_cols].mean(axis=1) if rank_cols else np.nan
    board["n_ranked"] = board[rank_cols].notna().sum(axis=1) if rank_cols else 0
    across = board.groupby(["label", "model_label"])["avg_rank"]
    board["avg_rank_all_tasks"] = across.transform("mean")
    board["n_tasks"] = across.transform("count")
    # Ties in average rank keep a natural order, jspi[pi=0.9] before jspi[pi=0.99].
    board = board.iloc[
        sorted(
            range(len(board)),
            key=lambda i: natural_key(f"{board['label'].iat[i]} {board['model_label'].iat[i]}"),
        )
    ]
    board = board.sort_values(
        ["task_label", "avg_rank"], na_position="last", kind="stable"
    ).reset_index(drop=True)
    board.attrs.update(
        metrics=names,
        directions={m: dirs.get(m, "none") for m in names},
        budget=budgets[0] if budgets else None,
    )
    return board
