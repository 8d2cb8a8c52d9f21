"""Faults and what gbench does about them; each test is named after its fault."""

import os
import re
import socket
import subprocess
import sys

import pytest
import torch
from gbench_plugins.objectives.ml import MaximumLikelihood
from helpers import grid, registry_with

from benchmark_core.contract import Metric
from benchmark_core.engine.executors import run_grid
from benchmark_core.engine.runner import run_cell
from benchmark_core.results.cell_claims import claim, release
from benchmark_core.results.store import read_results

CPU = torch.device("cpu")
GRID = [
    "run",
    "--objectives",
    "ml",
    "--tasks",
    "gaussian[a=[1,2,3,4]]",
    "--models",
    "isotropic_gaussian,gaussian",
    "--budget",
    "smoke",
]


def counts(stdout: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"│ ([a-z ]+?)\s+│\s+(\d+) │", stdout)}


class RaiseInSetup(MaximumLikelihood):
    name = "raise_in_setup"

    def setup(self, model, task, budget):
        raise RuntimeError("no optimiser for you")


class CtrlCInStep(MaximumLikelihood):
    """Ctrl-C arrives at step 60 while ``armed``; disarmed, a plain ml cell."""

    name = "ctrl_c_in_step"
    armed = True

    def step(self, batch, step):
        if step == 60 and CtrlCInStep.armed:
            raise KeyboardInterrupt
        return super().step(batch, step)


class NaNMetric(Metric):
    name = "nan_metric"

    def compute(self, model, task, ctx):
        return {"nan_metric": float("nan")}


def test_plugin_raising_in_setup_is_recorded_as_error():
    [cell] = grid(registry_with(RaiseInSetup), objectives="raise_in_setup")
    out = run_cell(cell, CPU)
    assert out.status == "error" and "RuntimeError: no optimiser for you" in out.error


def test_metric_returning_nan_is_recorded_with_a_message():
    [cell] = grid(registry_with(NaNMetric), metrics="nan_metric,nll_test")
    out = run_cell(cell, CPU)
    assert out.status == "ok"
    nan_rows = [r for r in out.rows if r["metric"] == "nan_metric"]
    assert nan_rows and all(r["error"] == "nan_metric returned NaN" for r in nan_rows)
    assert all(r["error"] is None for r in out.rows if r["metric"] == "nll_test")


def test_ctrl_c_during_a_cell_keeps_it_as_interrupted_stops_the_grid_and_a_rerun_resumes(
    tmp_path, monkeypatch
):
    # In-process twin of test_end_to_end.py's SIGINT/SIGTERM test (marked slow): the same
    # engine path, without starting processes or sending signals.
    cells = grid(registry_with(CtrlCInStep), objectives="ml,ctrl_c_in_step,reverse_kl")
    assert [c.objective.name for c in cells] == ["ml", "ctrl_c_in_step", "reverse_kl"]
    report = run_grid(cells, tmp_path, CPU)
    assert report.interrupted
    assert dict(report.counts) == {"ok": 1, "interrupted": 1}  # reverse_kl never started
    frame = read_results([tmp_path], strict=True).frame
    statuses = frame.groupby("objective").status.agg(set).to_dict()
    assert statuses == {"ml": {"ok"}, "ctrl_c_in_step": {"interrupted"}}
    assert frame.query("objective == 'ctrl_c_in_step'").step.max() == 50  # rows before step 60
    assert not list(tmp_path.glob(".*.claim"))

    monkeypatch.setattr(CtrlCInStep, "armed", False)
    again = run_grid(cells, tmp_path, CPU)
    assert not again.interrupted
    assert dict(again.counts) == {"done earlier": 1, "ok": 2}
    frame = read_results([tmp_path], strict=True).frame
    assert frame.groupby("cell_id").status.agg(set).tolist() == [{"ok"}] * 3


def test_claims_are_exclusive_and_stale_claims_of_dead_processes_are_taken_over(tmp_path):
    held = claim(tmp_path, "abc")
    assert held is not None and claim(tmp_path, "abc") is None
    release(held)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".abc.claim").write_text(f"{socket.gethostname()} {dead.pid}\n")
    taken = claim(tmp_path, "abc")
    assert taken is not None and str(os.getpid()) in taken.read_text()


@pytest.mark.slow
def test_two_concurrent_runs_on_one_folder_run_each_cell_exactly_once(tmp_path):
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "benchmark_core.cli.main", *GRID, "--out", str(out)]
    env = {**os.environ, "COLUMNS": "200"}
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    tallies = [counts(o[0]) for o in outputs]
    assert sum(t.get("ok", 0) for t in tallies) == 8, tallies
    frame = read_results([out], strict=True).frame
    assert frame.cell_id.nunique() == 8 and (frame.status == "ok").all()
    assert len(list(out.glob("*.parquet"))) == 8 and not list(out.glob(".*.claim"))


def test_deterministic_flag_turns_on_deterministic_kernels(gbench, tmp_path):
    try:
        res = gbench(
            "run",
            "--objectives",
            "ml",
            "--tasks",
            "gaussian",
            "--models",
            "isotropic_gaussian",
            "--budget",
            "smoke",
            "--deterministic",
            "--out",
            str(tmp_path / "r"),
        )
        assert res.code == 0
        assert torch.are_deterministic_algorithms_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)
