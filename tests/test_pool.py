"""``gbench run -j N``: worker processes, identical results, hard time limits, dead workers."""

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import faulty_workers
import pyarrow.parquet as pq
import pytest
import torch
from faulty import HangsForever, KillsItsWorker
from helpers import grid, registry_with

from benchmark_core.contract.errors import GbenchError, ResultsError
from benchmark_core.engine import executors, pool
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


def gone(pid: int) -> bool:
    """Whether a process has ended (a zombie waiting for a reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def wait_gone(pids, within=20.0):
    deadline = time.monotonic() + within
    while not all(gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if not gone(p)]


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@linux_only
def test_workers_die_with_a_sigkilled_parent(tmp_path):
    tests = str(Path(__file__).parent)
    script = [sys.executable, "-c", faulty_workers.HANGING_GRID, tests, str(tmp_path / "r")]
    hung = tmp_path / "hung"
    hung.mkdir()
    env = {**os.environ, "GBENCH_TEST_HANG_DIR": str(hung)}
    parent = subprocess.Popen(script, env=env, start_new_session=True)
    deadline = time.monotonic() + 180
    while len(list(hung.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(p.name) for p in hung.iterdir()]  # each stuck in a step that never returns
    assert len(workers) == 2 and not any(gone(p) for p in workers)
    parent.kill()
    parent.wait()
    assert wait_gone(workers) == []


@linux_only
def test_without_prctl_the_lifeline_still_ends_a_worker_whose_parent_died(tmp_path):
    tests = str(Path(__file__).parent)
    parent = subprocess.Popen(
        [sys.executable, "-c", faulty_workers.LIFELINE_TREE, tests],
        stdout=subprocess.PIPE,
        text=True,
    )
    [worker] = [int(parent.stdout.readline())]
    time.sleep(1.0)  # let the worker reach its watcher
    assert not gone(worker)
    parent.kill()
    parent.wait()
    assert wait_gone([worker]) == []


def test_workers_that_die_starting_up_end_the_run_with_a_message_and_no_claims(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(pool, "_worker_main", faulty_workers.dies_at_start_up)
    cells = grid(registry_with(), tasks="gaussian[a=[1,2]]")
    with pytest.raises(GbenchError, match="keep dying while they start up.*exit code 3"):
        run_grid(cells, tmp_path, CPU, jobs=2)
    assert not list(tmp_path.glob(".*.claim")) and not list(tmp_path.glob("*.parquet"))


def test_a_full_disk_says_so_keeps_what_is_written_and_releases_every_claim(tmp_path, monkeypatch):
    cells = grid(registry_with(), tasks="gaussian[a=[1,2,3]]", seeds="2")
    real = pq.write_table
    written = []

    def full_after_one(table, where, **kw):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(real(table, where, **kw))

    monkeypatch.setattr(pq, "write_table", full_after_one)
    with pytest.raises(ResultsError) as info:
        run_grid(cells, tmp_path, CPU, jobs=2)
    message = str(info.value)
    assert "the disk is full (No space left on device)" in message
    assert "The 1 cell(s) this run finished before it are saved whole" in message
    assert "run the same command again to resume" in message
    assert len(list(tmp_path.glob("*.parquet"))) == 1
    read_results([tmp_path], strict=True)
    assert not list(tmp_path.glob(".*"))  # no claim, no temporary file left


def test_a_double_ctrl_c_keeps_every_interrupted_record_and_gives_back_every_claim(
    tmp_path, monkeypatch
):
    cells = grid(registry_with(HangsForever), objectives="hangs_forever", seeds="2")
    real = executors.write_cell
    second = []

    def write_cell(out_dir, cell_id, rows, meta):
        if not second:  # a second Ctrl-C arrives while the first cell's record is written
            second.append(True)
            os.kill(os.getpid(), signal.SIGINT)
        return real(out_dir, cell_id, rows, meta)

    monkeypatch.setattr(executors, "write_cell", write_cell)

    def first_ctrl_c():
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob(".*.claim"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=first_ctrl_c, daemon=True).start()
    report = run_grid(cells, tmp_path, CPU, jobs=2)
    assert report.interrupted and report.counts["interrupted"] == 2 and second
    statuses = read_results([tmp_path], strict=True).frame.groupby("cell_id").status.first()
    assert len(statuses) == 2 and set(statuses) == {"interrupted"}
    assert not list(tmp_path.glob(".*.claim"))


@linux_only
def test_ctrl_c_while_workers_start_prints_no_worker_traceback(tmp_path):
    out = tmp_path / "r"
    cmd = [
        sys.executable, "-m", "benchmark_core.cli.main", "run", "--objectives", "ml",
        "--tasks", "gaussian[a=[1,2]]", "--models", "isotropic_gaussian", "--budget", "smoke",
        "-j", "2", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while len(children(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # the workers are importing torch now, as a terminal's Ctrl-C would find them
    os.killpg(proc.pid, signal.SIGINT)  # the terminal sends Ctrl-C to the whole process group
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(stat.parent.name))
    return found
