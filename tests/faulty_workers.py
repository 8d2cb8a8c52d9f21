"""Worker-process faults for the pool tests: a worker that dies starting up, a process tree
whose parent is killed. A plain module, so that spawned workers can import it by name."""

from __future__ import annotations

import os
import sys
import time
import types
from pathlib import Path

from faulty import HangsForever

#: Runs a small grid of hanging cells on two workers and prints the workers' pids: the test
#: then SIGKILLs this process and checks that its workers die with it.
HANGING_GRID = """
import sys, time
sys.path.insert(0, sys.argv[1])
import torch
from faulty_workers import HangsAndSays as HangsForever
from benchmark_core.engine import pool
from benchmark_core.engine.executors import run_grid
from benchmark_core.engine.grid import build_grid
from benchmark_core.engine.selection import parse_seeds, parse_selection
from benchmark_core.registry import Entry, PluginInfo, load_registry

registry = load_registry({"GBENCH_LOAD_PLUGINS": ""})
info = PluginInfo("tests", "tests", "gbench-tests", "0.0", builtin=False)
registry.components["objective"]["hangs_forever"] = Entry("objective", HangsForever, info)
cells = build_grid(
    registry, parse_selection("hangs_forever"), parse_selection("gaussian"),
    parse_selection("isotropic_gaussian"), parse_selection("nll_test"), parse_seeds("2"), "smoke",
)
real_give = pool._Worker.give

run_grid(cells, __import__("pathlib").Path(sys.argv[2]), torch.device("cpu"), jobs=2)
"""


class HangsAndSays(HangsForever):
    """A step that never returns, after writing ``<GBENCH_TEST_HANG_DIR>/<pid>``: the test
    knows which worker is stuck in it."""

    name = "hangs_forever"

    def step(self, batch, step):
        if step == 3:
            (Path(os.environ["GBENCH_TEST_HANG_DIR"]) / str(os.getpid())).touch()
        return super().step(batch, step)


def dies_at_start_up(*args: object) -> None:
    """A worker whose start-up fails (a broken CUDA driver, a plugin that cannot import)."""
    sys.stderr.write("worker start-up failed on purpose\n")
    os._exit(3)


def lifeline_only(parent: int, lifeline: object) -> None:
    """A worker on a system without prctl: only the lifeline pipe tells it its parent died."""
    from benchmark_core.engine import pool

    pool.sys = types.SimpleNamespace(platform="elsewhere")  # type: ignore[assignment]
    pool.die_with_parent(parent, lifeline)  # type: ignore[arg-type]
    time.sleep(600)


#: Starts a lifeline-only worker, prints its pid, and waits to be killed.
LIFELINE_TREE = """
import multiprocessing as mp, os, sys, time
sys.path.insert(0, sys.argv[1])
import faulty_workers

if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=faulty_workers.lifeline_only, args=(os.getpid(), reader))
    proc.start()
    reader.close()
    print(proc.pid, flush=True)
    time.sleep(600)
"""
