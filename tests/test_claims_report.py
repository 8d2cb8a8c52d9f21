"""The verdict table in Markdown, JSON and HTML, from hand-built verdicts."""

from __future__ import annotations

import json

from benchmark_core import Evidence, Interval, Verdict
from benchmark_core.reports.claims import ClaimReport, to_json, to_markdown
from benchmark_core.reports.claims_html import claims_page, claims_section


def report(name, verdict, statement="Q covers P.", cells=(3, 3)):
    return ClaimReport(
        name=name,
        description=f"{name} in words",
        statement=statement,
        source="a paper, §1",
        science="docs/science.md §6",
        tolerances="from the data",
        plugin="tests (gbench-tests 0.0)",
        budget="quick",
        verdict=verdict,
        cells=cells[0],
        cells_ok=cells[1],
    )


GOOD = Evidence.near("s² of ml", Interval.of([2.12, 2.13, 2.14]), 2.125, 0.1)
BAD = Evidence.above("gap", Interval.of([-1.0, -1.1, -0.9]))
ONE = Evidence.above("gap", Interval.of([1.0]))


def test_markdown_table_names_the_refuting_figure_and_every_figure_below():
    text = to_markdown(
        [
            report("good", Verdict.of([GOOD])),
            report("bad", Verdict.of([GOOD, BAD])),
            report("vague", Verdict.of([ONE], ["no result from x (error)"]), cells=(2, 1)),
        ]
    )
    assert "3 claims: 1 reproduced, 1 not reproduced, 1 inconclusive." in text
    assert "| `good`: good in words | ✔ **reproduced** | 1 of 1 figures as claimed |" in text
    assert "| `bad`: bad in words | ✘ **not reproduced** | gap: -1 [-1.248, -0.7516], " in text
    assert "| s² of ml | 2.13 [2.105, 2.155] | 3 | 2.125 ± 0.1 | ✔ reproduced |" in text
    assert "| gap | 1 (one seed: no interval) | 1 | > 0 | ? inconclusive |" in text
    assert "Budget: quick. Cells: 1 of 2 ok." in text and "- no result from x (error)" in text


def test_json_holds_every_figure_with_null_for_infinite_bounds():
    data = json.loads(to_json([report("vague", Verdict.of([ONE]))], {"budget": "quick"}))
    assert data["budget"] == "quick" and data["summary"] == {"inconclusive": 1}
    [claim] = data["claims"]
    [figure] = claim["evidence"]
    assert (figure["low"], figure["high"], figure["band"]) == (None, None, [0.0, None])


def test_html_escapes_what_plugins_write_and_runs_no_script():
    evil = report("evil", Verdict.of([BAD]), statement="<script>alert(1)</script>")
    section = claims_section([evil], ["partly here: <b>x</b>"])
    assert "<script>" not in section and "&lt;script&gt;" in section
    assert "&lt;b&gt;x&lt;/b&gt;" in section and "✘ not reproduced" in section
    page = claims_page([evil])
    assert "default-src 'none'" in page and "<script" not in page
    assert claims_section([]) == ""
