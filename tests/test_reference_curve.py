"""The reference's temperature curve on a frontier: its checkpoint, the beyond / on / behind /
outside judgements, the figure and the sentences, on synthetic tables with known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark_core.reports.figures import frontier_figures, frontier_statements
from benchmark_core.reports.frontier import frontier_judgement
from benchmark_core.reports.html_report import render_report
from benchmark_core.reports.plots import plot_frontier, save
from benchmark_core.reports.reference_curve import Reference, judge, reference_curve, split_tag

DIRECTIONS = {"nll_test": "min", "nll_oracle": "min"}
REF = Reference("ml", "nll_test")
#: ML's curve at its best step (20): T -> (nll_test, nll_oracle). It bends back above T = 1.
BEST = {0.7: (7.0, 2.0), 0.85: (5.5, 3.0), 1.0: (5.0, 4.0), 1.2: (5.6, 5.0)}
#: Other objectives' T = 1 points at their final step, and the verdict each must get.
OTHERS = {
    "beyond_obj": ((5.2, 3.0), 0.01, "beyond"),  # below the 0.85–1 segment (3.6 at x = 5.2)
    "behind_obj": ((6.5, 4.5), 0.01, "behind"),  # worse on both than T = 1
    "on_obj": ((6.25, 2.5), 0.01, "on"),  # the midpoint of the 0.7–0.85 segment
    "wide_obj": ((5.2, 3.0), 1.0, "on"),  # beyond in the mean, but the seeds spread widely
    "outside_obj": ((9.0, 1.0), 0.01, "outside"),  # past the curve's lowest temperature
}


def table() -> pd.DataFrame:
    """ml (3 seeds, steps 0-30, best held-out nll at step 20, then overfit) and five others."""
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    # Seed offsets with mean exactly 0, so that the means are the numbers above.
    offsets = np.array([-1.0, 0.0, 1.0])

    def add(objective: str, seed: int, step: int, metric: str, value: float) -> None:
        rows.append(
            {
                "cell_id": f"{objective}-{seed}",
                "task": "text",
                "task_label": "text",
                "model": "lstm",
                "model_label": "lstm",
                "objective": objective,
                "label": objective,
                "seed": seed,
                "budget": "smoke",
                "status": "ok",
                "params": json.dumps({"task": {}, "model": {}, "objective": {}}),
                "step": step,
                "metric": metric,
                "metric_source": "nll",
                "value": value,
                "stderr": 0.05 if metric == "nll_test" else math.nan,
                "error": None,
                "started_at": "2025-01-01T00:00:00Z",
            }
        )

    def tag(name: str, t: float) -> str:
        return name if t == 1.0 else f"{name}@T={t:g}"

    for seed, off in enumerate(offsets):
        for step, shift in ((0, 5.0), (10, 1.0), (20, 0.0), (30, 0.5)):
            for t, (x, y) in BEST.items():
                # Step 30 (final) is the overfit model: worse coverage, slightly better quality.
                add("ml", seed, step, tag("nll_test", t), x + shift + 0.01 * off)
                add("ml", seed, step, tag("nll_oracle", t), y - 0.2 * (step == 30) + 0.01 * off)
        for name, ((x, y), spread, _) in OTHERS.items():
            add(name, seed, 30, "nll_test", x + spread * off)
            add(name, seed, 30, "nll_oracle", y + spread * off)
        # one other objective has its own curve too
        for t, (dx, dy) in {0.7: (1.0, -1.5), 1.0: (0.0, 0.0)}.items():
            add("curved_obj", seed, 30, tag("nll_test", t), 8.0 + dx + 0.01 * off)
            add("curved_obj", seed, 30, tag("nll_oracle", t), 6.0 + dy + 0.01 * off)
    assert rng is not None
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return table()


def test_split_tag() -> None:
    assert split_tag("nll_test@T=0.7") == ("nll_test", 0.7)
    assert split_tag("nll_test") == ("nll_test", None)
    assert split_tag("bleu@T=x") == ("bleu@T=x", None)


def test_the_curve_comes_from_the_step_with_the_best_held_out_nll(df: pd.DataFrame) -> None:
    curve = reference_curve(df, "nll_test", "nll_oracle", REF)
    assert curve is not None
    assert (curve.step, curve.final_step, curve.steps) == (20, 30, [0, 10, 20, 30])
    assert curve.selected == pytest.approx(5.0)
    assert curve.selected_stderr == pytest.approx(0.05)
    assert list(curve.points["T"]) == [0.7, 0.85, 1.0, 1.2]
    np.testing.assert_allclose(curve.points["x"], [v[0] for v in BEST.values()])
    np.testing.assert_allclose(curve.points["y"], [v[1] for v in BEST.values()])
    # 95% half-width of (-0.01, 0, 0.01): t(0.975, 2) * 0.01 / sqrt(3)
    np.testing.assert_allclose(curve.points["xh"], 4.302653 * 0.01 / math.sqrt(3), rtol=1e-5)
    # without a selection value: the final step
    final = reference_curve(df, "nll_test", "nll_oracle", Reference("ml"))
    assert final is not None and final.step == 30
    # no tempered values: a one-point "curve", and the sentence says so
    plain = df[~df["metric"].str.contains("@")]
    judgement = frontier_judgement(plain, "nll_test", "nll_oracle", REF, DIRECTIONS)
    assert judgement is not None and list(judgement[0].points["T"]) == [1.0]
    assert "'s point at T = 1 (these metrics were not swept over temperatures)" in judgement[2][0]


def test_every_point_gets_its_known_verdict(df: pd.DataFrame) -> None:
    judgement = frontier_judgement(df, "nll_test", "nll_oracle", REF, DIRECTIONS)
    assert judgement is not None
    _, judged, _ = judgement
    got = {(r.label, r.T): r.verdict for r in judged.itertuples()}
    for name, (_, _, verdict) in OTHERS.items():
        assert got[(name, 1.0)] == verdict, name
    # ml's own final (overfit) step: its T = 1 point (5.5, 3.8) is worse on both than the
    # best step's T = 0.85 point (5.5, 3.0)
    assert got[("ml", 1.0)] == "behind"
    # curved_obj: T = 1 at (8, 6) is behind; T = 0.7 at (9, 4.5) is behind T = 0.7's (7, 2)
    assert got[("curved_obj", 1.0)] == "behind" and got[("curved_obj", 0.7)] == "behind"


def test_judgements_follow_the_directions() -> None:
    """A quality axis where higher is better: the same geometry, mirrored, same verdicts."""
    curve = pd.DataFrame(
        {"x": [7.0, 5.5, 5.0], "xh": 0.0, "y": [-2.0, -3.0, -4.0], "yh": 0.0}
    )  # y = -nll_oracle, direction max
    pts = pd.DataFrame({"x": [5.2, 6.5, 9.0], "xh": 0.0, "y": [-3.0, -4.5, -1.0], "yh": 0.0})
    assert judge(pts, curve, ("min", "max")) == ["beyond", "behind", "outside"]
    # a one-point curve: dominance of that point alone
    one = curve.iloc[[2]]
    assert judge(pts, one, ("min", "max")) == ["outside", "behind", "outside"]
    # intervals: a point just beyond by the means is "on" once the curve's own bars cover it
    near = pd.DataFrame({"x": [5.0], "xh": 0.0, "y": [-3.95], "yh": 0.0})
    assert judge(near, curve, ("min", "max")) == ["beyond"]
    assert judge(near, curve.assign(yh=0.1), ("min", "max")) == ["on"]


def test_the_statement_names_the_step_the_selection_and_each_verdict(df: pd.DataFrame) -> None:
    judgement = frontier_judgement(df, "nll_test", "nll_oracle", REF, DIRECTIONS)
    assert judgement is not None
    lines = judgement[2]
    assert lines[0].startswith("Reference: ml (lstm)'s temperature curve (T = 0.7, 0.85, 1, 1.2)")
    assert "at step 20 of 30" in lines[0] and "lowest mean nll_test at T = 1" in lines[0]
    assert "optimistic by about one standard error of nll_test, ±0.05 here" in lines[0]
    text = "\n".join(lines)
    assert "Beyond ml's curve (better than ml's curve on both nll_test and nll_oracle" in text
    assert "): beyond_obj at T = 1." in text
    assert "Behind (" in text and "ml at its final step 30 at T = 0.85, 1, 1.2" in text
    assert "Outside (" in text and "outside_obj at T = 1" in text
    on = next(line for line in lines if line.startswith("On ("))
    assert "on_obj at T = 1" in on and "wide_obj at T = 1" in on


def test_the_frontier_figure_draws_the_curve_and_the_report_states_it(
    df: pd.DataFrame, tmp_path: Path
) -> None:
    fig = plot_frontier(df, "nll_test", "nll_oracle", DIRECTIONS, reference=REF)
    title = fig.axes[0].get_title(loc="left")
    assert "ml curve: step 20 of 30 (best mean nll_test at T=1 of 4 evaluated)" in title
    # the reference's line passes through its points in T order
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "-"]
    assert any(
        np.allclose(ln.get_xdata(), [7.0, 5.5, 5.0, 5.6], atol=1e-9)
        and np.allclose(ln.get_ydata(), [2.0, 3.0, 4.0, 5.0], atol=1e-9)
        for ln in lines
    )
    png, svg = save(fig, tmp_path / "frontier")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "<svg" in svg.read_text()

    pairs, refs = [("nll_test", "nll_oracle")], {"text": REF}
    figures, notes = frontier_figures(df, DIRECTIONS, pairs, refs)
    statements = frontier_statements(df, DIRECTIONS, pairs, refs)
    assert not notes and list(figures) == list(statements)
    page = render_report(
        df, DIRECTIONS, None, {}, headline_figures=figures, figure_texts=statements
    )
    assert "beyond_obj at T = 1" in page and "at step 20 of 30" in page
    assert page.index("<figcaption>") < page.index("Beyond ml&#x27;s curve")
    # a task without a declared reference: the Pareto front, and no statement
    assert frontier_statements(df, DIRECTIONS, pairs, {}) == {}
