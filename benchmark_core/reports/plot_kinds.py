"""The kinds of ``gbench plot``: each draws one task's rows and names its file.

A kind is a function ``draw(df, directions, request) -> (figure, name)`` and the
:class:`PlotRequest` options it reads. Every kind, the standard ones included, comes from a
plugin's ``register_plots`` hook (the standard ones from ``plugins/figures/standard.py``, which
registers the drawing functions below); :data:`PLOT_KINDS` holds them once the command line has
loaded the plugins.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure

from benchmark_core.contract.errors import UsageError
from benchmark_core.reports.inputs import available, check_metrics
from benchmark_core.reports.reference_curve import Reference


@dataclass
class PlotRequest:
    """The options of ``gbench plot`` that a plot kind may read."""

    metrics: list[str] = field(default_factory=list)
    param: str | None = None
    x: str | None = None
    y: str | None = None
    logx: bool = False
    logy: bool = False
    #: frontier: the objective whose temperature curve is drawn as a line ("none": no curve;
    #: unset: the one the task declares).
    reference: str | None = None
    #: frontier: the value that picks the reference's checkpoint (the task's declaration).
    select_by: str | None = field(default=None, compare=False)

    def given(self) -> set[str]:
        """The names of the options the user set."""
        return {k for k, v in vars(self).items() if v}


@dataclass(frozen=True)
class PlotKind:
    """One KIND of ``gbench plot``.

    ``draw(df, directions, request)`` gets the rows of one task and returns the figure and a
    default file name (without extension); ``options`` are the :class:`PlotRequest` fields
    it reads, so that an option it would ignore is refused rather than silently dropped.
    """

    draw: Callable[[pd.DataFrame, dict[str, str], PlotRequest], tuple[Figure, str]]
    options: frozenset[str]
    help: str


def _metric_hint(df: pd.DataFrame) -> str:
    return f"Available metrics: {available(df['metric'])}."


def _parameter_hint(df: pd.DataFrame) -> str:
    from benchmark_core.reports.figures import parameter_values

    values = parameter_values(df)
    swept = [k.partition(".")[2] for k, v in values.items() if len(v) > 1]
    fixed = [k.partition(".")[2] for k, v in values.items() if len(v) == 1]
    return (
        f"Swept in these results: {', '.join(swept) or 'none'}. "
        f"Fixed: {', '.join(dict.fromkeys(fixed)) or 'none'}."
    )


def draw_sweep(
    df: pd.DataFrame, directions: dict[str, str], req: PlotRequest
) -> tuple[Figure, str]:
    from benchmark_core.reports.labels import param_value
    from benchmark_core.reports.plots import plot_sweep

    if len(req.metrics) != 1 or not req.param:
        raise UsageError(
            f"plot sweep needs one --metric and a --param. {_metric_hint(df)} {_parameter_hint(df)}"
        )
    check_metrics(df, req.metrics)
    cells = df.groupby("cell_id")["params"].first().dropna()
    values = {str(v) for role, v in map(lambda p: param_value(p, req.param), cells) if role}
    if not values:
        raise UsageError(f"--param {req.param}: no cell has this parameter. {_parameter_hint(df)}")
    if len(values) == 1:
        warnings.warn(
            f"{req.param} takes one value here ({values.pop()}): one point per line",
            stacklevel=2,
        )
    metric, name = req.metrics[0], req.param.rpartition(".")[2]
    fig = plot_sweep(df, metric, req.param, directions, logx=req.logx)
    return fig, f"sweep_{metric}_vs_{name}"


def draw_curves(
    df: pd.DataFrame, directions: dict[str, str], req: PlotRequest
) -> tuple[Figure, str]:
    from benchmark_core.reports.figures import MAX_CURVE_PANELS, main_metrics, training_losses
    from benchmark_core.reports.plots import plot_curves

    metrics = req.metrics or (training_losses(df) + main_metrics(df, directions))[:MAX_CURVE_PANELS]
    check_metrics(df, metrics)
    return plot_curves(df, metrics, directions, logy=req.logy), "curves"


def draw_frontier(
    df: pd.DataFrame, directions: dict[str, str], req: PlotRequest
) -> tuple[Figure, str]:
    from benchmark_core.reports.plots import plot_frontier

    if not (req.x and req.y):
        raise UsageError(f"plot frontier needs --x and --y metrics. {_metric_hint(df)}")
    check_metrics(df, [req.x], "--x")
    check_metrics(df, [req.y], "--y")
    ref = None
    if req.reference and req.reference != "none":
        if req.reference not in set(df["objective"].dropna()):
            raise UsageError(
                f"--reference {req.reference}: no such objective in these results. "
                f"Objectives: {available(df['objective'])}."
            )
        by = req.select_by or ""
        ref = Reference(req.reference, by, "max" if directions.get(by) == "max" else "min")
    fig = plot_frontier(df, req.x, req.y, directions, reference=ref)
    return fig, f"frontier_{req.y}_vs_{req.x}"


#: The standard kinds, ``name -> (draw, help, options)``, as a plugin registers them.
STANDARD_KINDS: dict[str, tuple[Callable[..., tuple[Figure, str]], str, frozenset[str]]] = {
    "sweep": (
        draw_sweep,
        "a final metric against a swept parameter (--metric, --param)",
        frozenset({"metrics", "param", "logx"}),
    ),
    "curves": (
        draw_curves,
        "metrics against training step (--metric; default: the main ones)",
        frozenset({"metrics", "logy"}),
    ),
    "frontier": (
        draw_frontier,
        "two final metrics, Pareto front or a reference's temperature curve (--x, --y, "
        "--reference)",
        frozenset({"x", "y", "reference"}),
    ),
}

#: ``gbench plot KIND``: filled from the plugins' ``register_plots`` hooks by the command line.
PLOT_KINDS: dict[str, PlotKind] = {}
