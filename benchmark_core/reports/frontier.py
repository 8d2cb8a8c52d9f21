"""The quality–coverage frontier: one point per configuration in the plane of two metrics.

Which pairs of metrics make a frontier is not decided here: a metric declares its coverage
partner (:attr:`benchmark_core.contract.metric.Metric.frontier`), and the caller passes the
pairs in. Likewise a task may declare a reference objective
(:attr:`benchmark_core.contract.task.Task.frontier_reference`): its temperature curve is then
drawn as a line from its selected checkpoint, each other configuration's tempered values as
its own thin curve, and :mod:`benchmark_core.reports.reference_curve` judges every point
against the reference's curve.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from benchmark_core.reports.labels import natural_key, param_note
from benchmark_core.reports.leaderboard import final_rows, interval95
from benchmark_core.reports.plot_common import (
    PALETTE,
    legend_outside,
    metric_label,
    new_figure,
    one_task,
    seed_note,
    style,
)
from benchmark_core.reports.reference_curve import (
    Reference,
    ReferenceCurve,
    judged_points,
    reference_curve,
    statement,
)

#: Offsets (points) and alignment of point notes, one per objective in turn.
NOTE_PLACES = (
    ((6, 5), "left", "bottom"),
    ((-6, -5), "right", "top"),
    ((6, -5), "left", "top"),
    ((-6, 5), "right", "bottom"),
)
#: How close (as a fraction of the axes) two points must be for their notes to collide.
NOTE_CLEARANCE = 0.06
#: Where the better configurations lie, by the directions of the (x, y) metrics.
BETTER_CORNER = {
    ("min", "min"): "lower left",
    ("min", "max"): "upper left",
    ("max", "min"): "lower right",
    ("max", "max"): "upper right",
}
FRONT_RING = {
    "color": "#555555",
    "marker": "o",
    "markersize": 13,
    "markerfacecolor": "none",
    "markeredgewidth": 1.0,
}


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
    at nearly the same point do not print over each other; a note whose
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


def _directions(
    x_metric: str, y_metric: str, directions: Mapping[str, str] | None
) -> dict[str, str]:
    dirs = dict(directions or {})
    for m in (x_metric, y_metric):
        if m not in dirs:
            warnings.warn(f"no direction for {m!r}; assuming lower is better", stacklevel=3)
            dirs[m] = "min"
    if "none" in (dirs[x_metric], dirs[y_metric]):
        raise ValueError(f"{x_metric} and {y_metric} both need a direction for a frontier")
    return dirs


def frontier_points(final: pd.DataFrame, x_metric: str, y_metric: str) -> pd.DataFrame:
    """Each configuration's mean and 95% half-width over seeds of two metrics.

    Parameters
    ----------
    final : pandas.DataFrame
        Final rows of one task (:func:`benchmark_core.reports.leaderboard.final_rows`).
    x_metric, y_metric : str
        The two metrics; only cells with values of both count.

    Returns
    -------
    pandas.DataFrame
        Columns ``label, model_label, objective, x, xh, y, yh, n``.
    """
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
    return pd.DataFrame(
        rows, columns=["label", "model_label", "objective", "x", "xh", "y", "yh", "n"]
    )


def _draw_points(ax: Axes, points: pd.DataFrame) -> None:
    """Interval bars per objective, and a note with each point's parameters where needed."""
    several_models = points["model_label"].nunique() > 1
    notes: list[tuple[float, float, str, int]] = []
    for i, objective in enumerate(sorted(points["objective"].unique(), key=natural_key)):
        group = points[points["objective"] == objective]
        st = style(i)
        ax.errorbar(
            group["x"],
            group["y"],
            xerr=group["xh"].fillna(0),
            yerr=group["yh"].fillna(0),
            fmt=st["marker"],
            color=st["color"],
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


#: How the reference curve is drawn.
REFERENCE_STYLE = {"color": "#222222", "linewidth": 1.6, "marker": "s", "markersize": 4.5}


def _draw_reference(ax: Axes, curve: ReferenceCurve) -> Line2D:
    """The reference's curve: its points in T order joined by a line, 95% bars, T marked."""
    pts = curve.points
    bars = ax.errorbar(
        pts["x"],
        pts["y"],
        xerr=pts["xh"].fillna(0),
        yerr=pts["yh"].fillna(0),
        elinewidth=0.9,
        capsize=2,
        zorder=2,
        **REFERENCE_STYLE,
    )
    for r in pts.itertuples():
        ax.annotate(
            f"T={r.T:g}",
            (r.x, r.y),
            xytext=(4, -9),
            textcoords="offset points",
            fontsize=6.5,
            color=REFERENCE_STYLE["color"],
        )
    return bars.lines[0]


def _draw_own_curves(ax: Axes, judged: pd.DataFrame, objectives: list[str]) -> None:
    """Each other configuration's tempered values as a thin dotted curve in its colour."""
    for (_label, _model), group in judged.groupby(["label", "model_label"]):
        if len(group) < 2:
            continue
        i = objectives.index(group["objective"].iloc[0])
        group = group.sort_values("T")
        st = style(i)
        ax.plot(group["x"], group["y"], linestyle=":", linewidth=1.0, color=st["color"], zorder=2)
        tempered = group[group["T"] != 1.0]
        ax.plot(tempered["x"], tempered["y"], st["marker"], color=st["color"], markersize=3.5,
                markerfacecolor="white", zorder=2)  # fmt: skip


def frontier_judgement(
    df: pd.DataFrame,
    x_metric: str,
    y_metric: str,
    reference: Reference,
    directions: Mapping[str, str] | None = None,
) -> tuple[ReferenceCurve, pd.DataFrame, list[str]] | None:
    """The reference's curve in one task's rows, every other point judged against it, and the
    sentences that say so (None when the rows hold no curve of the reference objective)."""
    dirs = _directions(x_metric, y_metric, directions)
    curve = reference_curve(df, x_metric, y_metric, reference)
    if curve is None:
        return None
    judged = judged_points(df, x_metric, y_metric, curve, dirs)
    return curve, judged, statement(curve, judged, x_metric, y_metric)


def plot_frontier(
    df: pd.DataFrame,
    x_metric: str,
    y_metric: str,
    directions: Mapping[str, str] | None = None,
    task: str | None = None,
    units: Mapping[str, str] | None = None,
    reference: Reference | None = None,
) -> Figure:
    """Plot one point per configuration in the plane of two metrics, with the Pareto front.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table; only ``ok`` cells at their final step are used.
    x_metric, y_metric : str
        The coverage metric (x) and the quality metric (y), as a metric declares them in
        :attr:`~benchmark_core.contract.metric.Metric.frontier`.
    directions : mapping of str to str, optional
        Directions of the two metrics. A metric missing here is taken as ``"min"`` with a
        warning; ``"none"`` is an error, as no front exists without a direction.
    task : str, optional
        The task (name or label) to draw; required when the table holds several.
    units : mapping of str to str, optional
        Units of metrics, shown on the axis labels.
    reference : Reference, optional
        An objective whose temperature curve (values ``<metric>@T=<T>``) is drawn as a line,
        from the checkpoint ``reference.select_by`` picks; other configurations' tempered
        values are drawn as thin curves. Without it, or when the rows hold no such curve, the
        Pareto front of the points is drawn instead.

    Returns
    -------
    matplotlib.figure.Figure
        Each (objective label, model label) at its mean over seeds with 95% interval bars on
        both axes, coloured by objective and annotated with its parameters; then either the
        reference's curve (its step and how it was chosen in the title) or the
        non-dominated configurations ringed and joined by the front's staircase.
    """
    dirs = _directions(x_metric, y_metric, directions)
    axis_dirs = (dirs[x_metric], dirs[y_metric])
    final = one_task(final_rows(df), task, "plot_frontier")
    final_all = df[df["task_label"] == final["task_label"].iloc[0]] if len(final) else df
    points = frontier_points(final, x_metric, y_metric)
    if points.empty:
        raise ValueError(f"no configuration has final values of both {x_metric} and {y_metric}")
    points["front"] = pareto_front(points[["x", "y"]].to_numpy(), axis_dirs)
    fig, ax = new_figure(7.6, 5.2)
    _draw_points(ax, points)
    judgement = (
        frontier_judgement(final_all, x_metric, y_metric, reference, dirs) if reference else None
    )
    if judgement is not None:
        curve, judged, _ = judgement
        objectives = sorted(points["objective"].unique(), key=natural_key)
        _draw_own_curves(ax, judged, objectives)
        handle = _draw_reference(ax, curve)
        extra = [(handle, f"{curve.label}: T curve, step {curve.step}")]
        how = (
            f"best mean {reference.select_by} at T=1 of {len(curve.steps)} evaluated"
            if reference.select_by and len(curve.steps) > 1
            else "final step"
        )
        subtitle = (
            f"{curve.label} curve: step {curve.step} of {curve.final_step} ({how})\n"
            f"{seed_note(points['n'].astype(int), 'bars')}"
        )
    else:
        front = points[points["front"]]
        stair = _staircase(front[["x", "y"]].to_numpy(), axis_dirs)
        ax.plot(stair[:, 0], stair[:, 1], color="#555555", linewidth=1.0, linestyle="--", zorder=1)
        ax.plot(front["x"], front["y"], linestyle="none", zorder=2, **FRONT_RING)
        extra = [(Line2D([], [], linestyle="--", linewidth=1.0, **FRONT_RING), "Pareto front")]
        subtitle = seed_note(points["n"].astype(int), "bars")
    ax.set_xlabel(metric_label(x_metric, dirs, units))
    ax.set_ylabel(metric_label(y_metric, dirs, units))
    ax.set_title(
        f"{y_metric} against {x_metric} on {final['task_label'].iloc[0]}"
        f" (better: {BETTER_CORNER[axis_dirs]})\n{subtitle}",
        fontsize=10,
        loc="left",
    )
    ax.grid(alpha=0.3)
    ax.margins(0.08)  # room for the notes beside points at the edges
    legend_outside(fig, ax, "objective", extra=extra)
    return fig
