"""Whole-process behaviour: SIGKILL, SIGINT and SIGTERM mid-grid, and a pip-installed plugin."""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import run_gbench
from plugin_helpers import TOY_OBJECTIVE

from benchmark_core.results.store import read_results

pytestmark = pytest.mark.slow

GRID = [
    "run",
    "--objectives",
    "ml",
    "--tasks",
    "gaussian[a=[1,2,3,4]]",
    "--models",
    "isotropic_gaussian,gaussian",
    "--seeds",
    "2",
    "--budget",
    "smoke",
    "--metrics",
    "nll_test,moments",
]
N_CELLS = 16


def test_sigkill_mid_grid_then_rerun_finishes_with_one_ok_result_per_cell(tmp_path):
    out = tmp_path / "res"
    exe = [sys.executable, "-m", "benchmark_core.cli.main", *GRID, "--out", str(out)]
    proc = subprocess.Popen(exe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.parquet"))) < 3 and time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("the grid finished before it could be killed; make it larger")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_with = len(list(out.glob("*.parquet")))
    assert 3 <= killed_with < N_CELLS
    read_results([out], strict=True)  # every visible file is whole

    again = run_gbench(*GRID, "--out", str(out))
    assert again.returncode == 0, again.stdout + again.stderr
    res = read_results([out], strict=True)
    per_cell = res.frame.groupby("cell_id").status.agg(["first", "nunique"])
    assert len(per_cell) == N_CELLS and (per_cell["first"] == "ok").all()
    assert len(list(out.glob("*.parquet"))) == N_CELLS
    assert "done earlier" in again.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_sigint_or_sigterm_during_a_cell_keeps_finished_cells_and_exits_130(tmp_path, sig):
    out = tmp_path / "res"
    exe = [sys.executable, "-m", "benchmark_core.cli.main", *GRID, "--out", str(out)]
    proc = subprocess.Popen(exe, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.parquet"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "run the same command to resume" in stderr
    frame = read_results([out], strict=True).frame
    statuses = frame.groupby("cell_id").status.first()
    assert set(statuses) <= {"ok", "interrupted"} and (statuses == "ok").sum() >= 2
    assert not list(out.glob(".*.claim"))  # the cell in flight gave its claim back


HOLD_FIRST_CELL = """
import sys, time
from pathlib import Path
from benchmark_core.engine.grid import build_grid
from benchmark_core.engine.selection import parse_seeds, parse_selection
from benchmark_core.registry import load_registry
from benchmark_core.results.cell_claims import claim
a = sys.argv[2:]
cells = build_grid(
    load_registry(), parse_selection(a[2]), parse_selection(a[4]), parse_selection(a[6]),
    parse_selection(a[12]), parse_seeds(a[8]), a[10],
)
held = claim(Path(sys.argv[1]), cells[0].cell_id)
print(held is not None, flush=True)
time.sleep(600)
"""


def test_when_one_of_two_concurrent_runs_is_killed_the_other_finishes_every_cell(tmp_path):
    # The killed run holds the first cell (as a run killed mid-cell does) while the survivor
    # passes it; then it dies.
    out = tmp_path / "shared"
    out.mkdir()
    victim = subprocess.Popen(
        [sys.executable, "-c", HOLD_FIRST_CELL, str(out), *GRID],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert victim.stdout.readline().strip() == "True"
    exe = [sys.executable, "-m", "benchmark_core.cli.main", *GRID, "--out", str(out)]
    survivor = subprocess.Popen(exe, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.parquet"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.kill()
    victim.wait()
    stdout, stderr = survivor.communicate(timeout=300)
    assert survivor.returncode == 0, stdout + stderr
    res = read_results([out], strict=True)
    per_cell = res.frame.groupby("cell_id").status.first()
    assert len(per_cell) == N_CELLS and (per_cell == "ok").all()
    assert not list(out.glob(".*.claim"))


def test_pip_installed_plugin_shows_up_and_runs_beside_the_builtins(tmp_path):
    pkg = tmp_path / "gbench-toy"
    pkg.mkdir()
    (pkg / "toy_plugin.py").write_text(textwrap.dedent(TOY_OBJECTIVE))
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "gbench-toy"
        version = "0.3.1"

        [tool.setuptools]
        py-modules = ["toy_plugin"]

        [project.entry-points.gbench]
        toy = "toy_plugin"
    """)
    )
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(pkg),
        ],
        check=True,
        capture_output=True,
    )
    env = {"PYTHONPATH": str(target)}
    listed = json.loads(run_gbench("plugins", "--json", env=env).stdout)
    toy = [p for p in listed["plugins"] if p["name"] == "toy"]
    assert toy and toy[0]["distribution"] == "gbench-toy" and toy[0]["version"] == "0.3.1"
    assert toy[0]["components"] == ["objective:toy_moment_match"]

    out = tmp_path / "res"
    ran = run_gbench(
        "run",
        "--objectives",
        "toy_moment_match,ml",
        "--tasks",
        "gaussian",
        "--models",
        "isotropic_gaussian",
        "--budget",
        "smoke",
        "--metrics",
        "nll_test",
        "--out",
        str(out),
        env=env,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    frame = read_results([out], strict=True).frame
    rows = frame.groupby("objective").agg(
        status=("status", "first"), plugin=("objective_plugin", "first")
    )
    assert rows.to_dict("index") == {
        "ml": {"status": "ok", "plugin": "gbench"},
        "toy_moment_match": {"status": "ok", "plugin": "gbench-toy"},
    }
    # without it on the path it is gone, and asking for it is a usage error
    gone = run_gbench("run", "--objectives", "toy_moment_match", "--dry-run", "--out", str(out))
    assert gone.returncode == 2 and "unknown objective 'toy_moment_match'" in gone.stderr
