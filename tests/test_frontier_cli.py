"""The reference curve end to end: a real pairs run (ml and reverse_kl, tabular, two seeds),
then ``gbench leaderboard``, ``gbench report`` and ``gbench plot frontier`` on it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmark_core.cli.main import main
from benchmark_core.registry import reset_registry

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pairs")
    reset_registry()
    try:
        main(
            ["run", "--objectives", "ml,reverse_kl", "--tasks", "pairs", "--models", "tabular",
             "--metrics", "nll_test,nll_oracle", "--seeds", "2", "--budget", "smoke",
             "--out", str(out)]
        )  # fmt: skip
    except SystemExit as exc:
        assert not exc.code, f"the grid failed with exit code {exc.code}"
    finally:
        reset_registry()
    return out


def cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_the_leaderboard_text_states_the_reference_and_the_verdicts(results_dir, capsys):
    assert cli("leaderboard", str(results_dir), "--format", "markdown") == 0
    out = capsys.readouterr().out
    assert "Frontier, pairs: nll_oracle against nll_test:" in out
    ref = re.search(r"- Reference: ml \(tabular\)'s temperature curve \(T = ([^)]*)\) at step "
                    r"(\d+) of 400: the evaluation \(of steps 0, 200, 400\) with the lowest "
                    r"mean nll_test at T = 1", out)  # fmt: skip
    assert ref and ref.group(1) == "0.5, 0.7, 0.85, 1, 1.2"
    assert "- Beyond ml's curve (better than ml's curve on both nll_test and nll_oracle" in out
    assert re.search(r"reverse_kl at T = [0-9., ]+", out)
    # csv stays a table
    assert cli("leaderboard", str(results_dir), "--format", "csv") == 0
    assert "Frontier" not in capsys.readouterr().out


def test_the_report_and_the_plot(results_dir, tmp_path, capsys):
    page = tmp_path / "r.html"
    assert cli("report", str(results_dir), "-o", str(page), "--images", "png") == 0
    html = page.read_text()
    assert "Reference: ml (tabular)&#x27;s temperature curve" in html
    assert 'class="frontier"' in html and "Beyond ml&#x27;s curve" in html
    assert cli("plot", "frontier", str(results_dir), "--x", "nll_test", "--y", "nll_oracle",
               "-o", str(tmp_path / "f")) == 0  # fmt: skip
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG_MAGIC
    assert cli("plot", "frontier", str(results_dir), "--x", "nll_test", "--y", "nll_oracle",
               "--reference", "nope", "-o", str(tmp_path / "g")) == 2  # fmt: skip
    assert "--reference nope: no such objective" in capsys.readouterr().err
