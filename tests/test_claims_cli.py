"""``gbench claims`` through the command line: usage errors, listing, and a real claim run end
to end at the smoke budget (resumed, then refuted by a false claim on the same cells)."""

from __future__ import annotations

import json

import pytest
from claim_helpers import ReverseKLCoversBothModes
from gbench_plugins.claims.gaussian import FIGURE1_TOL
from helpers import registry_with

from benchmark_core.contract.claim import NOT_REPRODUCED


def test_unknown_claim_is_a_usage_error_naming_the_valid_ones(gbench, tmp_path):
    got = gbench("claims", "jspi_interpolate", "--out", str(tmp_path))
    assert got.code == 2
    assert "unknown claim 'jspi_interpolate'. Did you mean 'jspi_interpolates'?" in got.err
    assert "Valid claims: adversarial_tracks_jspi, jspi_interpolates," in got.err
    assert not any(tmp_path.iterdir())  # nothing ran


def test_all_with_names_is_a_usage_error(gbench, tmp_path):
    got = gbench("claims", "all", "jspi_interpolates", "--out", str(tmp_path))
    assert got.code == 2 and "'all' selects every claim" in got.err


def test_list_shows_each_claim_with_its_grid(gbench):
    got = gbench("claims", "--list")
    assert got.code == 0, got.err
    assert "scheduled_sampling_inconsistent: scheduled sampling is inconsistent (pairs)" in got.out
    assert (
        "grid: --objectives 'ml,scheduled_sampling[eps=[0.0,0.5]]' --tasks "
        "'pairs[dependence=[0.5,0.9]]' --models 'tabular' --metrics "
        "'mutual_info,ss_fixed_point_tv' --seeds 3" in got.out
    )


def test_no_run_on_an_empty_folder_is_inconclusive_and_exits_1(gbench, tmp_path):
    got = gbench("claims", "text_quality_coverage", "--no-run", "--out", str(tmp_path / "r"))
    assert got.code == 1
    assert "? **inconclusive**" in got.out
    assert "no result from text · lstm · ml · seed 0 (not run)" in got.out


@pytest.mark.slow
def test_a_claim_runs_end_to_end_resumes_and_a_false_one_is_refuted(gbench, tmp_path, monkeypatch):
    out = tmp_path / "res"
    args = ("claims", "ml_covers_reverse_kl_seeks", "--budget", "smoke", "--out", str(out))
    first = gbench(*args, "--format", "json")
    data = json.loads(first.out)
    [claim] = data["claims"]
    assert claim["cells"] == claim["cells_ok"] == 12
    assert "12 cells: 0 reused" in first.err
    assert first.code == (0 if claim["outcome"] == "reproduced" else 1)
    figures = {e["what"]: e for e in claim["evidence"]}
    ml = figures["s² of ml on gaussian"]
    tol = 2.125 * FIGURE1_TOL
    assert ml["n"] == 3 and ml["band"] == [pytest.approx(2.125 - tol), pytest.approx(2.125 + tol)]
    # The fitted s² of ML is the data's (a+b)/2, to the training set's error.
    assert ml["measured"] == pytest.approx(2.125, rel=0.03)
    assert len(list(out.glob("*.parquet"))) == 12

    again = gbench(*args, "-o", str(tmp_path / "claims.md"))
    assert "12 cells: 12 reused" in again.err
    text = (tmp_path / "claims.md").read_text()
    assert text.startswith("# Claims\n") and "| `ml_covers_reverse_kl_seeks`:" in text

    # A false claim on cells already there: refuted, with the figure that refutes it.
    from benchmark_core import registry as plugins

    fake = registry_with(ReverseKLCoversBothModes)
    monkeypatch.setattr(plugins, "get_registry", lambda: fake)
    false = gbench("claims", "reverse_kl_covers_both_modes", "--budget", "smoke", "--out", str(out))
    assert false.code == 1
    assert "2 cells: 2 reused" in false.err
    assert f"✘ **{NOT_REPRODUCED}**" in false.out and "|mean_0\\| of reverse_kl" in false.out
    as_json = gbench("claims", "reverse_kl_covers_both_modes", "--budget", "smoke", "--out",
                     str(out), "--format", "json")  # fmt: skip
    [refuted] = json.loads(as_json.out)["claims"]
    [figure] = refuted["evidence"]
    assert refuted["outcome"] == figure["outcome"] == NOT_REPRODUCED
    assert abs(figure["measured"] - 2) < 0.1 and figure["low"] > 0.5  # on a mode, not between
    assert figure["expected"] == "0 ± 0.5" and figure["band"] == [-0.5, 0.5]

    report = gbench("report", str(out), "-o", str(tmp_path / "r.html"))
    assert report.code == 0, report.err
    page = (tmp_path / "r.html").read_text()
    assert page.index("<h2>Claims</h2>") < page.index("<h2>Leaderboards</h2>")
    assert "reverse_kl_covers_both_modes" in page and "not reproduced" in page
