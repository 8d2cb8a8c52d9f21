"""The paper's Figure 1 from results: P's histogram under Q's contours, and s² against π.

Q's contours are redrawn from the ``moments`` metric (mean and covariance entries), which is
exact for Gaussian models; for other models the ellipse is the Gaussian with Q's moments, and
the panel says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib import colors, patches
from matplotlib.figure import Figure

from benchmark_core import UsageError, hookimpl
from benchmark_core.reports.leaderboard import final_rows, interval95

COLOURS = {"ml": "#0072B2", "reverse_kl": "#D55E00", "jspi_exact": "#009E73", "jspi": "#CC79A7"}
EXACT_Q = {"isotropic_gaussian", "gaussian"}


def _pi(params_json: str) -> float | None:
    value = json.loads(params_json).get("objective", {}).get("pi")
    return None if value is None else float(value)


def _order(row: pd.Series) -> tuple[int, float, str]:
    rank = {"ml": 0, "jspi_exact": 1, "jspi": 2, "reverse_kl": 3}.get(row.objective, 4)
    return rank, row.pi if row.pi is not None and not math.isnan(row.pi) else 0.0, row.label


def _pick(df: pd.DataFrame, task: str | None, model: str | None) -> tuple[pd.DataFrame, str, str]:
    final = final_rows(df)
    final = final[final.metric.notna() & final.metric.str.match(r"^(mean_\d|cov_\d\d)$")]
    if final.empty:
        raise UsageError(
            "figure1 needs the 'moments' metric on a 2-D task (mean_i and cov_ij values); "
            "these results have none. Run with --metrics all or --metrics moments."
        )
    tasks = sorted(final.task_label.unique())
    if task is None and len(tasks) > 1:
        raise UsageError(f"figure1 draws one task; choose one with --task: {', '.join(tasks)}")
    task = task or tasks[0]
    final = final[(final.task_label == task) | (final.task == task)]
    models = sorted(final.model_label.unique())
    if model is None:
        model = "isotropic_gaussian" if "isotropic_gaussian" in models else models[0]
    final = final[(final.model_label == model) | (final.model == model)]
    if final.empty:
        raise UsageError(f"no moments for task {task} and model {model}; models: {models}")
    return final, task, model


def _configs(final: pd.DataFrame) -> pd.DataFrame:
    wide = final.pivot_table(
        index=["label", "objective", "params", "seed"], columns="metric", values="value"
    ).reset_index()
    wide["pi"] = [_pi(p) for p in wide.params]
    cols = [c for c in wide.columns if c.startswith(("mean_", "cov_"))]
    configs = wide.groupby(["label", "objective"], as_index=False).agg(
        {**{c: "mean" for c in cols}, "pi": "first", "seed": "count"}
    )
    configs = configs.dropna(
        subset=[c for c in cols if c in ("mean_0", "mean_1", "cov_00", "cov_01", "cov_11")]
    )
    return configs.iloc[sorted(range(len(configs)), key=lambda i: _order(configs.iloc[i]))]


def _ellipse(ax: Any, mean: np.ndarray, cov: np.ndarray, colour: str) -> None:
    vals, vecs = np.linalg.eigh(cov)
    angle = math.degrees(math.atan2(vecs[1, 1], vecs[0, 1]))
    for k, style in ((1, "-"), (2, "--"), (3, ":")):
        width, height = 2 * k * math.sqrt(vals[1]), 2 * k * math.sqrt(vals[0])
        ax.add_patch(
            patches.Ellipse(
                mean,
                width,
                height,
                angle=angle,
                fill=False,
                edgecolor=colour,
                linestyle=style,
                linewidth=1.8,
            )
        )
    ax.plot(*mean, marker="+", color=colour, markersize=9)


def task_samples(df: pd.DataFrame, task_label: str, registry: Any) -> np.ndarray:
    """P's training set, rebuilt from the task's recorded parameters."""
    rows = df[df.task_label == task_label]
    name = rows.task.iloc[0]
    params = json.loads(rows.params.iloc[0])["task"]
    with torch.random.fork_rng(devices=[]):
        task = registry.get("task", name).cls(**params)
    return task.train.double().numpy()


def figure1(
    df: pd.DataFrame,
    registry: Any,
    task: str | None = None,
    model: str | None = None,
    fig: Any = None,
) -> Figure:
    """One panel per objective configuration: P's 2-D histogram and Q's 1/2/3-σ contours.

    Draws into ``fig`` (a Figure or SubFigure) when one is given.
    """
    final, task, model = _pick(df, task, model)
    configs = _configs(final)
    data = task_samples(df, task, registry)
    if data.shape[1] != 2:
        raise UsageError(f"figure1 needs a 2-D task; {task} has dimension {data.shape[1]}")
    lim = 3.2 * math.sqrt(max(np.var(data[:, 0]), np.var(data[:, 1])))
    ncols = min(len(configs), 4)
    nrows = math.ceil(len(configs) / ncols)
    if fig is None:
        fig = Figure(figsize=(3.3 * ncols, 3.5 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(configs) :]:
        ax.set_visible(False)
    for ax, (_, row) in zip(axes.flat, configs.iterrows(), strict=False):
        ax.hist2d(
            data[:, 0],
            data[:, 1],
            bins=80,
            range=[[-lim, lim], [-lim, lim]],
            cmap="Greys",
            norm=colors.PowerNorm(0.5),
            rasterized=True,
        )
        mean = np.array([row.mean_0, row.mean_1])
        cov = np.array([[row.cov_00, row.cov_01], [row.cov_01, row.cov_11]])
        _ellipse(ax, mean, cov, COLOURS.get(row.objective, "#E69F00"))
        s2 = np.linalg.eigvalsh(cov)
        detail = (
            f"s² = {s2[1]:.3f}"
            if math.isclose(s2[0], s2[1], rel_tol=1e-6)
            else (f"eig Σ = {s2[1]:.2f}, {s2[0]:.2f}")
        )
        title = (
            row.label.replace("pi=", "π=")
            .replace("jspi_exact", "JS_π exact")
            .replace("jspi", "JS_π adversarial")
        )
        ax.set_title(f"{title}\n{detail} ({int(row.seed)} seed{'s' * (row.seed > 1)})", fontsize=9)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    note = "" if model in EXACT_Q else " (ellipses: the Gaussian with Q's moments)"
    fig.suptitle(
        f"P = {task} (grey histogram) and Q = {model}: 1, 2, 3σ contours{note}", fontsize=10
    )
    return fig


def s2_against_pi(
    df: pd.DataFrame,
    references: Mapping[str, float] | None = None,
    curve: tuple[np.ndarray, np.ndarray] | None = None,
    task: str | None = None,
    model: str | None = None,
    metric: str = "cov_eig_0",
    fig: Any = None,
) -> Figure:
    """A metric (default Q's largest variance) against π for each JS_π objective.

    ``references`` draws horizontal lines (e.g. the closed-form ML and reverse-KL optima);
    ``curve`` = (π grid, values) draws the exact optimum as a thin line.
    """
    _, task, model = _pick(df, task, model)
    allf = final_rows(df)
    allf = allf[
        ((allf.task_label == task) | (allf.task == task))
        & ((allf.model_label == model) | (allf.model == model))
        & (allf.metric == metric)
    ]
    allf = allf.assign(pi=[_pi(p) for p in allf.params])
    if fig is None:
        fig = Figure(figsize=(9.0, 4.2), layout="constrained")
    ax = fig.subplots()
    if curve is not None:
        ax.plot(*curve, color="0.35", linewidth=1, label="exact optimum (quadrature)")
    swept = allf[allf.pi.notna()]
    styles = zip("osD^v", ("-", "--", "-.", ":", "-"), strict=True)
    for (marker, line), (objective, rows) in zip(styles, swept.groupby("objective"), strict=False):
        stats = np.array(sorted((pi, *interval95(g.value)) for pi, g in rows.groupby("pi")))
        ax.errorbar(
            stats[:, 0],
            stats[:, 1],
            yerr=np.nan_to_num(stats[:, 2]),
            marker=marker,
            capsize=3,
            color=COLOURS.get(objective, "#E69F00"),
            linestyle=line,
            label=f"{objective} (mean ± 95% CI over seeds)",
        )
    for (name, value), style in zip((references or {}).items(), ("--", ":", "-."), strict=False):
        ax.axhline(value, linestyle=style, color="0.2", linewidth=1.2, label=f"{name}: {value:.4g}")
    for objective, rows in allf[allf.pi.isna()].groupby("objective"):
        ax.axhline(
            rows.value.mean(),
            color=COLOURS.get(objective, "#E69F00"),
            linewidth=2,
            alpha=0.6,
            label=f"{objective} trained (mean)",
        )
    ax.set_xlabel("π (share of real samples; small π ≈ maximum likelihood)")
    ax.set_ylabel(f"{metric} of Q" + (" (= s²)" if model == "isotropic_gaussian" else ""))
    ax.set_title(f"{task} · {model}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


def gaussian_references(df: pd.DataFrame, task: str, model: str) -> tuple[dict, Any]:
    """Closed-form ML and reverse-KL optima and the exact JS_π curve, for an isotropic Q
    fitted to the ``gaussian`` task; nothing for other tasks or models."""
    rows = df[df.task_label == task]
    if rows.empty or rows.task.iloc[0] != "gaussian" or model != "isotropic_gaussian":
        return {}, None
    from gbench_plugins.common.reference import optimal_isotropic_s2, s2_forward_kl, s2_reverse_kl

    params = json.loads(rows.params.iloc[0])["task"]
    a, b = params["a"], params["b"]
    pis = np.linspace(0.01, 0.99, 50)
    curve = (pis, np.array([optimal_isotropic_s2(a, b, p) for p in pis]))
    refs = {
        "KL[P‖Q] optimum (a+b)/2": s2_forward_kl(a, b),
        "KL[Q‖P] optimum 2/(1/a+1/b)": s2_reverse_kl(a, b),
    }
    return refs, curve


def draw(df: pd.DataFrame, directions: dict[str, str], request: Any) -> tuple[Figure, str]:
    """``gbench plot figure1``: the contour panels above, the metric against π below."""
    from benchmark_core.registry import get_registry

    final, task, model = _pick(df, None, None)
    n_panels = len(_configs(final))
    ncols = min(n_panels, 4)
    height = 3.5 * math.ceil(n_panels / ncols) + 0.6
    fig = Figure(figsize=(max(3.3 * ncols, 9.0), height + 4.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[height, 4.4])
    figure1(df, get_registry(), task, model, fig=top)
    metric = request.metrics[0] if request.metrics else "cov_eig_0"
    refs, curve = gaussian_references(df, task, model) if metric == "cov_eig_0" else ({}, None)
    s2_against_pi(df, refs, curve, task, model, metric, fig=bottom)
    return fig, "figure1"


@hookimpl
def register_plots(register):
    register(
        "figure1",
        draw,
        "the paper's Figure 1: P under Q's contours per π, and s² against π",
        options=("metrics",),
    )
