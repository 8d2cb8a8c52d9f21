"""Faults and what gbench does about them; each test is named after its fault."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch
from gbench_plugins.objectives.ml import MaximumLikelihood
from helpers import grid, registry_with

from benchmark_core.contract import Metric
from benchmark_core.engine import work
from benchmark_core.engine.executors import run_grid
from benchmark_core.engine.runner import run_cell
from benchmark_core.results import cell_claims
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
    assert taken is not None and str(os.getpid()) in taken.path.read_text()
    release(taken)


HOLD = """
import os, sys, time
from pathlib import Path
from benchmark_core.results.cell_claims import claim
held = claim(Path(sys.argv[1]), "abc")
print(held is not None, flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), 9)
time.sleep(600)
"""


def hold_claim(folder, then="wait"):
    """A process that claims cell ``abc`` in ``folder``, then waits (or dies at once)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), then], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "True"
    return proc


def test_a_claim_is_live_exactly_as_long_as_its_process(tmp_path):
    holder = hold_claim(tmp_path)
    try:
        assert claim(tmp_path, "abc") is None
    finally:
        holder.kill()
        holder.wait()
    taken = claim(tmp_path, "abc")  # the kernel dropped its lock the moment it died
    assert taken is not None
    release(taken)
    assert not list(tmp_path.glob(".*.claim"))


def test_a_claim_whose_pid_is_alive_again_is_taken_over(tmp_path):
    # A claimant SIGKILLed, then its pid reused (here: the pid of this very process, alive).
    hold_claim(tmp_path, then="die").wait()
    path = tmp_path / ".abc.claim"
    owner = json.loads(path.read_text())
    path.write_text(json.dumps({**owner, "pid": os.getpid()}))
    taken = claim(tmp_path, "abc")
    assert taken is not None and json.loads(taken.path.read_text())["token"] == taken.token
    release(taken)


def test_a_claim_from_another_machine_is_respected_while_its_heartbeat_goes_on(
    tmp_path, monkeypatch
):
    path = tmp_path / ".abc.claim"
    path.write_text(json.dumps({"host": "elsewhere", "boot": "other", "pid": 1, "locked": True}))
    now = [1000.0]
    monkeypatch.setattr(cell_claims, "_monotonic", lambda: now[0])
    assert claim(tmp_path, "abc") is None  # first sight
    for _ in range(3):  # its heartbeat touches the file within each lease
        now[0] += cell_claims.LEASE_S - 1
        stamp = path.stat().st_mtime_ns + 1_000_000_000
        os.utime(path, ns=(stamp, stamp))
        assert claim(tmp_path, "abc") is None
    now[0] += cell_claims.LEASE_S + 1  # then it stops: its machine died
    taken = claim(tmp_path, "abc")
    assert taken is not None and json.loads(taken.path.read_text())["host"] == socket.gethostname()
    release(taken)


def test_a_claim_left_on_another_machine_long_ago_is_taken_at_once(tmp_path):
    path = tmp_path / ".abc.claim"
    path.write_text("elsewhere 1\n")  # the format before JSON, untouched for two hours
    old = path.stat().st_mtime - 7200
    os.utime(path, (old, old))
    taken = claim(tmp_path, "abc")
    assert taken is not None
    release(taken)


def test_held_claims_beat_and_a_released_claim_keeps_a_newer_claimants_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cell_claims, "HEARTBEAT_S", 0.05)
    held = claim(tmp_path, "abc")
    before = held.path.stat().st_mtime_ns
    os.utime(held.path, ns=(before - 10**9, before - 10**9))
    deadline = time.monotonic() + 30
    while held.path.stat().st_mtime_ns < before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert held.path.stat().st_mtime_ns >= before  # touched by the heartbeat thread
    held.path.unlink()  # as if another process had judged it stale and taken it over
    newer = tmp_path / ".abc.claim"
    newer.write_text("someone else")
    release(held)
    assert newer.read_text() == "someone else"


def test_force_runs_a_cell_whose_claimant_died_and_whose_pid_lives_again(tmp_path):
    [cell] = grid(registry_with(), metrics="nll_test")
    hold_claim(tmp_path, then="die").wait()
    path = tmp_path / ".abc.claim"
    owner = json.loads(path.read_text())
    path.rename(tmp_path / f".{cell.cell_id}.claim")
    (tmp_path / f".{cell.cell_id}.claim").write_text(json.dumps({**owner, "pid": 1}))
    for force in (False, True):
        report = run_grid([cell], tmp_path, CPU, force=force, wait_elsewhere=0)
        assert report.counts["ok"] == 1 and not report.failed, report
    assert not list(tmp_path.glob(".*.claim"))


def test_a_cell_still_running_elsewhere_at_the_end_is_said_and_fails_the_run(
    tmp_path, monkeypatch, gbench
):
    [cell] = grid(registry_with(), metrics="nll_test")
    holder = hold_claim(tmp_path)
    try:
        (tmp_path / ".abc.claim").rename(tmp_path / f".{cell.cell_id}.claim")
        report = run_grid([cell], tmp_path, CPU, wait_elsewhere=0)
        assert report.counts == {"running elsewhere": 1}
        [(failed, status, why)] = report.failed
        assert failed is cell and status == "running elsewhere"
        assert f"pid {holder.pid}" in why
        assert cell.cell_id in report.problems[-1] and "still running" in report.problems[-1]
        monkeypatch.setattr(work, "WAIT_ELSEWHERE_S", 0.0)
        res = gbench(
            "run", "--objectives", "ml", "--tasks", "gaussian", "--models",
            "isotropic_gaussian", "--metrics", "nll_test", "--budget", "smoke",
            "--out", str(tmp_path),
        )  # fmt: skip
        assert res.code == 1 and "still running in another gbench process" in res.err
    finally:
        holder.kill()
        holder.wait()
    again = run_grid([cell], tmp_path, CPU, wait_elsewhere=0)  # its claimant died: taken over
    assert again.counts == {"ok": 1} and not again.failed


def test_a_run_waits_for_a_cell_running_elsewhere_and_takes_it_over_if_its_claimant_dies(
    tmp_path,
):
    [cell] = grid(registry_with(), metrics="nll_test")
    holder = hold_claim(tmp_path)
    (tmp_path / ".abc.claim").rename(tmp_path / f".{cell.cell_id}.claim")
    killer = threading.Timer(2.0, holder.kill)
    killer.start()
    report = run_grid([cell], tmp_path, CPU, wait_elsewhere=120)
    holder.wait()
    assert report.counts == {"ok": 1} and not report.failed
    assert not list(tmp_path.glob(".*.claim"))


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


def test_a_full_disk_is_an_error_message_and_exit_1_not_a_traceback(tmp_path, monkeypatch, gbench):
    import errno

    import pyarrow.parquet as pq

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    res = gbench(*GRID, "--metrics", "nll_test", "--out", str(tmp_path / "r"))
    assert res.code == 1, res.err
    assert "Error: could not write to the results folder" in res.err
    assert "the disk is full (No space left on device)" in res.err
    assert "Traceback" not in res.err
    assert not list((tmp_path / "r").glob(".*"))  # no claim and no temporary file left
