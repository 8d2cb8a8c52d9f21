"""The example plugin package (examples/gbench-mmd): install, list, check, run, uninstall.

Installed with ``pip install --target`` into a temporary folder put on PYTHONPATH, so the
cycle leaves the environment untouched; "uninstalling" removes that folder's files. `.ci/run`
does the same cycle with a real ``pip install`` / ``pip uninstall``.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import REPO

from benchmark_core.results.store import read_results

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "gbench-mmd"


def _run(*args, target, **kw):
    path = os.pathsep.join(
        p for p in (str(target), str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=REPO, **kw
    )


def test_example_plugin_installs_lists_checks_runs_and_uninstalls(tmp_path):
    target = tmp_path / "site"
    pip = ["-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    installed = _run(*pip, "--target", str(target), str(EXAMPLE), target=target)
    assert installed.returncode == 0, installed.stderr
    gbench = ["-m", "benchmark_core.cli.main"]

    listed = json.loads(_run(*gbench, "plugins", "--json", target=target).stdout)
    [mmd] = [p for p in listed["plugins"] if p["distribution"] == "gbench-mmd"]
    assert (mmd["name"], mmd["version"]) == ("mmd", "0.1.0")
    assert mmd["components"] == ["objective:mmd", "metric:energy_distance", "claim:mmd_recovers_p"]

    checked = _run(*gbench, "check-plugin", "gbench-mmd", target=target)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "12 passed, 0 failed, 0 skipped" in checked.stdout  # 9 for the components, 3 the claim

    own_tests = _run(
        "-m", "pytest", "-q", "-p", "benchmark_core.pytest_plugin", str(EXAMPLE / "tests"),
        target=target,
    )  # fmt: skip
    assert own_tests.returncode == 0, own_tests.stdout + own_tests.stderr
    assert "test_conformance[objective:mmd:smoke_cell[vector]]" not in own_tests.stdout  # -q

    out = tmp_path / "res"
    ran = _run(
        *gbench, "run", "--objectives", "mmd,ml", "--tasks", "gaussian", "--models",
        "isotropic_gaussian", "--budget", "smoke", "--out", str(out), target=target,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    frame = read_results([out], strict=True).frame
    by_objective = frame.groupby("objective").agg(
        status=("status", "first"), plugin=("objective_plugin", "first")
    )
    assert by_objective.to_dict("index") == {
        "ml": {"status": "ok", "plugin": "gbench"},
        "mmd": {"status": "ok", "plugin": "gbench-mmd"},
    }

    shutil.rmtree(target)  # pip cannot uninstall from a --target folder; this is the same
    listed = json.loads(_run(*gbench, "plugins", "--json", target=target).stdout)
    assert all(p["distribution"] != "gbench-mmd" for p in listed["plugins"])
    gone = _run(*gbench, "check-plugin", "gbench-mmd", target=target)
    assert gone.returncode == 2 and "no loaded plugin or distribution" in gone.stderr
