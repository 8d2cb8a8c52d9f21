"""Leaderboard statistics on a results table built by hand: means, intervals, ranks, failures."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark_core.reports.leaderboard import final_rows, interval95, leaderboard, problem_cells

DIRECTIONS = {
    "nll_test": "min",
    "nll_oracle": "min",
    "precision": "max",
    "s2": "none",
    "train_loss": "min",
}
GAUSS = "gaussian[a=4,b=0.25]"
PAIRS = "pairs[k=3]"
TRACEBACK = 'Traceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: boom'


def cell(
    task_label: str,
    label: str,
    seed: int,
    finals: dict[str, float] | None = None,
    status: str = "ok",
    error: str | None = None,
    cell_id: str | None = None,
    started: str = "2025-01-01T00:00:00+00:00",
    budget: str = "quick",
) -> list[dict]:
    """Rows of one cell: losses at steps 0/50/100, a decoy evaluation at 50, the real one at 100."""
    objective = label.split("[")[0]
    base = {
        "cell_id": cell_id or f"{task_label}|{label}|{seed}|{budget}",
        "task": task_label.split("[")[0],
        "task_label": task_label,
        "model": "mlp",
        "model_label": "mlp",
        "objective": objective,
        "label": label,
        "params": json.dumps({"task": {}, "model": {}, "objective": {}}),
        "seed": seed,
        "budget": budget,
        "stderr": float("nan"),
        "status": status,
        "error": error,
        "wall_time_s": 1.0,
        "device": "cpu",
        "started_at": started,
        "gbench_version": "0.1.0",
        "torch_version": "2.3.0",
    }
    if finals is None:  # skipped or failed before any evaluation: one row, no metric
        return [{**base, "step": 0, "metric": None, "metric_source": None, "value": float("nan")}]
    rows = [
        {
            **base,
            "step": s,
            "metric": "train_loss",
            "metric_source": "objective",
            "value": 10.0 - s / 100,
        }
        for s in (0, 50, 100)
    ]
    for step, scale in ((50, 100.0), (100, 1.0)):
        rows += [
            {**base, "step": step, "metric": m, "metric_source": "moments", "value": v * scale}
            for m, v in finals.items()
        ]
    return rows


def table() -> pd.DataFrame:
    rows: list[dict] = []
    # Task 1: three configurations; ml has 3 seeds, jspi 2 ok + 1 failed, reverse_kl 1 seed.
    for seed, (t, o, p, s) in enumerate(
        [(1.0, 3.0, 0.5, 2.0), (1.2, 3.2, 0.75, 2.1), (1.1, 3.4, 1.0, 1.9)]
    ):
        rows += cell(GAUSS, "ml", seed, {"nll_test": t, "nll_oracle": o, "precision": p, "s2": s})
    for seed, (t, o, p, s) in enumerate([(1.5, 2.0, 0.5, 1.0), (1.7, 2.2, 1.0, 1.2)]):
        rows += cell(
            GAUSS, "jspi[pi=0.5]", seed, {"nll_test": t, "nll_oracle": o, "precision": p, "s2": s}
        )
    rows += cell(GAUSS, "jspi[pi=0.5]", 2, status="error", error=TRACEBACK)
    rows += cell(
        GAUSS, "reverse_kl", 0, {"nll_test": 2.0, "nll_oracle": 1.0, "precision": 1.5, "s2": 0.5}
    )
    rows += cell(
        GAUSS,
        "jspi_exact",
        0,
        status="skipped",
        error="jspi_exact needs the task's density; gaussian has none",
    )
    # Task 2: reverse_kl seed 1 failed once, then was rerun under the same cell_id and passed.
    rows += cell(PAIRS, "ml", 0, {"nll_test": 0.5})
    rows += cell(PAIRS, "ml", 1, {"nll_test": 0.7})
    rows += cell(PAIRS, "reverse_kl", 0, {"nll_test": 0.9})
    rows += cell(
        PAIRS,
        "reverse_kl",
        1,
        status="error",
        error="old failure",
        started="2025-01-01T00:00:00+00:00",
    )
    rows += cell(PAIRS, "reverse_kl", 1, {"nll_test": 1.1}, started="2025-01-02T00:00:00+00:00")
    return pd.DataFrame(rows)


def row(board: pd.DataFrame, task_label: str, label: str) -> pd.Series:
    match = board[(board["task_label"] == task_label) & (board["label"] == label)]
    assert len(match) == 1
    return match.iloc[0]


def t_half(values: list[float]) -> float:
    """The 95% half-width computed independently of the code under test."""
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    return (hi - lo) / 2


@pytest.fixture(scope="module")
def board() -> pd.DataFrame:
    return leaderboard(table(), DIRECTIONS)


def test_final_rows_take_the_last_step_of_ok_cells() -> None:
    final = final_rows(table())
    assert set(final["step"]) == {100}
    assert set(final["status"]) == {"ok"}
    ml0 = final[(final["label"] == "ml") & (final["seed"] == 0) & (final["task_label"] == GAUSS)]
    assert ml0.set_index("metric").loc["nll_test", "value"] == 1.0


def test_means_intervals_and_counts(board: pd.DataFrame) -> None:
    ml = row(board, GAUSS, "ml")
    assert ml["nll_test.mean"] == pytest.approx(1.1)
    assert ml["nll_test.ci95"] == pytest.approx(t_half([1.0, 1.2, 1.1]))
    assert ml["nll_oracle.ci95"] == pytest.approx(t_half([3.0, 3.2, 3.4]))
    assert ml["nll_test.n"] == 3 and ml["n_seeds"] == 3 and ml["n_failed"] == 0
    # the intervals over seeds use the final step, not the decoy evaluation at step 50
    assert ml["s2.mean"] == pytest.approx(2.0)


def test_failed_seed_is_excluded_and_counted(board: pd.DataFrame) -> None:
    jspi = row(board, GAUSS, "jspi[pi=0.5]")
    assert jspi["n_seeds"] == 2 and jspi["n_failed"] == 1
    assert jspi["nll_test.n"] == 2
    assert jspi["nll_test.mean"] == pytest.approx(1.6)
    assert jspi["nll_test.ci95"] == pytest.approx(t_half([1.5, 1.7]))
    problems = problem_cells(table())
    failed = problems[problems["status"] == "error"]
    assert list(failed["label"]) == ["jspi[pi=0.5]"] and list(failed["seed"]) == [2]
    assert "RuntimeError: boom" in failed["reason"].iloc[0]


def test_one_seed_has_no_interval(board: pd.DataFrame) -> None:
    rkl = row(board, GAUSS, "reverse_kl")
    assert rkl["nll_test.mean"] == 2.0 and rkl["nll_test.n"] == 1
    assert math.isnan(rkl["nll_test.ci95"])
    assert interval95([3.0]) == (3.0, pytest.approx(float("nan"), nan_ok=True), 1)


def test_overlapping_intervals_leave_the_fixture_unranked(board: pd.DataFrame) -> None:
    # ml 1.1 ± 0.25 (3 seeds), jspi 1.6 ± 1.3 (2 seeds), reverse_kl 2.0 (one seed: no
    # interval): every pair of intervals overlaps, so all three share ranks 1 to 3.
    for label in ("ml", "jspi[pi=0.5]", "reverse_kl"):
        r = row(board, GAUSS, label)
        assert (r["nll_test.rank"], r["nll_test.rank_hi"]) == (1, 3)
    assert all(math.isnan(row(board, GAUSS, k)["s2.rank"]) for k in ("ml", "reverse_kl"))


def separated_table() -> pd.DataFrame:
    """Three configurations, three seeds each, spreads far smaller than their differences."""
    rows: list[dict] = []
    values = {
        "a": {"nll_test": [1.0, 1.01, 0.99], "precision": [0.5, 0.51, 0.49], "s2": [1, 2, 3]},
        "b": {"nll_test": [2.0, 2.01, 1.99], "precision": [0.9, 0.91, 0.89], "s2": [1, 2, 3]},
        "c": {"nll_test": [3.0, 3.01, 2.99], "precision": [0.9, 0.89, 0.91], "s2": [1, 2, 3]},
    }
    for label, metrics in values.items():
        for seed in range(3):
            rows += cell(GAUSS, label, seed, {m: v[seed] for m, v in metrics.items()})
    return pd.DataFrame(rows)


def test_ranks_follow_each_metric_direction() -> None:
    board = leaderboard(separated_table(), DIRECTIONS)
    ranks = {k: row(board, GAUSS, k) for k in "abc"}
    # lower is better, every interval apart: ranks 1, 2, 3, each a single rank
    assert [ranks[k]["nll_test.rank"] for k in "abc"] == [1, 2, 3]
    assert [ranks[k]["nll_test.rank_hi"] for k in "abc"] == [1, 2, 3]
    # higher is better; b and c have the same values in another order: they share 1-2
    assert [(ranks[k]["precision.rank"], ranks[k]["precision.rank_hi"]) for k in "abc"] == [
        (3, 3),
        (1, 2),
        (1, 2),
    ]
    # no direction: shown, not ranked
    assert all(math.isnan(r["s2.rank"]) for r in ranks.values())
    # sorted by the task's first ranked metric (nll_test, alphabetically first here)
    assert list(board["label"]) == ["a", "b", "c"]


def test_ranks_separate_only_what_the_intervals_separate() -> None:
    """The issue's case: 0.06 ± 0.12 against 0.06 ± 0.12 ranked (1) and (2); and a chain."""
    rows: list[dict] = []
    seeds = {
        # a KL estimate whose mean is negative is noise around zero, not a best value
        "neg": [-0.10, 0.12, 0.0],
        "p": [0.0, 0.12, 0.06],
        "q": [0.06, 0.0, 0.12],
        # a chain: x overlaps y, y overlaps z, x does not overlap z
        "x": [1.0, 1.1, 1.2],
        "y": [1.3, 1.4, 1.5],
        "z": [1.6, 1.7, 1.8],
    }
    for label, vals in seeds.items():
        task = GAUSS if label in ("neg", "p", "q") else PAIRS
        for seed, v in enumerate(vals):
            rows += cell(task, label, seed, {"kl_forward": v})
    board = leaderboard(pd.DataFrame(rows), {"kl_forward": "min"})
    got = {r.label: (r["kl_forward.rank"], r["kl_forward.rank_hi"]) for _, r in board.iterrows()}
    # the intervals, computed independently, are as the test means them to be
    half = {k: t_half(v) for k, v in seeds.items()}
    mean = {k: float(np.mean(v)) for k, v in seeds.items()}
    assert mean["x"] + half["x"] > mean["y"] - half["y"]  # x and y overlap
    assert mean["y"] + half["y"] > mean["z"] - half["z"]  # y and z overlap
    assert mean["x"] + half["x"] < mean["z"] - half["z"]  # x and z do not
    assert got["neg"] == got["p"] == got["q"] == (1, 3)
    assert (got["x"], got["y"], got["z"]) == ((1, 2), (1, 3), (2, 3))
    # nothing is bold: no row is ahead of every other
    from benchmark_core.reports.formatting import metric_cell

    cells = {r.label: metric_cell(r, "kl_forward", "min") for _, r in board.iterrows()}
    assert not any(best for _, best in cells.values())
    assert cells["p"][0].endswith("(1–3)") and cells["y"][0].endswith("(1–3)")
    assert cells["x"][0].endswith("(1–2)") and cells["z"][0].endswith("(2–3)")


def test_a_row_ahead_of_every_other_is_bold() -> None:
    from benchmark_core.reports.formatting import metric_cell

    board = leaderboard(separated_table(), DIRECTIONS)
    text, best = metric_cell(row(board, GAUSS, "a"), "nll_test", "min")
    assert best and text == "1.000 ± 0.025 (1)"
    assert not metric_cell(row(board, GAUSS, "b"), "precision", "max")[1]  # shares 1-2


def test_training_loss_is_not_compared_by_default(board: pd.DataFrame) -> None:
    assert "train_loss.mean" not in board.columns
    with_loss = leaderboard(table(), DIRECTIONS, metrics=["nll_test", "train_loss"])
    assert list(with_loss.attrs["metrics"]) == ["nll_test", "train_loss"]
    assert row(with_loss, GAUSS, "ml")["train_loss.mean"] == pytest.approx(9.0)


def test_no_average_rank_by_default_and_never_across_tasks(board: pd.DataFrame) -> None:
    assert not {"avg_rank", "avg_rank_all_tasks", "n_tasks"} & set(board.columns)
    # ranks are within a task: pairs' two rows rank against each other only
    ml, rkl = row(board, PAIRS, "ml"), row(board, PAIRS, "reverse_kl")
    assert (ml["nll_test.rank"], ml["nll_test.rank_hi"]) == (1, 2)  # 0.6 ± 1.3 vs 1.0 ± 1.3
    assert (rkl["nll_test.rank"], rkl["nll_test.rank_hi"]) == (1, 2)
    # on request: per row, the mean of its rank ranges' midpoints over its task's metrics
    averaged = leaderboard(separated_table(), DIRECTIONS, average_rank=True)
    a, b = row(averaged, GAUSS, "a"), row(averaged, GAUSS, "b")
    assert a["avg_rank"] == pytest.approx((1 + 3) / 2) and a["n_ranked"] == 2
    assert b["avg_rank"] == pytest.approx((2 + 1.5) / 2)
    assert "avg_rank_all_tasks" not in averaged.columns


def test_headline_metrics_choose_each_tasks_columns() -> None:
    headline = {"gaussian": ("nll_oracle", "absent", "nll_test"), "pairs": ("absent",)}
    board = leaderboard(table(), DIRECTIONS, headline=headline)
    # the declared order, without the metric that has no values
    assert board.attrs["task_metrics"][GAUSS] == ["nll_oracle", "nll_test"]
    # a task none of whose headline metrics has values shows all it has
    assert board.attrs["task_metrics"][PAIRS] == ["nll_test"]
    assert "precision.mean" not in board.columns  # not a headline metric of any task
    every = leaderboard(table(), DIRECTIONS)
    assert every.attrs["task_metrics"][GAUSS] == ["nll_oracle", "nll_test", "precision", "s2"]
    asked = leaderboard(table(), DIRECTIONS, metrics=["precision"], headline=headline)
    assert asked.attrs["task_metrics"] == {GAUSS: ["precision"], PAIRS: []}


def test_a_rerun_cell_counts_once_and_is_not_a_problem(board: pd.DataFrame) -> None:
    rkl = row(board, PAIRS, "reverse_kl")
    assert rkl["n_seeds"] == 2 and rkl["n_failed"] == 0
    assert rkl["nll_test.mean"] == pytest.approx(1.0)
    assert "old failure" not in set(problem_cells(table())["reason"])


def test_problem_cells_lists_skipped_and_failed() -> None:
    problems = problem_cells(table())
    assert list(problems["status"]) == ["error", "skipped"]
    skipped = problems[problems["status"] == "skipped"].iloc[0]
    assert skipped["label"] == "jspi_exact" and "needs the task's density" in skipped["reason"]
    assert "jspi_exact" not in set(leaderboard(table(), DIRECTIONS)["label"])


def test_filters_match_names_or_labels() -> None:
    only = leaderboard(table(), DIRECTIONS, task="pairs")
    assert set(only["task_label"]) == {PAIRS}
    jspi = leaderboard(table(), DIRECTIONS, objectives="jspi")
    assert set(jspi["label"]) == {"jspi[pi=0.5]"}
    assert (jspi["nll_test.rank"].iloc[0], jspi["nll_test.rank_hi"].iloc[0]) == (1, 1)
    assert leaderboard(table(), DIRECTIONS, task=GAUSS, models=["nope"]).empty


def test_mixed_budgets_must_be_chosen() -> None:
    mixed = pd.concat(
        [table(), pd.DataFrame(cell(PAIRS, "ml", 0, {"nll_test": 5.0}, budget="paper"))]
    )
    with pytest.raises(ValueError, match="budget"):
        leaderboard(mixed, DIRECTIONS)
    paper = leaderboard(mixed, DIRECTIONS, budget="paper")
    assert paper["nll_test.mean"].tolist() == [5.0]


def test_same_seed_twice_under_new_cell_id_counts_once() -> None:
    again = cell(
        PAIRS,
        "ml",
        0,
        {"nll_test": 0.9},
        cell_id="new-version",
        started="2025-02-01T00:00:00+00:00",
    )
    df = pd.concat([table(), pd.DataFrame(again)])
    with pytest.warns(UserWarning, match="more than once"):
        board = leaderboard(df, DIRECTIONS, task="pairs")
    ml = row(board, PAIRS, "ml")
    assert ml["nll_test.n"] == 2 and ml["nll_test.mean"] == pytest.approx(0.8)


def test_bad_direction_is_rejected() -> None:
    with pytest.raises(ValueError, match="direction"):
        leaderboard(table(), {"nll_test": "lower"})
