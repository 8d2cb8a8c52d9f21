"""Using the machine: usable cores (affinity, cgroup quota), ``-j auto`` as the default, worker
thread pools sized to their share, and one pool of workers per run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from faulty import ReportsItsThreads
from helpers import grid, registry_with

from benchmark_core.engine import executors, machine
from benchmark_core.engine.executors import run_grid
from benchmark_core.engine.waves import run_waves
from benchmark_core.results.store import read_results

CPU = torch.device("cpu")


def cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "cpus"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}, 3.0),
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        ({}, None),
    ],
)
def test_cgroup_quota_in_cores(tmp_path, files, cpus):
    assert machine.cgroup_cpus(cgroup(tmp_path, files)) == cpus


def test_usable_cores_is_the_affinity_within_the_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert machine.usable_cores(cgroup(tmp_path / "none", {})) == 4
    assert machine.usable_cores(cgroup(tmp_path / "q", {"cpu.max": "150000 100000"})) == 2
    assert machine.usable_cores(cgroup(tmp_path / "s", {"cpu.max": "10000 100000"})) == 1


def test_default_jobs_is_one_item_per_core_never_more_than_the_items(monkeypatch):
    monkeypatch.setattr(machine, "usable_cores", lambda: 4)
    assert machine.default_jobs(CPU, 10) == 4
    assert machine.default_jobs(CPU, 3) == 3
    assert machine.default_jobs(CPU, 0) == 1
    assert machine.default_jobs(torch.device("mps"), 10) == 1
    assert machine.worker_threads(2) == 2 and machine.worker_threads(8) == 1


def test_thread_environment_is_set_for_workers_and_restored(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    with machine.thread_environment(2):
        assert all(os.environ[v] == "2" for v in machine.THREAD_VARIABLES)
    assert os.environ["OMP_NUM_THREADS"] == "7" and "OPENBLAS_NUM_THREADS" not in os.environ


def losses(folder: Path) -> set[float]:
    frame = read_results([folder], strict=True).frame
    return set(frame[frame.metric == "train_loss"].value)


def test_workers_get_their_share_of_threads_for_torch_and_blas(tmp_path, monkeypatch):
    """Two workers on a (pretend) 4-core machine: 2 torch threads each, capped by the task's
    max_threads=1 in the cell, and OpenBLAS told 2 before it started."""
    monkeypatch.setattr(machine, "usable_cores", lambda: 4)
    cells = grid(registry_with(ReportsItsThreads), objectives="reports_its_threads", seeds="2")
    report = run_grid(cells, tmp_path, CPU, jobs=2, replicas=1)
    assert report.counts["ok"] == 2 and len(report.workers_ready_s) == 2
    assert losses(tmp_path) == {1.0 + 100 * 2}
    assert all(0 < s < 120 for s in report.workers_ready_s)


def test_a_lone_item_runs_in_this_process_without_workers(tmp_path):
    cells = grid(registry_with(), seeds="3")  # three seeds, one replica batch
    report = run_grid(cells, tmp_path, CPU, jobs=2, replicas=32)
    assert report.counts["ok"] == 3 and report.workers_ready_s == []


def test_one_pool_serves_every_wave_of_a_warm_started_run(tmp_path, monkeypatch):
    started = []
    real = executors.WorkerPool

    def counting(*args, **kwargs):
        started.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(executors, "WorkerPool", counting)
    cells = grid(registry_with(), objectives="ml,reverse_kl[init=ml]", seeds="2")
    report = run_waves(cells, tmp_path, CPU, jobs=2, replicas=1)
    assert report.counts["ok"] == 4
    assert len(started) == 1 and len(report.workers_ready_s) == 2  # not two per wave


def test_without_j_gbench_runs_one_worker_per_core(gbench, tmp_path, monkeypatch):
    monkeypatch.delenv("GBENCH_JOBS")
    monkeypatch.setattr(machine, "usable_cores", lambda: 2)
    args = ["run", "--objectives", "ml", "--tasks", "gaussian", "--models"]
    args += ["isotropic_gaussian", "--seeds", "2", "--replicas", "1", "--budget", "smoke"]
    args += ["--metrics", "moments", "--out", str(tmp_path)]
    result = gbench(*args)
    assert result.code == 0, result.err
    assert "2 worker process(es), each ready" in result.out
    again = gbench(*args, "--force", "-j", "1")
    assert again.code == 0 and "worker process" not in again.out


@pytest.mark.parametrize("value", ["0", "abc", "1.5", "-3"])
def test_bad_jobs_are_usage_errors(gbench, tmp_path, value):
    result = gbench("run", "--tasks", "gaussian", "-j", value, "--dry-run", "--out", str(tmp_path))
    assert result.code == 2
    assert "is not a number of jobs: give auto" in result.err


def test_jobs_auto_in_a_config_file(gbench, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[run]\njobs = "auto"\ntasks = "gaussian"\n')
    assert gbench("run", "--config", str(config), "--dry-run").code == 0
    config.write_text('[run]\njobs = 2\ntasks = "gaussian"\n')
    assert gbench("run", "--config", str(config), "--dry-run").code == 0
    config.write_text('[run]\njobs = "many"\n')
    result = gbench("run", "--config", str(config), "--dry-run")
    assert result.code == 2 and "jobs" in result.err
