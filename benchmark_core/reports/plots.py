"""Figures from a tidy results table: a metric against a swept parameter, training curves, and
the quality–coverage frontier.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so nothing
touches matplotlib's global figure registry or the user's chosen backend; PNGs are drawn with
Agg. Colours are the Okabe–Ito palette (safe for the common colour-vision deficiencies) and
every series also differs in marker and line style, so the figures survive greyscale printing.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from benchmark_core.reports.labels import SYMBOLS, natural_key, param_note, param_value, strip_param
from benchmark_core.reports.leaderboard import CONFIG, final_rows, interval95, latest_runs

#: Okabe & Ito (2008), without its yellow, which is too faint on white for thin lines.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES: tuple[Any, ...] = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
ARROW_WORDS = {"min": "↓ lower is better", "max": "↑ higher is better", "none": ""}
_LABEL_COLUMN = {"objective": "label", "model": "model_label", "task": "task_label"}
#: Offsets (points) and alignment of point notes, one per objective in turn.
NOTE_PLACES = (
    ((6, 5), "left", "bottom"),
    ((-6, -5), "right", "top"),
    ((6, -5), "left", "top"),
    ((-6, 5), "right", "bottom"),
)
#: How close (as a fraction of the axes) two points must be for their notes to collide.
NOTE_CLEARANCE = 0.06


# --- helpers ---------------------------------------------------------------------------------


def _style(i: int) -> dict[str, Any]:
    # Cycle lengths 7, 8 and 5 are coprime: (colour, marker) pairs repeat only after 56
    # series, and (marker, line style) pairs, all that greyscale keeps, only after 40.
    return {
        "color": PALETTE[i % len(PALETTE)],
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
    }


def _sorted_keys(frame: pd.DataFrame, cols: list[str]) -> list[tuple[str, ...]]:
    keys = frame[cols].drop_duplicates().itertuples(index=False, name=None)
    return sorted(keys, key=lambda k: tuple(natural_key(v) for v in k))


def _new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _metric_label(
    metric: str, directions: Mapping[str, str] | None, units: Mapping[str, str] | None
) -> str:
    unit = (units or {}).get(metric)
    words = ARROW_WORDS.get((directions or {}).get(metric, "none"), "")
    return f"{metric}" + (f" [{unit}]" if unit else "") + (f"   ({words})" if words else "")


def _one_task(df: pd.DataFrame, task: str | None, what: str) -> pd.DataFrame:
    if task is not None:
        df = df[(df["task"] == task) | (df["task_label"] == task)]
    labels = sorted(df["task_label"].dropna().unique())
    if len(labels) > 1:
        raise ValueError(f"{what} draws one task at a time; pass task= one of {labels}")
    if not labels:
        raise ValueError(f"{what}: no results" + (f" for task {task!r}" if task else ""))
    return df


def _legend_outside(
    fig: Figure, ax: Axes, title: str | None = None, extra: Sequence[tuple[Artist, str]] = ()
) -> None:
    # Outside the axes on the right, so the legend never covers a line or a point; at the
    # figure level so that, with several panels, it does not stretch one panel's layout.
    handles, labels = ax.get_legend_handles_labels()
    handles += [h for h, _ in extra]
    labels += [label for _, label in extra]
    if handles:
        fig.legend(
            handles,
            labels,
            loc="outside right upper",
            frameon=False,
            title=title,
            fontsize=8.5,
            title_fontsize=9,
            ncols=1 if len(handles) <= 20 else 2,
        )


def _seed_note(counts: Iterable[int], band: str = "shaded") -> str:
    ns = sorted(set(counts))
    if not ns:
        return ""
    if ns == [1]:
        return "one seed: no interval"
    span = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    return f"mean over {span} seeds; {band}: 95% interval"


def _per_cell(final: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = final[final["metric"] == metric]
    return (
        rows.groupby("cell_id", sort=False)
        .agg(
            value=("value", "mean"),
            params=("params", "first"),
            task_label=("task_label", "first"),
            label=("label", "first"),
            model_label=("model_label", "first"),
            objective=("objective", "first"),
        )
        .reset_index()
    )


# --- a metric against a swept parameter ------------------------------------------------------


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
        The value name on the y axis, e.g. ``"nll_test"``.
    param : str
        The swept parameter, e.g. ``"pi"``, ``"eps"`` or a qualified ``"objective.pi"``; read
        from each cell's ``params`` JSON.
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
        parameter (``ml`` and ``reverse_kl`` in a sweep of π) are drawn as horizontal
        reference lines with their own band, as the limits the sweep should approach.
    """
    final = _one_task(final_rows(df), task, "plot_sweep")
    cells = _per_cell(final, metric)
    if cells.empty:
        raise ValueError(f"no final values of {metric!r}")
    found = cells["params"].map(lambda p: param_value(p, param))
    cells["role"] = found.map(lambda f: f[0])
    cells["x"] = found.map(lambda f: f[1])
    name = param.rpartition(".")[2]
    symbol = SYMBOLS.get(name)
    swept = cells[cells["role"].notna()].copy()
    if swept.empty:
        raise ValueError(f"no cell has a parameter {param!r}")
    for role in swept["role"].unique():
        sel = swept["role"] == role
        swept.loc[sel, _LABEL_COLUMN[role]] = swept.loc[sel, _LABEL_COLUMN[role]].map(
            lambda s: strip_param(s, name)
        )
    refs = cells[cells["role"].isna()]
    several_models = cells["model_label"].nunique() > 1

    def series_name(label: str, model: str) -> str:
        return f"{label} · {model}" if several_models else label

    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in swept["x"])
    if not numeric:
        # Categorical values (schedule names, booleans) sit at evenly spaced positions.
        order = sorted(set(map(str, swept["x"])), key=natural_key)
        swept["x"] = swept["x"].map(lambda v: order.index(str(v)))
    fig, ax = _new_figure(7.6, 4.4)
    counts: list[int] = []
    keys = _sorted_keys(swept, ["label", "model_label"])
    ref_keys = _sorted_keys(refs, ["label", "model_label"])
    for i, (label, model) in enumerate(keys):
        part = swept[(swept["label"] == label) & (swept["model_label"] == model)]
        stats = [(x, *interval95(g["value"])) for x, g in part.groupby("x", sort=True)]
        xs, mean, half, n = (np.array(c, dtype=float) for c in zip(*stats, strict=True))
        counts += list(n.astype(int))
        style = _style(i)
        if numeric:
            ax.plot(xs, mean, label=series_name(label, model), markersize=5, linewidth=1.6, **style)
            ax.fill_between(
                xs, mean - half, mean + half, color=style["color"], alpha=0.18, linewidth=0
            )
        else:
            # Categories have no order to interpolate along: points with interval bars, no line.
            ax.errorbar(
                xs,
                mean,
                yerr=np.nan_to_num(half),
                fmt=style["marker"],
                color=style["color"],
                markersize=6,
                capsize=3,
                label=series_name(label, model),
            )
    for j, (label, model) in enumerate(ref_keys, start=len(keys)):
        values = refs[(refs["label"] == label) & (refs["model_label"] == model)]["value"]
        mean, half, n = interval95(values)
        counts.append(n)
        style = _style(j)
        ax.axhline(
            mean,
            color=style["color"],
            linestyle=style["linestyle"],
            linewidth=1.4,
            label=f"{series_name(label, model)} (reference, no {symbol or name})",
        )
        if math.isfinite(half):
            ax.axhspan(mean - half, mean + half, color=style["color"], alpha=0.10, linewidth=0)
    if not numeric:
        ax.set_xticks(range(len(order)), order)
    if logx:
        ax.set_xscale("log")
    role = swept["role"].iloc[0]
    ax.set_xlabel(f"{symbol}  ({role} parameter {name})" if symbol else f"{role} parameter {name}")
    ax.set_ylabel(_metric_label(metric, directions, units))
    ax.set_title(
        f"{metric} against {symbol or name} on {final['task_label'].iloc[0]}\n"
        f"{_seed_note(counts, 'shaded' if numeric else 'bars and shading')}",
        fontsize=10,
        loc="left",
    )
    ax.grid(alpha=0.3)
    _legend_outside(fig, ax, "objective")
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
        Value names, e.g. ``["train_loss", "nll_test"]``; one panel each, sharing the x axis.
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
    runs = _one_task(
        runs[(runs["status"] == "ok") & runs["metric"].isin(metrics)], task, "plot_curves"
    )
    keys = _sorted_keys(runs, CONFIG[1:])
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
            style = _style(i)
            ax.plot(
                steps,
                mean,
                label=f"{label} · {model}" if several_models else label,
                markevery=max(1, len(steps) // 8),
                markersize=4.5,
                linewidth=1.4,
                **style,
            )
            ax.fill_between(
                steps, mean - half, mean + half, color=style["color"], alpha=0.15, linewidth=0
            )
        ax.set_ylabel(_metric_label(metric, directions, units).replace("   (", "\n("), fontsize=9)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("training step")
    axes[0].set_title(
        f"training curves on {runs['task_label'].iloc[0]}\n{_seed_note(counts)}",
        fontsize=10,
        loc="left",
    )
    _legend_outside(fig, axes[0], "objective")
    return fig


# --- the quality–coverage frontier -----------------------------------------------------------


def pareto_front(points: np.ndarray, directions: tuple[str, str]) -> np.ndarray:
    """Mark the points that no other point dominates.

    Parameters
    ----------
    points : numpy.ndarray
        Shape ``(n, 2)``; rows with a NaN are never on the front.
    directions : (str, str)
        ``"min"`` or ``"max"`` for each column.

    Returns
    -------
    numpy.ndarray
        Boolean mask of length ``n``: True where no other point is at least as good in both
        coordinates and strictly better in one.
    """
    for d in directions:
        if d not in ("min", "max"):
            raise ValueError(f"a Pareto front needs min or max on both axes, got {directions}")
    sign = np.array([1.0 if d == "min" else -1.0 for d in directions])
    p = np.asarray(points, dtype=float) * sign
    valid = ~np.isnan(p).any(axis=1)
    front = valid.copy()
    for i in np.flatnonzero(valid):
        others = p[valid]
        dominated = (others <= p[i]).all(axis=1) & (others < p[i]).any(axis=1)
        front[i] = not dominated.any()
    return front


def _staircase(xy: np.ndarray, directions: tuple[str, str]) -> np.ndarray:
    """The boundary of the region the front dominates, through the front's points."""
    sign = 1.0 if directions[0] == "min" else -1.0
    pts = xy[np.argsort(sign * xy[:, 0])]
    path = [pts[0]]
    for prev, nxt in itertools.pairwise(pts):
        path += [np.array([nxt[0], prev[1]]), nxt]
    return np.array(path)


def _annotate(ax: Axes, notes: list[tuple[float, float, str, int]]) -> None:
    """Write each note beside its point, in a corner that no nearby note already uses.

    Each objective starts from its own corner of :data:`NOTE_PLACES`, so that two objectives
    at nearly the same point (jspi and jspi_exact) do not print over each other; a note whose
    point is within :data:`NOTE_CLEARANCE` (a fraction of the axes) of a note already placed
    in that corner moves on to the next free corner.
    """
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()  # after the points set the limits
    placed: list[tuple[float, float, int]] = []
    for x, y, note, i in notes:
        fx, fy = (x - x0) / ((x1 - x0) or 1.0), (y - y0) / ((y1 - y0) or 1.0)
        order = [(i + k) % len(NOTE_PLACES) for k in range(len(NOTE_PLACES))]
        free = [
            c
            for c in order
            if all(
                c != pc or math.hypot(fx - px, fy - py) > NOTE_CLEARANCE for px, py, pc in placed
            )
        ]
        corner = free[0] if free else order[0]
        placed.append((fx, fy, corner))
        (dx, dy), ha, va = NOTE_PLACES[corner]
        ax.annotate(
            note,
            (x, y),
            xytext=(dx, dy),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=7,
            color=PALETTE[i % len(PALETTE)],
            zorder=4,
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75},
        )


def plot_frontier(
    df: pd.DataFrame,
    x_metric: str,
    y_metric: str,
    directions: Mapping[str, str] | None = None,
    task: str | None = None,
    units: Mapping[str, str] | None = None,
) -> Figure:
    """Plot one point per configuration in the plane of two metrics, with the Pareto front.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table; only ``ok`` cells at their final step are used.
    x_metric, y_metric : str
        E.g. ``"nll_test"`` (coverage) and ``"nll_oracle"`` (quality).
    directions : mapping of str to str, optional
        Directions of the two metrics. A metric missing here is taken as ``"min"`` with a
        warning; ``"none"`` is an error, as no front exists without a direction.
    task : str, optional
        The task (name or label) to draw; required when the table holds several.
    units : mapping of str to str, optional
        Units of metrics, shown on the axis labels.

    Returns
    -------
    matplotlib.figure.Figure
        Each (objective label, model label) at its mean over seeds with 95% interval bars on
        both axes, coloured by objective and annotated with its parameters; the
        non-dominated configurations are ringed and joined by the front's staircase.
    """
    dirs = dict(directions or {})
    for m in (x_metric, y_metric):
        if m not in dirs:
            warnings.warn(f"no direction for {m!r}; assuming lower is better", stacklevel=2)
            dirs[m] = "min"
    axis_dirs = (dirs[x_metric], dirs[y_metric])
    if "none" in axis_dirs:
        raise ValueError(f"{x_metric} and {y_metric} both need a direction for a frontier")
    final = _one_task(final_rows(df), task, "plot_frontier")
    rows = []
    for key, part in final[final["metric"].isin([x_metric, y_metric])].groupby(
        ["label", "model_label", "objective"]
    ):
        per_cell = part.pivot_table(index="cell_id", columns="metric", values="value")
        if x_metric not in per_cell or y_metric not in per_cell:
            continue
        both = per_cell[[x_metric, y_metric]].dropna()
        (xm, xh, n), (ym, yh, _) = interval95(both[x_metric]), interval95(both[y_metric])
        rows.append((*key, xm, xh, ym, yh, n))
    points = pd.DataFrame(
        rows, columns=["label", "model_label", "objective", "x", "xh", "y", "yh", "n"]
    )
    if points.empty:
        raise ValueError(f"no configuration has final values of both {x_metric} and {y_metric}")
    points["front"] = pareto_front(points[["x", "y"]].to_numpy(), axis_dirs)
    several_models = points["model_label"].nunique() > 1
    fig, ax = _new_figure(7.6, 5.2)
    objectives = sorted(points["objective"].unique(), key=natural_key)
    notes: list[tuple[float, float, str, int]] = []
    for i, objective in enumerate(objectives):
        group = points[points["objective"] == objective]
        style = _style(i)
        ax.errorbar(
            group["x"],
            group["y"],
            xerr=group["xh"].fillna(0),
            yerr=group["yh"].fillna(0),
            fmt=style["marker"],
            color=style["color"],
            markersize=6.5,
            elinewidth=0.9,
            capsize=2,
            label=objective,
            zorder=3,
        )
        if len(group) > 1 or several_models:
            for r in group.itertuples():
                note = param_note(r.label) or objective
                if several_models:
                    note += f" · {r.model_label}"
                notes.append((r.x, r.y, note, i))
    _annotate(ax, notes)
    front = points[points["front"]]
    stair = _staircase(front[["x", "y"]].to_numpy(), axis_dirs)
    ring = {
        "color": "#555555",
        "marker": "o",
        "markersize": 13,
        "markerfacecolor": "none",
        "markeredgewidth": 1.0,
    }
    ax.plot(stair[:, 0], stair[:, 1], color="#555555", linewidth=1.0, linestyle="--", zorder=1)
    ax.plot(front["x"], front["y"], linestyle="none", zorder=2, **ring)
    front_handle = Line2D([], [], linestyle="--", linewidth=1.0, **ring)
    ax.set_xlabel(_metric_label(x_metric, dirs, units))
    ax.set_ylabel(_metric_label(y_metric, dirs, units))
    corner = {
        ("min", "min"): "lower left",
        ("min", "max"): "upper left",
        ("max", "min"): "lower right",
        ("max", "max"): "upper right",
    }[axis_dirs]
    ax.set_title(
        f"{y_metric} against {x_metric} on {final['task_label'].iloc[0]}"
        f" (better: {corner})\n{_seed_note(points['n'].astype(int), 'bars')}",
        fontsize=10,
        loc="left",
    )
    ax.grid(alpha=0.3)
    ax.margins(0.08)  # room for the notes beside points at the edges
    _legend_outside(fig, ax, "objective", extra=[(front_handle, "Pareto front")])
    return fig


# --- saving ----------------------------------------------------------------------------------


#: Fixed SVG ids and no timestamps, so that the same results give byte-identical files.
REPRODUCIBLE = {"svg.hashsalt": "gbench", "svg.fonttype": "path"}


def save(fig: Figure, path_stem: str | Path, dpi: int = 150) -> list[Path]:
    """Write a figure as ``<path_stem>.png`` and ``<path_stem>.svg``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to write.
    path_stem : str or pathlib.Path
        The path without an extension; missing folders are created. A dot in the stem (as
        in ``"sweep_pi0.5"``) is kept, not taken for an extension.
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    list of pathlib.Path
        The PNG and SVG paths.
    """
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"
    with mpl.rc_context(REPRODUCIBLE):
        fig.savefig(png, dpi=dpi, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None})
    return [png, svg]
