"""What every figure shares: the palette, series styles, legends, seed notes, and saving.

Every figure is built without pyplot, so nothing touches matplotlib's global figure registry or
the user's chosen backend; PNGs are drawn with Agg. Colours are the Okabe–Ito palette (safe for
the common colour-vision deficiencies) and every series also differs in marker and line style,
so the figures survive greyscale printing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from benchmark_core.reports.labels import natural_key

#: Okabe & Ito (2008), without its yellow, which is too faint on white for thin lines.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES: tuple[Any, ...] = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
ARROW_WORDS = {"min": "↓ lower is better", "max": "↑ higher is better", "none": ""}


# --- helpers ---------------------------------------------------------------------------------


def style(i: int) -> dict[str, Any]:
    """The colour, marker and line style of the ``i``-th series."""
    # Cycle lengths 7, 8 and 5 are coprime: (colour, marker) pairs repeat only after 56
    # series, and (marker, line style) pairs, all that greyscale keeps, only after 40.
    return {
        "color": PALETTE[i % len(PALETTE)],
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
    }


def sorted_keys(frame: pd.DataFrame, cols: list[str]) -> list[tuple[str, ...]]:
    """The distinct values of ``cols`` in natural order (``a=0.9`` before ``a=0.99``)."""
    keys = frame[cols].drop_duplicates().itertuples(index=False, name=None)
    return sorted(keys, key=lambda k: tuple(natural_key(v) for v in k))


def new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    """A pyplot-free figure with one set of axes."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def metric_label(
    metric: str, directions: Mapping[str, str] | None, units: Mapping[str, str] | None
) -> str:
    """An axis label: the metric, its unit and its direction in words."""
    unit = (units or {}).get(metric)
    words = ARROW_WORDS.get((directions or {}).get(metric, "none"), "")
    return f"{metric}" + (f" [{unit}]" if unit else "") + (f"   ({words})" if words else "")


def one_task(df: pd.DataFrame, task: str | None, what: str) -> pd.DataFrame:
    """The rows of one task; a table of several tasks needs ``task``."""
    if task is not None:
        df = df[(df["task"] == task) | (df["task_label"] == task)]
    labels = sorted(df["task_label"].dropna().unique())
    if len(labels) > 1:
        raise ValueError(f"{what} draws one task at a time; pass task= one of {labels}")
    if not labels:
        raise ValueError(f"{what}: no results" + (f" for task {task!r}" if task else ""))
    return df


def legend_outside(
    fig: Figure, ax: Axes, title: str | None = None, extra: Sequence[tuple[Artist, str]] = ()
) -> None:
    """A figure legend outside the axes, on the right."""
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


def seed_note(counts: Iterable[int], band: str = "shaded") -> str:
    """A title's note on how many seeds each mean is over and what the band shows."""
    ns = sorted(set(counts))
    if not ns:
        return ""
    if ns == [1]:
        return "one seed: no interval"
    span = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    return f"mean over {span} seeds; {band}: 95% interval"


def per_cell(final: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per cell: the metric's value (averaged if logged twice) and the cell's labels."""
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
