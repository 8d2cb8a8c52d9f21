"""Figures from a tidy results table: a metric against a swept parameter and training curves.

The quality–coverage frontier is in :mod:`benchmark_core.reports.frontier` and what every figure
shares (styles, legends, saving) in :mod:`benchmark_core.reports.plot_common`; both are
re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from benchmark_core.reports.frontier import pareto_front, plot_frontier
from benchmark_core.reports.labels import SYMBOLS, natural_key, param_value, strip_param
from benchmark_core.reports.leaderboard import CONFIG, final_rows, interval95, latest_runs
from benchmark_core.reports.plot_common import (
    REPRODUCIBLE,
    legend_outside,
    metric_label,
    new_figure,
    one_task,
    per_cell,
    save,
    seed_note,
    sorted_keys,
    style,
)

__all__ = [
    "REPRODUCIBLE",
    "pareto_front",
    "plot_curves",
    "plot_frontier",
    "plot_sweep",
    "save",
]

_LABEL_COLUMN = {"objective": "label", "model": "model_label", "task": "task_label"}


# --- a metric against a swept parameter ------------------------------------------------------


def _sweep_cells(
    final: pd.DataFrame, metric: str, param: str
) -> tuple[pd.DataFrame, pd.DataFrame, bool, list[str]]:
    """The swept cells, the reference cells, whether the values are numbers, their order.

    Reference cells lack the parameter; it is stripped from the labels of the swept ones,
    so that one line joins its values. Categorical values are replaced by their positions.
    """
    cells = per_cell(final, metric)
    if cells.empty:
        raise ValueError(f"no final values of {metric!r}")
    found = cells["params"].map(lambda p: param_value(p, param))
    cells["role"] = found.map(lambda f: f[0])
    cells["x"] = found.map(lambda f: f[1])
    name = param.rpartition(".")[2]
    swept = cells[cells["role"].notna()].copy()
    if swept.empty:
        raise ValueError(f"no cell has a parameter {param!r}")
    for role in swept["role"].unique():
        sel = swept["role"] == role
        col = _LABEL_COLUMN[role]
        swept.loc[sel, col] = swept.loc[sel, col].map(lambda s: strip_param(s, name))
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in swept["x"])
    order: list[str] = []
    if not numeric:
        # Categorical values (schedule names, booleans) sit at evenly spaced positions.
        order = sorted(set(map(str, swept["x"])), key=natural_key)
        swept["x"] = swept["x"].map(lambda v: order.index(str(v)))
    return swept, cells[cells["role"].isna()], numeric, order


def _sweep_lines(
    ax: Axes, swept: pd.DataFrame, numeric: bool, series_name: Callable[[str, str], str]
) -> list[int]:
    """One line (numbers) or set of interval bars (categories) per configuration."""
    counts: list[int] = []
    for i, (label, model) in enumerate(sorted_keys(swept, ["label", "model_label"])):
        part = swept[(swept["label"] == label) & (swept["model_label"] == model)]
        stats = [(x, *interval95(g["value"])) for x, g in part.groupby("x", sort=True)]
        xs, mean, half, n = (np.array(c, dtype=float) for c in zip(*stats, strict=True))
        counts += list(n.astype(int))
        st = style(i)
        if numeric:
            ax.plot(xs, mean, label=series_name(label, model), markersize=5, linewidth=1.6, **st)
            ax.fill_between(
                xs, mean - half, mean + half, color=st["color"], alpha=0.18, linewidth=0
            )
        else:
            # Categories have no order to interpolate along: points with interval bars, no line.
            ax.errorbar(
                xs,
                mean,
                yerr=np.nan_to_num(half),
                fmt=st["marker"],
                color=st["color"],
                markersize=6,
                capsize=3,
                label=series_name(label, model),
            )
    return counts


def _sweep_references(
    ax: Axes, refs: pd.DataFrame, first: int, what: str, series_name: Callable[[str, str], str]
) -> list[int]:
    """A horizontal line with its band for each configuration without the parameter."""
    counts = []
    for j, (label, model) in enumerate(sorted_keys(refs, ["label", "model_label"]), start=first):
        values = refs[(refs["label"] == label) & (refs["model_label"] == model)]["value"]
        mean, half, n = interval95(values)
        counts.append(n)
        st = style(j)
        ax.axhline(
            mean,
            color=st["color"],
            linestyle=st["linestyle"],
            linewidth=1.4,
            label=f"{series_name(label, model)} (reference, no {what})",
        )
        if math.isfinite(half):
            ax.axhspan(mean - half, mean + half, color=st["color"], alpha=0.10, linewidth=0)
    return counts


def plot_sweep(
    df: pd.DataFrame,
    metric: str,
    param: str,
    directions: Mapping[str, str] | None = None,
    task: str | None = None,
    units: Mapping[str, str] | None = None,
    logx: bool = False,
) -> Figure:
    """Plot a metric against a swept parameter, one line per objective configuration.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table; only ``ok`` cells at their final step are used.
    metric : str
        The value name on the y axis.
    param : str
        The swept parameter, e.g. ``"lr"`` or a qualified ``"objective.lr"``; read from each
        cell's ``params`` JSON.
    directions : mapping of str to str, optional
        Metric directions, shown as an arrow on the y label.
    task : str, optional
        The task (name or label) to draw; required when the table holds several.
    units : mapping of str to str, optional
        Units of metrics, shown on the axis label.
    logx : bool
        Use a logarithmic x axis (for learning rates or temperatures spanning decades).

    Returns
    -------
    matplotlib.figure.Figure
        Lines at the mean over seeds with a shaded 95% interval. Configurations without the
        parameter (objectives that do not take it) are drawn as horizontal reference lines
        with their own band, as the limits the sweep should approach.
    """
    final = one_task(final_rows(df), task, "plot_sweep")
    swept, refs, numeric, order = _sweep_cells(final, metric, param)
    name = param.rpartition(".")[2]
    symbol = SYMBOLS.get(name)
    several_models = pd.concat([swept, refs])["model_label"].nunique() > 1

    def series_name(label: str, model: str) -> str:
        return f"{label} · {model}" if several_models else label

    fig, ax = new_figure(7.6, 4.4)
    counts = _sweep_lines(ax, swept, numeric, series_name)
    first = len(sorted_keys(swept, ["label", "model_label"]))
    counts += _sweep_references(ax, refs, first, symbol or name, series_name)
    if not numeric:
        ax.set_xticks(range(len(order)), order)
    if logx:
        ax.set_xscale("log")
    role = swept["role"].iloc[0]
    ax.set_xlabel(f"{symbol}  ({role} parameter {name})" if symbol else f"{role} parameter {name}")
    ax.set_ylabel(metric_label(metric, directions, units))
    ax.set_title(
        f"{metric} against {symbol or name} on {final['task_label'].iloc[0]}\n"
        f"{seed_note(counts, 'shaded' if numeric else 'bars and shading')}",
        fontsize=10,
        loc="left",
    )
    ax.grid(alpha=0.3)
    legend_outside(fig, ax, "objective")
    return fig


# --- training curves -------------------------------------------------------------------------


def plot_curves(
    df: pd.DataFrame,
    metrics: Sequence[str],
    directions: Mapping[str, str] | None = None,
    task: str | None = None,
    units: Mapping[str, str] | None = None,
    logy: bool = False,
) -> Figure:
    """Plot metrics against training step, mean over seeds, one panel per metric.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table; every step of ``ok`` cells is used.
    metrics : sequence of str
        Value names (a training loss, evaluation metrics); one panel each, sharing the x axis.
    directions, units : mapping of str to str, optional
        Shown on each panel's y label.
    task : str, optional
        The task (name or label) to draw; required when the table holds several.
    logy : bool
        Logarithmic y axes (only sensible for positive metrics).

    Returns
    -------
    matplotlib.figure.Figure
        One line per (objective label, model label) with a shaded 95% interval over seeds.
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    runs = latest_runs(df)
    runs = one_task(
        runs[(runs["status"] == "ok") & runs["metric"].isin(metrics)], task, "plot_curves"
    )
    keys = sorted_keys(runs, CONFIG[1:])
    several_models = runs["model_label"].nunique() > 1
    fig = Figure(figsize=(7.6, 1.0 + 2.5 * len(metrics)), layout="constrained")
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    counts: list[int] = []
    for ax, metric in zip(axes, metrics, strict=True):
        for i, (label, model) in enumerate(keys):
            part = runs[
                (runs["metric"] == metric)
                & (runs["label"] == label)
                & (runs["model_label"] == model)
            ]
            if part.empty:
                continue
            per_cell = part.groupby(["step", "cell_id"])["value"].mean()
            stats = [(s, *interval95(v)) for s, v in per_cell.groupby(level="step")]
            steps, mean, half, n = (np.array(c, dtype=float) for c in zip(*stats, strict=True))
            counts += list(n.astype(int))
            st = style(i)
            ax.plot(
                steps,
                mean,
                label=f"{label} · {model}" if several_models else label,
                markevery=max(1, len(steps) // 8),
                markersize=4.5,
                linewidth=1.4,
                **st,
            )
            ax.fill_between(
                steps, mean - half, mean + half, color=st["color"], alpha=0.15, linewidth=0
            )
        ax.set_ylabel(metric_label(metric, directions, units).replace("   (", "\n("), fontsize=9)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("training step")
    axes[0].set_title(
        f"training curves on {runs['task_label'].iloc[0]}\n{seed_note(counts)}",
        fontsize=10,
        loc="left",
    )
    legend_outside(fig, axes[0], "objective")
    return fig
