"""Print gbench's speed figures as ratios against their targets (issue 6).

Run from the repository root::

    python tests/benchmarks/ratios.py            # steps, replicas, text, harness (~5 min)
    python tests/benchmarks/ratios.py --grid     # also -j 1 vs -j 2 on 24 gaussian cells
    python tests/benchmarks/ratios.py --grid --neighbour   # ... beside a nice-19 busy loop
    python tests/benchmarks/ratios.py --main-grid          # the README's job: default vs -j 1
    python tests/benchmarks/ratios.py --flops    # peak GFLOP/s, 32 jspi replicas against it

Every figure is measured in this run, side by side with what it is compared to; times are
process CPU seconds on one intra-op thread (robust to other processes on a shared machine)
except the grid rows, which are wall time. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from helpers import registry_with  # noqa: E402
from speed import (  # noqa: E402
    _CACHE,
    CPU,
    Noop,
    batches,
    cells,
    cpu_time,
    grid_seconds,
    replica_step_seconds,
    step_seconds,
    trivial_cells,
)

from benchmark_core.engine.loop import build as build_work  # noqa: E402
from benchmark_core.registry import load_registry  # noqa: E402

#: Figures of a typical peer implementation for the same text work (issue 6), in seconds.
PEER_TEXT_EPOCH_S, PEER_TEXT_SCORING_S = 13.0, 48.0

Row = tuple[str, str, str, str]
ROWS: list[Row] = []


def row(what: str, measured: str, compared: str, ratio: str) -> None:
    """Add one table row and echo it as soon as it is measured."""
    ROWS.append((what, measured, compared, ratio))
    print(f"  {what}: {measured} | {compared} | {ratio}", file=sys.stderr, flush=True)


def training_steps(registry, steps: int) -> None:
    """One training step of each objective on each task, at the quick budget's shapes."""
    for task in ("gaussian", "mixture", "pairs", "text"):
        for cell in cells(registry, "all", task, seeds="1"):
            if cell.objective.params.get("pi", 0.5) != 0.5:
                continue  # π changes no cost
            n = max(3, steps // 10) if cell.task.cls.kind == "sequence" else steps
            ms = 1000 * step_seconds(cell, n)
            what = f"step: {cell.task.label} · {cell.model.label} · {cell.objective.label}"
            row(what, f"{ms:.2f} ms", f"batch {cell.budget.batch_size}", "")


def replicas(registry, steps: int, count: int) -> None:
    """``count`` replicas trained as one against the same cells one by one, per step."""
    for objective in ("ml", "reverse_kl", "jspi_exact", "jspi"):
        group = cells(registry, objective, "gaussian", "isotropic_gaussian", seeds=str(count))
        alone = sum(step_seconds(cell, steps) for cell in group[:4]) / 4 * count
        together = replica_step_seconds(group, steps)
        target = "target ≥ 8×" if objective == "jspi" else ""
        row(
            f"{count} replicas of gaussian {objective}, per step",
            f"{1000 * together:.1f} ms together",
            f"{1000 * alone:.1f} ms one by one",
            f"{alone / together:.1f}× {target}".strip(),
        )


def text() -> None:
    """Text ml: one epoch at batch 64, then nll_oracle and nll_test on 10,000 each."""
    try:
        from workloads import text_ml_epoch, text_sampling_and_scoring, text_setup
    except ImportError:
        row("text ml epoch + scoring", "n/a (tests/benchmarks/workloads.py missing)", "", "")
        return
    task, model = text_setup()
    epochs = []
    for _ in range(2):  # the first pays one-time costs (allocator, kernels' first calls)
        start = time.process_time()
        text_ml_epoch(task, model)
        epochs.append(time.process_time() - start)
    epoch = min(epochs)
    start = time.process_time()
    text_sampling_and_scoring(task, model)
    scoring = time.process_time() - start
    row(
        "text ml: epoch (10,000 seqs, batch 64; best of 2)",
        f"{epoch:.2f} s (first {epochs[0]:.2f} s; target ≤ 3 s)",
        f"peer {PEER_TEXT_EPOCH_S:g} s",
        f"{PEER_TEXT_EPOCH_S / epoch:.1f}×",
    )
    row(
        "text: sample + nll_oracle, nll_test (10,000 each)",
        f"{scoring:.1f} s",
        f"peer {PEER_TEXT_SCORING_S:g} s",
        f"{PEER_TEXT_SCORING_S / scoring:.1f}×",
    )
    peer = PEER_TEXT_EPOCH_S + PEER_TEXT_SCORING_S
    row(
        "text ml: epoch + scoring",
        f"{epoch + scoring:.1f} s",
        f"peer {peer:g} s",
        f"{peer / (epoch + scoring):.1f}× (target ≥ 4×)",
    )


def harness(n: int) -> None:
    """Harness overhead: a grid of trivial cells, written to disk, per cell."""
    grid = trivial_cells(registry_with(Noop), n)
    with tempfile.TemporaryDirectory() as tmp:
        grid_seconds(grid[:2], Path(tmp) / "warm")
        wall = grid_seconds(grid, Path(tmp) / "run")
    row(
        f"harness overhead ({n} trivial cells)",
        f"{1000 * wall / n:.1f} ms per cell",
        "target < 50 ms",
        f"{50 / (1000 * wall / n):.1f}× under",
    )


def gbench(*args: str) -> float:
    """Wall seconds of one ``gbench`` command (run as a user would, default options)."""
    exe = Path(sys.executable).with_name("gbench")
    env = {k: v for k, v in os.environ.items() if k != "GBENCH_JOBS"}
    start = time.perf_counter()
    done = subprocess.run([str(exe), *args], check=False, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    for line in done.stdout.splitlines():
        if "worker process" in line:
            print(f"    {line.strip()}", file=sys.stderr)
    if done.returncode != 0:
        print(f"    gbench {' '.join(args)} exited {done.returncode}", file=sys.stderr)
    return wall


@contextlib.contextmanager
def neighbour(on: bool) -> Iterator[None]:
    """A CPU-bound process at nice 19 beside the measurement (when ``on``)."""
    if not on:
        yield
        return
    busy = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        busy.kill()
        busy.wait()


def grids(beside: bool) -> None:
    """-j 1 against -j 2 on 24 gaussian cells (each alone: --replicas 1)."""
    out = Path(tempfile.mkdtemp(prefix="gbench-ratios-"))
    where = " beside a nice-19 busy loop" if beside else ""
    try:
        args = ["run", "--objectives", "ml,reverse_kl,jspi_exact", "--tasks", "gaussian"]
        args += ["--seeds", "4", "--replicas", "1", "--force"]
        with neighbour(beside):
            one = gbench(*args, "-j", "1", "--out", str(out / "j1"))
            two = gbench(*args, "-j", "2", "--out", str(out / "j2"))
        target = "1.3" if beside else "1.8"
        row(
            f"gaussian grid (24 cells, --replicas 1): -j 2 vs -j 1{where}",
            f"{two:.0f} s wall",
            f"{one:.0f} s wall",
            f"{one / two:.2f}× (target ≥ {target}×)",
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)


def threads_or_items(steps: int) -> None:
    """One big item on 2 threads against 1: where 2 threads gain less than 2×, two items at
    once (one thread each, in two workers) use 2 cores better. Wall time of ``steps`` steps."""
    registry = load_registry()
    work = {
        "text ml step (batch 64)": cells(registry, "ml", "text", "lstm"),
        "32 jspi replicas step (gaussian)": [
            c
            for c in cells(registry, "jspi", "gaussian", "isotropic_gaussian", seeds="32")
            if c.objective.params.get("pi") == 0.5
        ],
    }
    for what, group in work.items():
        timings = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with threadpool_limits(limits=threads, user_api="blas"):
                task = _CACHE.get(group[0].task, CPU)
                _, _, objective = build_work(group, task, CPU)
                reps = len(group) if len(group) > 1 else 0
                data = batches(task, group[0], steps, replicas=reps)
                objective.step(data[0], 0)
                start = time.perf_counter()
                for i, batch in enumerate(data):
                    objective.step(batch, i)
                timings[threads] = (time.perf_counter() - start) / steps
        torch.set_num_threads(1)
        row(
            f"{what}: 2 threads vs 1 (wall)",
            f"{1000 * timings[2]:.1f} ms",
            f"{1000 * timings[1]:.1f} ms",
            f"{timings[1] / timings[2]:.2f}× (two items at once: up to 2×)",
        )


def main_grid(seeds: str) -> None:
    """The README's main job with default options against the same job at -j 1."""
    out = Path(tempfile.mkdtemp(prefix="gbench-ratios-"))
    try:
        args = ["run", "--objectives", "all", "--tasks", "gaussian,text", "--seeds", seeds]
        one = gbench(*args, "-j", "1", "--out", str(out / "j1"))
        auto = gbench(*args, "--out", str(out / "auto"))
        row(
            f"main job (--seeds {seeds}): default options vs -j 1",
            f"{auto:.0f} s wall",
            f"{one:.0f} s wall",
            f"{auto / one:.2f} of -j 1 (target ≤ 0.6)",
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)


def flops(replicas: int, steps: int) -> None:
    """The core's peak (a large one-thread matrix product) and what a replica stack of
    ``jspi`` reaches, its FLOPs counted by torch's profiler."""
    import numpy as np
    from torch.profiler import ProfilerActivity, profile

    a = torch.randn(2048, 2048)
    an, out = a.numpy(), np.empty((2048, 2048), dtype=np.float32)
    work = 2 * 2048**3
    torch_peak = work / cpu_time(lambda: torch.mm(a, a), repeats=10) / 1e9
    blas_peak = work / cpu_time(lambda: np.matmul(an, an, out=out), repeats=10) / 1e9
    peak = max(torch_peak, blas_peak)
    row(
        "peak: 2048² sgemm, one thread",
        f"{peak:.0f} GFLOP/s",
        f"torch {torch_peak:.0f}, numpy {blas_peak:.0f}",
        "",
    )
    registry = load_registry()
    group = cells(registry, "jspi", "gaussian", "isotropic_gaussian", seeds=str(replicas))
    group = [c for c in group if c.objective.params.get("pi") == 0.5]
    seconds = replica_step_seconds(group, steps)
    task = _CACHE.get(group[0].task, CPU)
    _, _, objective = build_work(group, task, CPU)
    data = batches(task, group[0], 5, replicas=len(group))
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for i, batch in enumerate(data):
            objective.step(batch, i)
    per_step = sum(e.flops for e in prof.key_averages()) / len(data)
    rate = per_step / seconds / 1e9
    row(
        f"{len(group)} jspi replicas (gaussian, quick shapes), per step",
        f"{per_step / 1e6:.0f} MFLOP in {1000 * seconds:.1f} ms = {rate:.1f} GFLOP/s",
        f"peak {peak:.0f} GFLOP/s",
        f"{peak / rate:.1f}× below peak",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps per timing (vectors)")
    parser.add_argument("--replicas", type=int, default=32)
    parser.add_argument("--grid", action="store_true", help="also time -j 1 vs -j 2 grids")
    parser.add_argument("--neighbour", action="store_true", help="--grid beside a busy loop")
    parser.add_argument("--main-grid", action="store_true", help="also time the main job")
    parser.add_argument("--seeds", default="1", help="seeds of the main job")
    parser.add_argument("--flops", action="store_true", help="peak and jspi replica GFLOP/s")
    parser.add_argument("--threads", action="store_true", help="2 threads vs 1 on big items")
    parser.add_argument("--only", action="store_true", help="only the sections asked for")
    parser.add_argument("--skip-steps", action="store_true", help="skip the per-step table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")  # numpy's BLAS too, as a cell runs it
    registry = load_registry()
    started = time.perf_counter()
    if not args.only:
        if not args.skip_steps:
            training_steps(registry, args.steps)
        replicas(registry, args.steps, args.replicas)
        text()
        harness(50)
    if args.flops:
        flops(args.replicas, args.steps)
    if args.threads:
        threads_or_items(max(10, args.steps // 5))
    if args.grid:
        grids(args.neighbour)
    if args.main_grid:
        main_grid(args.seeds)
    load = os.getloadavg()[0]
    print(
        f"\n`python tests/benchmarks/ratios.py {' '.join(sys.argv[1:])}` on {os.cpu_count()} "
        f"CPUs, torch {torch.__version__}, load {load:.1f}, "
        f"{time.perf_counter() - started:.0f} s\n"
    )
    print("| workload | measured | compared with | ratio |")
    print("|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
