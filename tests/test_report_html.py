"""The HTML report: self-contained, every third-party string escaped, problems listed."""

from __future__ import annotations

import base64
import math
import re

import pandas as pd
import pytest
from matplotlib.figure import Figure

from benchmark_core.reports.html_report import figure_data_uri, render_report

EVIL = "<script>alert(1)</script>"
DIRECTIONS = {"nll_test": "min", "acc": "max"}


def rows(
    label: str,
    seed: int,
    value: float | None,
    status: str = "ok",
    error: str | None = None,
    budget: str = "quick",
) -> list[dict]:
    base = {
        "cell_id": f"{label}-{seed}-{budget}",
        "task": "pairs",
        "task_label": "pairs[k=3]",
        "model": "tabular",
        "model_label": "tabular",
        "objective": label.split("[")[0],
        "label": label,
        "params": '{"task": {}, "model": {}, "objective": {}}',
        "seed": seed,
        "budget": budget,
        "step": 5,
        "stderr": math.nan,
        "status": status,
        "error": error,
        "wall_time_s": 0.5,
        "device": "cpu",
        "started_at": "2025-03-01T10:00:00+00:00",
        "gbench_version": "0.1.0",
        "torch_version": "2.3.1",
        "objective_plugin": f"evil-plugin {EVIL}",
        "objective_plugin_version": "6.6.6",
    }
    if value is None:
        return [{**base, "metric": None, "metric_source": None, "value": math.nan}]
    return [
        {**base, "metric": "nll_test", "metric_source": "nll", "value": value},
        {**base, "metric": "acc", "metric_source": "clf", "value": 1 - value / 10},
    ]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    data = rows("ml", 0, 1.0) + rows("ml", 1, 1.2) + rows(EVIL, 0, 2.0) + rows(EVIL, 1, 2.2)
    data += rows(
        "jspi[pi=0.5]",
        0,
        None,
        status="error",
        error=f"Traceback (most recent call last):\n  File 'x'\nValueError: {EVIL}",
    )
    data += rows("reverse_kl", 0, None, status="skipped", error="needs the task's density")
    return pd.DataFrame(data)


def small_figure() -> Figure:
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, 0], label=EVIL)
    ax.set_title(EVIL)
    return fig


@pytest.fixture(scope="module")
def page(frame: pd.DataFrame) -> str:
    env = {
        "command": f"gbench report results --task {EVIL}",
        "device": "cpu",
        "date": "2025-03-01",
        "plugins": {f"plug{EVIL}": "1.0"},
    }
    return render_report(frame, DIRECTIONS, {f"figure {EVIL}": small_figure()}, env)


def test_page_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    for forbidden in ("<script", "<link", "@import", "url(", "<iframe", "<object"):
        assert forbidden not in lowered
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/") for s in sources)
    assert "http://" not in page and "https://" not in page
    assert "Content-Security-Policy" in page


def test_every_third_party_string_is_escaped(page: str) -> None:
    assert EVIL not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    # the objective label, its failure reason, the plugin name, the command line, the caption
    assert page.count(escaped) >= 6
    assert f"evil-plugin {escaped} 6.6.6" in page


def test_page_holds_leaderboard_environment_and_problems(page: str) -> None:
    assert "nll_test ↓" in page and "acc ↑" in page
    # mean ± interval kept on one line; 1.1 ± 1.3 and 2.1 ± 1.3 overlap: ranks 1-2 shared
    assert "1.1&nbsp;±&nbsp;1.3 (1–2)" in page
    assert "2025-03-01" in page and "0.1.0" in page and "2.3.1" in page
    problems = page[page.index("Skipped and failed cells") :]
    assert "error" in problems and "skipped" in problems
    assert "needs the task&#x27;s density" in problems
    assert "ValueError:" in problems


def test_figures_are_embedded_as_images(page: str) -> None:
    (uri,) = re.findall(r'src="(data:image/svg\+xml;base64,[^"]*)"', page)
    svg = base64.b64decode(uri.split(",", 1)[1]).decode()
    assert "<svg" in svg
    png = figure_data_uri(small_figure(), "png")
    assert base64.b64decode(png.split(",", 1)[1])[:4] == b"\x89PNG"
    with pytest.raises(ValueError):
        figure_data_uri(small_figure(), "gif")


def test_mixed_budgets_get_one_leaderboard_each(frame: pd.DataFrame) -> None:
    mixed = pd.concat([frame, pd.DataFrame(rows("ml", 0, 9.0, budget="paper"))])
    page = render_report(mixed, DIRECTIONS, None, {})
    assert "budget paper" in page and "budget quick" in page
    assert "<img" not in page


# --- what a reader sees first ----------------------------------------------------------------


def wide_frame() -> pd.DataFrame:
    """One task with 20 metrics: the full table is wide, its headline table is not."""
    data = []
    for label, shift in (("ml", 0.0), ("other", 1.0)):
        for seed in range(3):
            for r in rows(label, seed, 1.0 + shift + seed / 10):
                data.append(r)
                data += [
                    {**r, "metric": f"extra_{i:02d}", "value": r["value"] + i}
                    for i in range(18)
                    if r["metric"] == "nll_test"
                ]
    return pd.DataFrame(data)


def test_headline_figures_then_compact_tables_with_the_full_ones_folded() -> None:
    directions = {**DIRECTIONS, **{f"extra_{i:02d}": "min" for i in range(18)}}
    page = render_report(
        wide_frame(),
        directions,
        {"curves": small_figure()},
        {},
        headline_figures={"the frontier": small_figure()},
        headline_metrics={"pairs": ("nll_test", "acc")},
    )
    order = [
        page.index("<h2>Headline figures</h2>"),
        page.index("the frontier</figcaption>"),
        page.index("<h2>Leaderboards</h2>"),
        page.index("<h2>More figures</h2>"),
        page.index("curves</figcaption>"),
        page.index("<h2>Environment</h2>"),
    ]
    assert order == sorted(order)
    compact, rest = page.split('<details class="full">', 1)
    compact = compact[compact.index("<h2>Leaderboards</h2>") :]
    # the compact table: the two headline metrics, in the declared order, and no other
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", compact)
    assert heads == ["objective", "model", "seeds", "nll_test ↓", "acc ↑"]
    # the full table, one click away: all 20 metrics
    full = rest[: rest.index("</details>")]
    assert "<summary>All 20 metrics of pairs[k=3]</summary>" in full
    assert len(re.findall(r"<th[ >]", full)) == 3 + 20
    assert "extra_17 ↓" in full and "extra_17" not in compact
    # no average rank, and no rank across tasks
    assert "avg rank" not in page and "Average rank across tasks" not in page


def test_claims_have_a_marked_place_at_the_top(frame: pd.DataFrame) -> None:
    page = render_report(frame, DIRECTIONS, None, {})
    place = "<!-- gbench:claims"
    assert place in page
    assert page.index(place) < page.index("<h2>Leaderboards</h2>")
    with_claims = render_report(
        frame, DIRECTIONS, None, {}, claims_html="<h2>Claims</h2><p>verdict</p>"
    )
    assert place not in with_claims
    top = with_claims.index('<section id="claims"><h2>Claims</h2><p>verdict</p></section>')
    assert top < with_claims.index("<h2>Leaderboards</h2>")
