"""Leaderboards from a tidy results table: per-task means, 95% intervals over seeds, ranks.

The input is the harness's tidy table, one row per (cell, step, metric). A leaderboard keeps
each ``ok`` cell's rows at its last evaluated step, averages each metric over seeds for every
(task label, objective label, model label), and ranks the configurations within each task by
each metric's declared direction, so that only differences the 95% intervals separate change
a rank (:func:`benchmark_core.reports.intervals.interval_ranks`). The formats
(:func:`to_markdown`, :func:`to_csv`, :func:`to_json`, :func:`to_rich`, :func:`to_html`) are
re-exported here.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from benchmark_core.reports.cells import (
    CONFIG,
    OK,
    SKIPPED,
    TRAINING_SOURCE,
    final_rows,
    latest_runs,
    one_row_per_cell,
    problem_cells,
)
from benchmark_core.reports.formatting import ARROWS, board_metrics, format_estimate, format_rank
from benchmark_core.reports.formatting_data import to_csv, to_json
from benchmark_core.reports.formatting_html import to_html
from benchmark_core.reports.formatting_text import to_markdown, to_rich
from benchmark_core.reports.intervals import interval95, interval_ranks
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

DIRECTIONS = ("min", "max", "none")


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
    cells = one_row_per_cell(final)
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
    headline: Mapping[str, Sequence[str]] | None = None,
    average_rank: bool = False,
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
        The metrics to show for every task, in this order. By default a task shows its
        ``headline`` metrics, and a task without any every metric recorded at the final step
        except the objectives' own training losses, which are not comparable across
        objectives.
    models, objectives : iterable of str, optional
        Keep these models / objectives, each by component name or full label.
    budget : str, optional
        Keep one run profile. Required when the table mixes profiles, whose numbers are not
        comparable.
    headline : mapping of str to sequence of str, optional
        Task component name -> the metrics its table shows by default, in that order (what
        :attr:`benchmark_core.contract.task.Task.headline_metrics` declares). Those without
        values are left out; a task none of whose headline metrics has values shows all.
    average_rank : bool
        Add ``avg_rank``, the mean over a task's shown ranked metrics of the midpoints of each
        rank range, and ``n_ranked``. Off by default: correlated metrics (several forms of
        one divergence) would outvote the trade-off the others show.

    Returns
    -------
    pandas.DataFrame
        Columns ``task_label, label, model_label, task, objective, model, budget, n_seeds,
        n_failed``; for each metric ``<metric>.mean``, ``<metric>.ci95`` (the 95% half-width
        over seeds, NaN with one seed), ``<metric>.n``, ``<metric>.rank`` and
        ``<metric>.rank_hi`` (the best and worst rank within the task that the intervals
        allow; see :func:`~benchmark_core.reports.intervals.interval_ranks`; NaN for unranked
        metrics). Ranks are never compared across tasks. Rows are sorted by task, then by the
        task's first ranked metric. ``attrs`` holds ``metrics``, ``directions``, ``budget`` and
        ``task_metrics`` (task label -> the metrics its table shows).

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
    per_task = _task_metrics(final, metrics, headline)
    names = list(dict.fromkeys(m for shown in per_task.values() for m in shown))
    if metrics is not None:
        names = list(dict.fromkeys(_as_list(metrics) or []))
    board = _config_rows(chosen)
    for m in names:
        board = board.join(_summary(final, m))
        board[f"{m}.n"] = board[f"{m}.n"].fillna(0).astype(int)
        board[f"{m}.rank"], board[f"{m}.rank_hi"] = _ranks(board, m, dirs.get(m, "none"))
        # Consolidate: column by column, a board of many metrics (values at several
        # temperatures) would fragment into hundreds of blocks, and pandas warns.
        board = board.copy()
    board = board.reset_index()
    shown = {t: per_task.get(t, names) for t in board["task_label"].unique()}
    if average_rank:
        board = _average_ranks(board, shown, dirs)
    board = _order(board, shown, dirs, by_average=average_rank)
    board.attrs.update(
        metrics=names,
        directions={m: dirs.get(m, "none") for m in names},
        budget=budgets[0] if budgets else None,
        task_metrics=shown,
    )
    return board


def _task_metrics(
    final: pd.DataFrame,
    metrics: Iterable[str] | None,
    headline: Mapping[str, Sequence[str]] | None,
) -> dict[str, list[str]]:
    """Task label -> the metrics its table shows: those asked for, its headline, or all."""
    is_eval = final["metric"].notna() & (final["metric_source"] != TRAINING_SOURCE)
    if metrics is not None:
        names = list(dict.fromkeys(_as_list(metrics) or []))
        absent = [m for m in names if m not in set(final["metric"].dropna())]
        if absent:
            warnings.warn(f"no final values for metrics {absent}", stacklevel=3)
    out: dict[str, list[str]] = {}
    for (label, name), rows in final.groupby(["task_label", "task"]):
        if metrics is not None:
            out[label] = [m for m in names if m in set(rows["metric"])]
            continue
        evals = sorted(set(rows.loc[is_eval.loc[rows.index], "metric"]))
        declared = [m for m in (headline or {}).get(name, ()) if m in evals]
        out[label] = declared or evals
    return out


def _config_rows(chosen: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (skipped cells left out) with its ok and failed seeds."""
    cells = one_row_per_cell(latest_runs(chosen))
    cells = cells[cells["status"] != SKIPPED]
    info = ["task", "objective", "model", "budget"]
    board = cells.groupby(CONFIG, sort=True)[info].first()
    board["n_seeds"] = cells[cells["status"] == OK].groupby(CONFIG)["seed"].nunique()
    board["n_failed"] = cells[cells["status"] != OK].groupby(CONFIG)["seed"].size()
    board[["n_seeds", "n_failed"]] = board[["n_seeds", "n_failed"]].fillna(0).astype(int)
    return board


def _summary(final: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per configuration: mean, 95% half-width and number of seeds of one metric."""
    # One number per cell; a metric reported twice at the final step is averaged first.
    per_cell = final[final["metric"] == metric].groupby([*CONFIG, "cell_id"])["value"].mean()
    return pd.DataFrame(
        [(*key, *interval95(v)) for key, v in per_cell.groupby(level=CONFIG)],
        columns=[*CONFIG, f"{metric}.mean", f"{metric}.ci95", f"{metric}.n"],
    ).set_index(CONFIG)


def _ranks(board: pd.DataFrame, metric: str, direction: str) -> tuple[pd.Series, pd.Series]:
    """Best and worst rank of each row within its task; NaN for an unranked metric."""
    nan = pd.Series(np.nan, index=board.index)
    if direction == "none":
        return nan, nan.copy()
    best, worst = nan.copy(), nan.copy()
    for _, rows in board.groupby(level="task_label"):
        b, w = interval_ranks(rows[f"{metric}.mean"], rows[f"{metric}.ci95"], direction)
        best.loc[rows.index], worst.loc[rows.index] = b, w
    return best, worst


def _average_ranks(
    board: pd.DataFrame, shown: Mapping[str, list[str]], dirs: Mapping[str, str]
) -> pd.DataFrame:
    """Each row's mean rank (midpoint of each range) over its task's shown ranked metrics."""
    avg, count = [], []
    for _, r in board.iterrows():
        ranked = [m for m in shown[r["task_label"]] if dirs.get(m, "none") != "none"]
        mids = [(r[f"{m}.rank"] + r[f"{m}.rank_hi"]) / 2 for m in ranked]
        mids = [x for x in mids if not pd.isna(x)]
        avg.append(float(np.mean(mids)) if mids else np.nan)
        count.append(len(mids))
    return board.assign(avg_rank=avg, n_ranked=count)


def _order(
    board: pd.DataFrame,
    shown: Mapping[str, list[str]],
    dirs: Mapping[str, str],
    by_average: bool,
) -> pd.DataFrame:
    """Sort by task, then by the average rank or the task's first ranked metric."""
    # Ties keep a natural order, name[k=0.9] before name[k=0.99].
    board = board.iloc[
        sorted(
            range(len(board)),
            key=lambda i: natural_key(f"{board['label'].iat[i]} {board['model_label'].iat[i]}"),
        )
    ]
    key = pd.Series(np.nan, index=board.index)
    for task, rows in board.groupby("task_label"):
        if by_average:
            key.loc[rows.index] = rows["avg_rank"]
            continue
        first = next((m for m in shown[task] if dirs.get(m, "none") != "none"), None)
        if first is not None:
            sign = 1.0 if dirs[first] == "min" else -1.0
            key.loc[rows.index] = sign * rows[f"{first}.mean"]
    ordered = board.assign(_key=key).sort_values(
        ["task_label", "_key"], na_position="last", kind="stable"
    )
    return ordered.drop(columns="_key").reset_index(drop=True)
