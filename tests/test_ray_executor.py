"""``gbench run --executor ray``: the same results as in-process, dead workers, hard time limits.

One local Ray instance serves the whole module. Its workers find the test-only objectives
(tests/faulty.py) by name through PYTHONPATH, as a cluster's workers find installed plugins.
"""

import logging
import os
from pathlib import Path

import pytest
import torch
from faulty import HangsForever, KillsItsWorker
from helpers import grid, registry_with, run_gbench

from benchmark_core.engine.executors import run_grid
from benchmark_core.results.store import read_results

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow
CPU = torch.device("cpu")
COLS = ["cell_id", "step", "metric", "value", "stderr", "status"]
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """A local two-CPU Ray instance for the module; yields its address."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    ray.init(
        address="local",
        num_cpus=2,
        num_gpus=0,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    # Start both workers now (torch takes seconds to import), so that the time limit test
    # (which runs before the worker-killing one) measures the cells, not a cold start.
    warm = ray.remote(num_cpus=1)(_import_the_harness)
    ray.get([warm.remote() for _ in range(2)])
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _import_the_harness():
    import faulty  # noqa: F401  (imports torch, the harness and the ml objective)


def frame(folder):
    return read_results([folder], strict=True).frame.sort_values(COLS[:3]).reset_index(drop=True)


def test_ray_gives_the_same_results_as_the_local_executor(tmp_path):
    cells = grid(registry_with(), tasks="gaussian", seeds="2")
    local = run_grid(cells, tmp_path / "local", CPU)
    on_ray = run_grid(cells, tmp_path / "ray", CPU, executor="ray")
    assert local.counts["ok"] == on_ray.counts["ok"] == 2
    a, b = frame(tmp_path / "local"), frame(tmp_path / "ray")
    assert a[COLS].equals(b[COLS])  # bit for bit: seeding does not depend on the process


def test_cells_already_done_are_not_dispatched_again(tmp_path):
    cells = grid(registry_with(), metrics="moments")
    assert run_grid(cells, tmp_path, CPU, executor="ray").counts["ok"] == 1
    stamps = {f: f.stat().st_mtime_ns for f in tmp_path.glob("*.parquet")}
    again = run_grid(cells, tmp_path, CPU, executor="ray")
    assert again.counts == {"done earlier": 1}
    assert {f: f.stat().st_mtime_ns for f in tmp_path.glob("*.parquet")} == stamps


def test_a_hanging_step_is_cancelled_at_the_time_limit_and_the_grid_goes_on(tmp_path):
    cells = grid(registry_with(HangsForever), objectives="hangs_forever,ml", metrics="moments")
    report = run_grid(cells, tmp_path, CPU, executor="ray", timeout=3.0)
    statuses = frame(tmp_path).groupby("label").status.first().to_dict()
    assert statuses == {"hangs_forever": "timeout", "ml": "ok"}
    assert report.failed[0][2] == "cancelled after 8 s (time limit 3 s per cell)"
    assert not list(tmp_path.glob(".*.claim"))


def test_a_ray_worker_dying_marks_its_cells_error_and_the_grid_goes_on(tmp_path):
    cells = grid(registry_with(KillsItsWorker), objectives="kills_its_worker,ml")
    report = run_grid(cells, tmp_path, CPU, executor="ray")
    statuses = frame(tmp_path).groupby("label").status.first().to_dict()
    assert statuses == {"kills_its_worker": "error", "ml": "ok"}
    [(_, status, why)] = report.failed
    assert status == "error"
    assert why.startswith("Ray worker died while running the cell (WorkerCrashedError): ")
    assert not list(tmp_path.glob(".*.claim"))


def test_gbench_run_on_a_ray_cluster_writes_the_results(cluster, tmp_path):
    out = tmp_path / "r"
    res = run_gbench(
        *("run", "--executor", "ray", "--address", cluster, "--out", str(out)),
        *("--objectives", "ml", "--tasks", "gaussian", "--models", "isotropic_gaussian"),
        *("--metrics", "nll_test", "--budget", "smoke"),
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert len(list(out.glob("*.parquet"))) == 1 and not list(out.glob(".*.claim"))
    assert set(frame(out).status) == {"ok"}
    assert "ok" in res.stdout and "starting a local Ray instance" not in res.stderr


def test_cuda_on_a_ray_cluster_without_gpus_is_a_usage_error(gbench, tmp_path):
    out = tmp_path / "r"
    res = gbench(
        "run", "--executor", "ray", "--device", "cuda", "--budget", "smoke", "--out", str(out)
    )
    assert res.code == 2
    assert "--device cuda, but the Ray cluster has no GPUs: add GPU nodes or use --device cpu." in (
        res.err
    )
    assert not list(out.glob("*.parquet"))
