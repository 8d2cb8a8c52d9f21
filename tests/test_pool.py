"""``gbench run -j N``: worker processes, identical results, hard time limits, dead workers."""

import pytest
import torch
from faulty import HangsForever, KillsItsWorker
from helpers import grid, registry_with

from benchmark_core.engine.executors import run_grid
from benchmark_core.results.store import read_results

pytestmark = pytest.mark.slow
CPU = torch.device("cpu")
COLS = ["cell_id", "step", "metric", "value", "stderr", "status"]


def frame(folder):
    return read_results([folder], strict=True).frame.sort_values(COLS[:3]).reset_index(drop=True)


def test_two_workers_give_the_same_results_as_one_process(tmp_path):
    cells = grid(registry_with(), tasks="gaussian[a=[1,2]]", models=None, seeds="2")
    one = run_grid(cells, tmp_path / "one", CPU)
    two = run_grid(cells, tmp_path / "two", CPU, jobs=2)
    assert one.counts["ok"] == two.counts["ok"] == 8
    a, b = frame(tmp_path / "one"), frame(tmp_path / "two")
    assert a[COLS].equals(b[COLS])  # bit for bit: seeding does not depend on the process


def test_a_hanging_step_is_killed_at_the_time_limit_and_the_grid_goes_on(tmp_path):
    cells = grid(registry_with(HangsForever), objectives="hangs_forever,ml")
    report = run_grid(cells, tmp_path, CPU, jobs=2, timeout=8.0)
    statuses = frame(tmp_path).groupby("label").status.first().to_dict()
    assert statuses == {"hangs_forever": "timeout", "ml": "ok"}
    assert report.counts["timeout"] == 1 and "killed after" in report.failed[0][2]


def test_with_one_job_a_time_limit_still_kills_a_hanging_step(tmp_path):
    # In-process, a step that never returns could not be stopped: with --timeout the cell
    # runs in a worker process even at -j 1.
    cells = grid(registry_with(HangsForever), objectives="hangs_forever,ml", metrics="moments")
    report = run_grid(cells, tmp_path, CPU, jobs=1, timeout=10.0)
    statuses = frame(tmp_path).groupby("label").status.first().to_dict()
    assert statuses == {"hangs_forever": "timeout", "ml": "ok"}
    assert "killed after 15 s (time limit 10 s per cell)" in report.failed[0][2]


def test_a_worker_process_dying_marks_its_cell_error_and_the_grid_goes_on(tmp_path):
    cells = grid(registry_with(KillsItsWorker), objectives="kills_its_worker,ml", seeds="2")
    report = run_grid(cells, tmp_path, CPU, jobs=2)
    statuses = frame(tmp_path).groupby(["label", "seed"]).status.first()
    assert set(statuses["kills_its_worker"]) == {"error"} and set(statuses["ml"]) == {"ok"}
    assert all("worker process died (exit code 9)" in err for _, _, err in report.failed)
    assert not list(tmp_path.glob(".*.claim"))
