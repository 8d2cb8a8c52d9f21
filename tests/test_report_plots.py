"""Plots: each function draws from a small synthetic table and writes PNG and SVG files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from benchmark_core.reports.labels import natural_key, param_note, param_value, strip_param
from benchmark_core.reports.plots import pareto_front, plot_curves, plot_frontier, plot_sweep, save

DIRECTIONS = {"nll_test": "min", "nll_oracle": "min", "s2": "none", "train_loss": "min"}
TASK = "gaussian[a=4,b=0.25]"


def sweep_table() -> pd.DataFrame:
    """jspi over pi (3 seeds, one diverged), and ml / reverse_kl without a pi."""
    rng = np.random.default_rng(0)
    rows: list[dict] = []

    def add(label: str, objective_params: dict, seed: int, s2: float, status: str = "ok") -> None:
        base = {
            "cell_id": f"{label}-{seed}",
            "task": "gaussian",
            "task_label": TASK,
            "model": "iso",
            "model_label": "iso",
            "objective": label.split("[")[0],
            "label": label,
            "seed": seed,
            "budget": "smoke",
            "status": status,
            "params": json.dumps({"task": {"a": 4}, "model": {}, "objective": objective_params}),
            "stderr": math.nan,
            "error": None if status == "ok" else "loss became NaN",
            "started_at": "2025-01-01T00:00:00Z",
        }
        if status != "ok":
            rows.append(
                {**base, "step": 0, "metric": None, "metric_source": None, "value": math.nan}
            )
            return
        for step in (0, 10, 20):
            s = 3 + (s2 - 3) * step / 20 + 0.02 * rng.standard_normal()
            rows.append(
                {
                    **base,
                    "step": step,
                    "metric": "train_loss",
                    "metric_source": "objective",
                    "value": 4 - step / 20,
                }
            )
            rows.append(
                {**base, "step": step, "metric": "s2", "metric_source": "moments", "value": s}
            )
            rows.append(
                {
                    **base,
                    "step": step,
                    "metric": "nll_test",
                    "metric_source": "nll",
                    "value": math.log(s) + 2.125 / s,
                }
            )
            rows.append(
                {
                    **base,
                    "step": step,
                    "metric": "nll_oracle",
                    "metric_source": "nll",
                    "value": s * 2.125,
                }
            )

    for seed in range(3):
        for pi, s2 in ((0.1, 1.7), (0.5, 1.0), (0.9, 0.59)):
            add(
                f"jspi[pi={pi}]",
                {"pi": pi, "lr": 0.01},
                seed,
                s2,
                status="diverged" if (pi, seed) == (0.9, 2) else "ok",
            )
        add("ml", {"lr": 0.01}, seed, 2.125)
        add("reverse_kl", {"lr": 0.01}, seed, 0.47)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return sweep_table()


def check_written(paths: list[Path]) -> None:
    png, svg = paths
    assert png.suffix == ".png" and svg.suffix == ".svg"
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert svg.stat().st_size > 1000 and "<svg" in svg.read_text()


def test_plot_sweep_writes_png_and_svg(df: pd.DataFrame, tmp_path: Path) -> None:
    fig = plot_sweep(df, "s2", "pi", DIRECTIONS)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    # one jspi line over three values of pi, plus ml and reverse_kl as references
    labels = [line.get_label() for line in ax.get_lines()]
    assert "jspi" in labels and any(lbl.startswith("ml (reference") for lbl in labels)
    jspi = next(line for line in ax.get_lines() if line.get_label() == "jspi")
    assert list(jspi.get_xdata()) == [0.1, 0.5, 0.9]
    assert "π" in ax.get_xlabel()
    check_written(save(fig, tmp_path / "sweep.v1"))  # the dot is kept in the stem


def test_plot_sweep_of_categories_draws_points(df: pd.DataFrame, tmp_path: Path) -> None:
    names = {0.1: "linear", 0.5: "exponential", 0.9: "inverse_sigmoid"}

    def to_schedule(params: str) -> str:
        p = json.loads(params)
        if "pi" in p["objective"]:
            p["objective"] = {"schedule": names[p["objective"]["pi"]]}
        return json.dumps(p)

    def to_label(label: str) -> str:
        pi = label.removeprefix("jspi[pi=").removesuffix("]")
        return f"ss[schedule={names[float(pi)]}]" if label.startswith("jspi") else label

    ss = df.assign(params=df["params"].map(to_schedule), label=df["label"].map(to_label))
    fig = plot_sweep(ss, "s2", "schedule", DIRECTIONS)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "exponential",
        "inverse_sigmoid",
        "linear",
    ]
    # one series of three points, with no line joining the unordered categories
    assert ax.get_legend_handles_labels()[1].count("ss") == 1
    assert not [ln for ln in ax.get_lines() if ln.get_label() == "ss"]
    check_written(save(fig, tmp_path / "schedule"))


def test_plot_sweep_needs_a_known_parameter(df: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no cell has a parameter"):
        plot_sweep(df, "s2", "objective.eps", DIRECTIONS)


def test_plot_curves_writes_png_and_svg(df: pd.DataFrame, tmp_path: Path) -> None:
    fig = plot_curves(df, ["train_loss", "nll_test"], DIRECTIONS)
    assert len(fig.axes) == 2
    assert "lower is better" in fig.axes[1].get_ylabel()
    check_written(save(fig, tmp_path / "curves"))


def test_plot_frontier_writes_png_and_svg(df: pd.DataFrame, tmp_path: Path) -> None:
    fig = plot_frontier(df, "nll_test", "nll_oracle", DIRECTIONS)
    assert "lower is better" in fig.axes[0].get_xlabel()
    check_written(save(fig, tmp_path / "out" / "frontier"))


def test_frontier_without_a_direction_is_refused(df: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="direction"):
        plot_frontier(df, "nll_test", "s2", DIRECTIONS)


def test_several_tasks_need_a_choice(df: pd.DataFrame) -> None:
    other = df.assign(
        task_label="pairs[k=3]", task="pairs", cell_id=df["cell_id"] + "-pairs", value=2 * df.value
    )
    both = pd.concat([df, other])
    with pytest.raises(ValueError, match="one task at a time"):
        plot_sweep(both, "s2", "pi", DIRECTIONS)
    # The chosen task's values are drawn, and only them: every line is twice the first task's.
    alone, pairs = (
        plot_sweep(df, "s2", "pi", DIRECTIONS),
        plot_sweep(both, "s2", "pi", DIRECTIONS, task="pairs"),
    )
    lines = [
        [np.asarray(ln.get_ydata(), float) for ln in f.axes[0].get_lines()] for f in (alone, pairs)
    ]
    assert len(lines[0]) == len(lines[1]) >= 3
    for a, b in zip(*lines, strict=True):
        np.testing.assert_allclose(b, 2 * a)


def test_pareto_front_respects_directions() -> None:
    pts = np.array([[1.0, 5.0], [2.0, 3.0], [3.0, 4.0], [4.0, 1.0], [np.nan, 0.0]])
    assert pareto_front(pts, ("min", "min")).tolist() == [True, True, False, True, False]
    # higher x and lower y: (4, 1) is best at both and dominates everything
    assert pareto_front(pts, ("max", "min")).tolist() == [False, False, False, True, False]
    # both higher: (2, 3) falls behind (3, 4); the rest trade off
    assert pareto_front(pts, ("max", "max")).tolist() == [True, False, True, True, False]
    with pytest.raises(ValueError):
        pareto_front(pts, ("min", "none"))


def test_label_and_param_helpers() -> None:
    assert strip_param("jspi[pi=0.5,lr=0.001]", "pi") == "jspi[lr=0.001]"
    assert strip_param("jspi[pi=0.5]", "pi") == "jspi"
    assert strip_param("ss[eps=[0.1,0.2],k=1]", "k") == "ss[eps=[0.1,0.2]]"
    params = json.dumps({"task": {"pi": 1}, "model": {}, "objective": {"pi": 0.5}})
    assert param_value(params, "pi") == ("objective", 0.5)
    assert param_value(params, "task.pi") == ("task", 1)
    assert param_value(params, "eps") == (None, None)
    assert param_note("jspi[pi=0.5,lr=0.1]") == "π=0.5, lr=0.1"
    labels = ["jspi[pi=0.99]", "jspi[pi=0.9]", "jspi[pi=0.1]"]
    assert sorted(labels, key=natural_key) == ["jspi[pi=0.1]", "jspi[pi=0.9]", "jspi[pi=0.99]"]
