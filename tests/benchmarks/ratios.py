"""Print gbench's speed figures as ratios against their targets (issue 6).

Run from the repository root::

    python tests/benchmarks/ratios.py            # steps, replicas, text, harness (~5 min)
    python tests/benchmarks/ratios.py --grid     # also -j 1 vs -j 2 and the main grid

Every figure is measured in this run, side by side with what it is compared to; times are
process CPU seconds on one intra-op thread (robust to other processes on a shared machine)
except the grid rows, which are wall time. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from helpers import registry_with  # noqa: E402
from speed import (  # noqa: E402
    Noop,
    cells,
    grid_seconds,
    replica_step_seconds,
    step_seconds,
    trivial_cells,
)

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
    start = time.process_time()
    text_ml_epoch(task, model)
    epoch = time.process_time() - start
    start = time.process_time()
    text_sampling_and_scoring(task, model)
    scoring = time.process_time() - start
    row(
        "text ml: epoch (10,000 seqs, batch 64)",
        f"{epoch:.1f} s",
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
    """Wall seconds of one ``gbench`` command (run as a user would)."""
    exe = Path(sys.executable).with_name("gbench")
    start = time.perf_counter()
    subprocess.run([str(exe), *args], check=False, capture_output=True)
    return time.perf_counter() - start


def grids(main_grid: bool) -> None:
    """-j 1 against -j 2 on gaussian cells; then the README's main grid with 3 seeds."""
    out = Path(tempfile.mkdtemp(prefix="gbench-ratios-"))
    try:
        args = ["run", "--objectives", "ml,reverse_kl,jspi_exact", "--tasks", "gaussian"]
        args += ["--seeds", "4", "--replicas", "1", "--force"]
        one = gbench(*args, "-j", "1", "--out", str(out / "j1"))
        two = gbench(*args, "-j", "2", "--out", str(out / "j2"))
        row(
            "gaussian grid (24 cells, --replicas 1): -j 2 vs -j 1",
            f"{two:.0f} s wall",
            f"{one:.0f} s wall",
            f"{one / two:.2f}× (target ≥ 1.6×)",
        )
        if main_grid:
            args = ["run", "--objectives", "all", "--tasks", "gaussian,text", "--seeds", "3"]
            wall = gbench(*args, "-j", "2", "--out", str(out / "main"))
            row(
                "main grid --seeds 3 -j 2 (quick)",
                f"{wall:.0f} s wall",
                "target < 600 s",
                f"{600 / wall:.2f}× under" if wall < 600 else f"{wall / 600:.2f}× over",
            )
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps per timing (vectors)")
    parser.add_argument("--replicas", type=int, default=32)
    parser.add_argument("--grid", action="store_true", help="also time -j 1 vs -j 2 grids")
    parser.add_argument("--main-grid", action="store_true", help="also time the main grid")
    parser.add_argument("--skip-steps", action="store_true", help="skip the per-step table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")  # numpy's BLAS too, as a cell runs it
    registry = load_registry()
    started = time.perf_counter()
    if not args.skip_steps:
        training_steps(registry, args.steps)
    replicas(registry, args.steps, args.replicas)
    text()
    harness(50)
    if args.grid or args.main_grid:
        grids(args.main_grid)
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
