"""``gbench new-plugin``: the generated package passes check-plugin and its own tests."""

import os
import subprocess
import sys

import pytest
from helpers import REPO


def _run(*args, target, cwd=REPO):
    path = os.pathsep.join(
        p for p in (str(target), str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "80"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.mark.slow
def test_a_generated_plugin_installs_conforms_and_passes_its_own_tests(tmp_path, gbench):
    made = gbench("new-plugin", "gbench-tide", "--dir", str(tmp_path))
    assert made.code == 0, made.err
    package = tmp_path / "gbench-tide"
    assert sorted(p.relative_to(package).as_posix() for p in package.rglob("*.*")) == [
        "README.md",
        "gbench_tide.py",
        "pyproject.toml",
        "tests/test_plugin.py",
    ]
    assert (
        '[project.entry-points.gbench]\ntide = "gbench_tide"'
        in (package / "pyproject.toml").read_text()
    )
    target = tmp_path / "site"
    pip = ["-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    installed = _run(*pip, "--target", str(target), str(package), target=target)
    assert installed.returncode == 0, installed.stderr

    checked = _run("-m", "benchmark_core.cli.main", "check-plugin", "gbench-tide", target=target)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "20 passed, 0 failed, 0 skipped" in checked.stdout  # 4 components, stderr included
    for kind, name in [("task", "tide_gaussian"), ("model", "tide_diag_gaussian")]:
        assert f"{kind}:{name}:declarations" in checked.stdout
    assert "objective:tide_ml:smoke_cell[vector]" in checked.stdout
    assert "metric:tide_sample_nll:stderr[vector]" in checked.stdout

    own = _run(
        "-m", "pytest", "-q", "-p", "benchmark_core.pytest_plugin", "-p", "no:cacheprovider",
        "tests", target=target, cwd=package,
    )  # fmt: skip
    assert own.returncode == 0, own.stdout + own.stderr
    assert "21 passed" in own.stdout  # 20 conformance checks and the density test


@pytest.mark.parametrize(
    "name", ["Bad Name", "9lives", "a--b", "gbench-", "gbench", "x" * 41, "_x", "ok\x1b[31m"]
)
def test_an_invalid_name_is_refused_with_exit_2(tmp_path, gbench, name):
    refused = gbench("new-plugin", name, "--dir", str(tmp_path))
    assert refused.code == 2 and "is not a valid plugin name" in refused.err
    assert "Traceback" not in refused.err and list(tmp_path.iterdir()) == []


def test_an_existing_non_empty_folder_is_refused_with_exit_2_and_left_alone(tmp_path, gbench):
    (tmp_path / "gbench-mine").mkdir()
    mine = tmp_path / "gbench-mine" / "notes.txt"
    mine.write_text("keep me")
    refused = gbench("new-plugin", "mine", "--dir", str(tmp_path))
    assert refused.code == 2 and "exists and is not an empty folder" in refused.err
    assert [p.name for p in (tmp_path / "gbench-mine").iterdir()] == ["notes.txt"]
    assert mine.read_text() == "keep me"
    (tmp_path / "gbench-empty").mkdir()  # an empty folder is fine
    assert gbench("new-plugin", "empty", "--dir", str(tmp_path)).code == 0


def test_a_folder_that_cannot_be_written_is_refused_with_exit_2(tmp_path, gbench):
    (tmp_path / "afile").write_text("")
    refused = gbench("new-plugin", "mine", "--dir", str(tmp_path / "afile" / "sub"))
    assert refused.code == 2 and "cannot write" in refused.err and "Traceback" not in refused.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
