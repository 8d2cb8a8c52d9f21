"""Which figures a report shows by default, chosen from what a results table holds.

For each task (and budget, when the table mixes them) the report draws:

- the training curves of the objectives' training losses and the main metrics (those with a
  direction, so the ones a leaderboard ranks);
- a metric against each objective or model parameter that takes several values, for the first
  main metrics;
- (:func:`frontier_figures`, a report's headline figures) the quality–coverage frontier for
  each (coverage, quality) pair the caller passes whose two metrics both have final values.

Nothing here knows a particular plugin: the choice follows the metrics' declared directions,
the sources that logged them and the parameters recorded in each cell.

The frontier pairs are declarations of the metric plugins
(:attr:`benchmark_core.contract.metric.Metric.frontier`), and this module reads results only,
never the plugin registry: the command line (:mod:`benchmark_core.cli.reports`) gathers the
pairs from the registry and passes them in. They are not stored with the results because they
say how to show two metrics, not what was measured: a report of results written before a
metric declared its pair (or by a version that declared another) still draws the pairs the
installed plugins declare, and no results need rewriting when a declaration changes.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from benchmark_core.reports.frontier import frontier_judgement
from benchmark_core.reports.labels import natural_key
from benchmark_core.reports.leaderboard import TRAINING_SOURCE, final_rows, latest_runs
from benchmark_core.reports.plots import plot_curves, plot_frontier, plot_sweep
from benchmark_core.reports.reference_curve import Reference

#: Parameter roles whose swept values can share one figure (a task parameter changes the task
#: label, and each task is drawn on its own).
SWEEP_ROLES = ("objective", "model")
MAX_CURVE_PANELS = 4
MAX_SWEEP_METRICS = 2


def main_metrics(df: pd.DataFrame, directions: Mapping[str, str]) -> list[str]:
    """Return the evaluation metrics that have a direction (the ranked ones), sorted.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table.
    directions : mapping of str to str
        Each metric's direction.

    Returns
    -------
    list of str
        Metrics logged by a metric plugin (not an objective's training loss) whose direction
        is ``"min"`` or ``"max"``; when there are none, every evaluation metric.
    """
    is_eval = df["metric"].notna() & (df["metric_source"] != TRAINING_SOURCE)
    # Values at other temperatures (name@T=t) after the plain ones: they refine a metric
    # that is already shown, and would otherwise crowd it out of the first panels.
    names = sorted(set(df.loc[is_eval, "metric"]), key=lambda m: ("@" in m, natural_key(m)))
    ranked = [m for m in names if directions.get(m, "none") in ("min", "max")]
    return ranked or names


def training_losses(df: pd.DataFrame) -> list[str]:
    """Return the metrics logged by objectives (their training losses), sorted."""
    rows = df[df["metric_source"] == TRAINING_SOURCE]
    return sorted(set(rows["metric"].dropna()), key=natural_key)


def parameter_values(df: pd.DataFrame) -> dict[str, list[Any]]:
    """Return each objective and model parameter with its distinct values among ``ok`` cells.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table.

    Returns
    -------
    dict of str to list
        ``{"objective.lr": [0.02, 0.05], "model.init_scale": [1.0]}``, values sorted, keys
        qualified by role so that an objective and a model parameter of the same name stay
        apart.
    """
    runs = latest_runs(df)
    params = runs.loc[runs["status"] == "ok"].groupby("cell_id")["params"].first()
    found: dict[str, set[str]] = {}
    for text in params.dropna():
        p = json.loads(text)
        for role in SWEEP_ROLES:
            for name, value in (p.get(role) or {}).items():
                found.setdefault(f"{role}.{name}", set()).add(json.dumps(value, sort_keys=True))
    return {
        key: [json.loads(v) for v in sorted(values, key=natural_key)]
        for key, values in sorted(found.items())
    }


def swept_parameters(df: pd.DataFrame) -> list[str]:
    """Return the qualified parameters (``"objective.lr"``) that take several values within
    one component: two objectives with different default learning rates are not a sweep."""
    runs = latest_runs(df)
    cells = runs.loc[runs["status"] == "ok"].groupby("cell_id")[["params", *SWEEP_ROLES]].first()
    seen: dict[tuple[str, str, str], set[str]] = {}
    for row in cells.dropna(subset=["params"]).itertuples():
        p = json.loads(row.params)
        for role in SWEEP_ROLES:
            for name, value in (p.get(role) or {}).items():
                key = (role, getattr(row, role), name)
                seen.setdefault(key, set()).add(json.dumps(value, sort_keys=True))
    swept = {f"{role}.{name}" for (role, _, name), values in seen.items() if len(values) > 1}
    return sorted(swept)


def _try(
    figures: dict[str, Figure], notes: list[str], caption: str, draw: Callable[[], Figure]
) -> None:
    # A figure that cannot be drawn is a note in the report, never a failed report.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            figures[caption] = draw()
        except ValueError as exc:
            notes.append(f"{caption}: not drawn ({exc})")
    notes += [f"{caption}: {w.message}" for w in caught]


def _parts(df: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """Each task (per budget, when the table mixes them) with a caption prefix, in order."""
    budgets = sorted(df["budget"].dropna().unique(), key=natural_key)
    for budget in budgets:
        in_budget = df[df["budget"] == budget]
        ok = in_budget[in_budget["status"] == "ok"]
        for task in sorted(ok["task_label"].dropna().unique(), key=natural_key):
            where = f"{task}" + (f", {budget} budget" if len(budgets) > 1 else "")
            yield where, in_budget[in_budget["task_label"] == task]


def default_figures(
    df: pd.DataFrame, directions: Mapping[str, str]
) -> tuple[dict[str, Figure], list[str]]:
    """Choose and draw a report's training curves and parameter sweeps.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table (any number of tasks and budgets).
    directions : mapping of str to str
        Each metric's direction.

    Returns
    -------
    (dict of str to Figure, list of str)
        The figures under their captions, in reading order (per task: curves, then sweeps),
        and notes on figures that could not be drawn or drew with a warning.
    """
    figures: dict[str, Figure] = {}
    notes: list[str] = []
    for where, part in _parts(df):
        metrics = main_metrics(part, directions)
        curves = (training_losses(part) + metrics)[:MAX_CURVE_PANELS]
        if curves:
            _try(
                figures,
                notes,
                f"{where}: training curves of {', '.join(curves)}",
                lambda p=part, c=curves: plot_curves(p, c, directions),
            )
        for param in swept_parameters(part):
            for metric in metrics[:MAX_SWEEP_METRICS]:
                name = param.partition(".")[2]
                _try(
                    figures,
                    notes,
                    f"{where}: final {metric} against {name}",
                    lambda p=part, m=metric, q=param: plot_sweep(p, m, q, directions),
                )
    return figures, notes


def frontier_figures(
    df: pd.DataFrame,
    directions: Mapping[str, str],
    pairs: Sequence[tuple[str, str]],
    references: Mapping[str, Reference] | None = None,
) -> tuple[dict[str, Figure], list[str]]:
    """Draw the quality–coverage frontier of each pair whose two metrics have final values.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table (any number of tasks and budgets).
    directions : mapping of str to str
        Each metric's direction.
    pairs : sequence of (str, str)
        ``(coverage, quality)`` metric pairs, as the metrics declare them.
    references : mapping of str to Reference, optional
        Task name -> the objective whose temperature curve each of its frontiers is drawn
        against (:attr:`benchmark_core.contract.task.Task.frontier_reference`).

    Returns
    -------
    (dict of str to Figure, list of str)
        The figures under their captions, per task, and notes on any that could not be drawn.
    """
    figures: dict[str, Figure] = {}
    notes: list[str] = []
    for where, part, x, y, ref in _frontier_parts(df, pairs, references):
        _try(
            figures,
            notes,
            _frontier_caption(where, x, y),
            lambda p=part, a=x, b=y, r=ref: plot_frontier(p, a, b, directions, reference=r),
        )
    return figures, notes


def frontier_statements(
    df: pd.DataFrame,
    directions: Mapping[str, str],
    pairs: Sequence[tuple[str, str]],
    references: Mapping[str, Reference],
) -> dict[str, list[str]]:
    """Per frontier caption (as :func:`frontier_figures` names it), the sentences that say how
    the reference curve was chosen and which points lie beyond it, on it or behind it; only
    for the frontiers of tasks that declare a reference, and whose results hold its curve."""
    out: dict[str, list[str]] = {}
    for where, part, x, y, ref in _frontier_parts(df, pairs, references):
        if ref is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            judgement = frontier_judgement(part, x, y, ref, directions)
        if judgement is not None:
            out[_frontier_caption(where, x, y)] = judgement[2]
    return out


def _frontier_caption(where: str, x: str, y: str) -> str:
    return f"{where}: {y} against {x}, final values"


def _frontier_parts(
    df: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    references: Mapping[str, Reference] | None,
) -> Iterator[tuple[str, pd.DataFrame, str, str, Reference | None]]:
    """Each (task part, pair) with final values of both metrics, and the task's reference."""
    for where, part in _parts(df):
        have = set(final_rows(part)["metric"].dropna())
        task = str(part["task"].dropna().iloc[0]) if part["task"].notna().any() else ""
        ref = (references or {}).get(task)
        for x, y in pairs:
            if x in have and y in have:
                yield where, part, x, y, ref
