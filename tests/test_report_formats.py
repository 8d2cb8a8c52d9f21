"""Leaderboard formatters: arrows, intervals, ranks, and escaping of third-party strings."""

from __future__ import annotations

import io
import json
import math

import pandas as pd
import pytest
from rich.console import Console

from benchmark_core.reports.formatting import format_estimate, format_rank, reason_summary
from benchmark_core.reports.leaderboard import (
    leaderboard,
    problem_cells,
    to_csv,
    to_html,
    to_json,
    to_markdown,
    to_rich,
)

EVIL = "<script>alert(1)</script>"
RICH_MARKUP = "[bold red]x[/bold red]"
DIRECTIONS = {"nll_test": "min", "precision": "max", "s2": "none"}


def rows(
    label: str,
    seed: int,
    values: dict[str, float] | None,
    status: str = "ok",
    error: str | None = None,
    model_label: str = "mlp",
) -> list[dict]:
    base = {
        "cell_id": f"{label}|{model_label}|{seed}",
        "task": "gaussian",
        "task_label": f"gaussian[note={EVIL}]",
        "model": "mlp",
        "model_label": model_label,
        "objective": label.split("[")[0],
        "label": label,
        "params": "{}",
        "seed": seed,
        "budget": "smoke",
        "step": 10,
        "stderr": math.nan,
        "status": status,
        "error": error,
        "started_at": "2025-01-01T00:00:00Z",
    }
    if values is None:
        return [{**base, "metric": None, "metric_source": None, "value": math.nan}]
    return [
        {**base, "metric": m, "metric_source": "moments", "value": v} for m, v in values.items()
    ]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    data: list[dict] = []
    for seed, (t, p, s) in enumerate([(1.0, 0.5, 2.0), (1.2, 0.7, 2.2), (1.1, 0.6, 2.1)]):
        data += rows("ml", seed, {"nll_test": t, "precision": p, "s2": s})
        data += rows(EVIL, seed, {"nll_test": t + 1, "precision": p + 0.2, "s2": s})
    data += rows(
        RICH_MARKUP, 0, {"nll_test": 5.0, "precision": 0.1, "s2": 1.0}, model_label="a|b`c"
    )
    data += rows(
        "jspi[pi=0.5]",
        0,
        None,
        status="error",
        error=f"Traceback (most recent call last):\nValueError: bad {EVIL}",
    )
    return pd.DataFrame(data)


@pytest.fixture(scope="module")
def board(frame: pd.DataFrame) -> pd.DataFrame:
    return leaderboard(frame, DIRECTIONS)


def test_estimate_and_rank_formatting() -> None:
    assert format_estimate(1.23456, 0.0345) == "1.235 ± 0.035"
    assert format_estimate(1234.5, 56.0) == "1234 ± 56"
    assert format_estimate(2.0, math.nan) == "2 ± n/a"
    assert format_estimate(math.nan, math.nan) == "–"
    assert format_rank(2.5) == "2.5" and format_rank(1.0) == "1"
    assert format_rank(5 / 3) == "1.67" and format_rank(math.nan) == "–"
    assert format_rank(1, 3) == "1–3" and format_rank(2, 2) == "2"
    assert reason_summary("Traceback (most recent call last):\n  x\nKeyError: 'a'") == (
        "KeyError: 'a'"
    )
    assert reason_summary(None) == "(no reason recorded)"


def test_markdown_shows_arrows_intervals_ranks(board: pd.DataFrame, frame: pd.DataFrame) -> None:
    text = to_markdown(board, problem_cells(frame))
    assert "`nll_test` ↓" in text and "`precision` ↑" in text
    assert "| `s2` |" in text  # no direction: no arrow, no rank
    # ml's interval lies below the other three-seed row's, but the one-seed row has no
    # interval, so ml shares ranks 1-2 with it and nothing is bold
    assert "| 1.10 ± 0.25 (1–2) |" in text and "**" not in text
    assert "Skipped and failed cells" in text and "ValueError: bad" in text
    # labels are code spans; a pipe inside one is escaped so the table keeps its columns
    assert f"`{EVIL}`" in text
    assert "a\\|b`c" in text
    header = next(line for line in text.splitlines() if line.startswith("| objective"))
    for line in text.splitlines():
        if "a\\|b" in line:
            assert line.replace("\\|", "").count("|") == header.count("|")


def test_html_escapes_every_third_party_string(board: pd.DataFrame, frame: pd.DataFrame) -> None:
    page = to_html(board, problem_cells(frame), standalone=True)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "nll_test ↓" in page and "precision ↑" in page
    assert "1.10&nbsp;±&nbsp;0.25 (1–2)" in page  # mean ± interval kept on one line
    assert "ValueError: bad" in page  # the traceback is there, folded and escaped
    assert "Content-Security-Policy" in page


def test_rich_tables_print_labels_literally(board: pd.DataFrame, frame: pd.DataFrame) -> None:
    tables = to_rich(board, problem_cells(frame))
    out = io.StringIO()
    console = Console(file=out, width=250, color_system=None)
    for table in tables:
        console.print(table)
    printed = out.getvalue()
    assert RICH_MARKUP in printed  # shown as typed, not turned into bold red "x"
    assert "jspi[pi=0.5]" in printed
    assert "nll_test ↓" in printed and "precision ↑" in printed
    assert "1.10 ± 0.25 (1–2)" in printed


def test_csv_keeps_numbers_and_directions(board: pd.DataFrame) -> None:
    back = pd.read_csv(io.StringIO(to_csv(board)))
    assert "nll_test ↓ mean" in back.columns and "precision ↑ rank" in back.columns
    assert "s2 rank" in back.columns
    ml = back[back["label"] == "ml"].iloc[0]
    assert ml["nll_test ↓ mean"] == pytest.approx(1.1)
    assert EVIL in set(back["label"])  # CSV is data: the label is kept exactly


def test_json_is_valid_and_null_for_missing(board: pd.DataFrame, frame: pd.DataFrame) -> None:
    doc = json.loads(to_json(board, problem_cells(frame)))
    assert doc["metrics"]["nll_test"] == {"direction": "min", "arrow": "↓"}
    (task,) = doc["tasks"]
    by_label = {r["objective"]: r for r in doc["tasks"][task]}
    assert by_label["ml"]["metrics"]["nll_test"]["rank"] == 1
    assert by_label["ml"]["metrics"]["nll_test"]["rank_hi"] == 2
    assert by_label[RICH_MARKUP]["metrics"]["nll_test"]["ci95"] is None  # one seed
    assert doc["problems"][0]["status"] == "error"


# --- output that cannot be turned against its reader -----------------------------------------

ESC_LABEL = "ml\x1b]0;owned\x07\x1b[2J\u202egnp.exe"
FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)"]


@pytest.fixture(scope="module")
def hostile_board() -> pd.DataFrame:
    data: list[dict] = []
    for label in [ESC_LABEL, *FORMULAS]:
        for seed, v in enumerate([-1.5, -1.25, -1.0]):
            data += rows(label, seed, {"nll_test": v, "precision": 0.5, "s2": 1.0})
    return leaderboard(pd.DataFrame(data).assign(task_label="gaussian"), DIRECTIONS)


def test_no_control_character_reaches_the_terminal(hostile_board: pd.DataFrame) -> None:
    problems = pd.DataFrame(
        [
            {
                "task_label": "t\x1b[31m",
                "label": "ml",
                "model_label": "m\x9b1m",
                "seed": 0,
                "status": "error",
                "reason": "Traceback (most recent call last):\nValueError: \x1b[5mboom",
                "cell_id": "x",
            }
        ]
    )
    out = io.StringIO()
    for table in to_rich(hostile_board, problems):
        Console(file=out, width=250, color_system=None).print(table)
    for text in (out.getvalue(), to_markdown(hostile_board, problems)):
        assert not any(ch in text for ch in "\x1b\x07\x9b\u202e"), repr(text)
        assert "ml\\x1b]0;owned\\x07\\x1b[2J\\u202egnp.exe" in text  # shown, escaped
        assert "ValueError: \\x1b[5mboom" in text
    doc = to_json(hostile_board, problems)
    assert not any(ch in doc for ch in "\x1b\x07\x9b\u202e")
    back = json.loads(doc)  # JSON escapes, and reading it back gives the label exactly
    assert ESC_LABEL in {r["objective"] for r in back["tasks"]["gaussian"]}


def test_csv_defuses_formulas_but_keeps_negative_numbers(hostile_board: pd.DataFrame) -> None:
    text = to_csv(hostile_board)
    back = pd.read_csv(io.StringIO(text))
    labels = set(back["label"])
    for formula in FORMULAS:
        assert formula not in labels and "'" + formula in labels
    assert not any(line.startswith(("=", "+", "-", "@")) for line in text.splitlines())
    assert "\x1b" not in text and "ml\\x1b]0;owned" in text
    # numbers stay numbers, the negative means included
    assert back["nll_test ↓ mean"].dtype == float
    assert back["nll_test ↓ mean"].tolist() == pytest.approx([-1.25] * 5)
