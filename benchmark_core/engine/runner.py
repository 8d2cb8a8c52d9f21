"""Run one cell: seed, build, train under the budget, evaluate at checkpoints, time it."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import random
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from benchmark_core import __version__
from benchmark_core.contract import Estimate, EvalContext, Metric, Model, Objective, Task
from benchmark_core.contract.errors import UsageError
from benchmark_core.engine.grid import Cell
from benchmark_core.engine.selection import Configured
from benchmark_core.engine.warm import keep_state, packed, start_from_source

ProgressFn = Callable[[int, int], None]


class CellTimeout(Exception):
    """The cell ran past its time limit."""


class Diverged(Exception):
    """The training loss became NaN or infinite."""


@dataclass
class Outcome:
    """What running (or skipping) a cell produced."""

    status: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    wall_time_s: float = 0.0
    directions: dict[str, str] = field(default_factory=dict)
    #: The cell ids trained together as replicas (empty when the cell ran alone).
    replicas: list[str] = field(default_factory=list)
    #: The kept model states as checkpoint bytes (None when the cell keeps none or failed).
    checkpoint: bytes | None = None


def resolve_device(spec: str, *, here: bool = True) -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a device, refusing one that is not there.

    With ``here=False`` (cells run elsewhere, on a Ray cluster) CUDA is not looked for on this
    machine: the executor checks that the cluster has GPUs.
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(
            f"--device {spec!r} is not a device: use auto, cpu, cuda, cuda:N or mps."
        ) from None
    if device.type == "cuda" and here:
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: CUDA is not available here; use --device cpu or auto.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here."
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: MPS is not available here; use --device cpu or auto.")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device {spec!r}: use auto, cpu, cuda, cuda:N or mps.")
    return device


def enable_determinism() -> None:
    """Make CUDA runs repeatable: deterministic kernels only (an error where none exists)."""
    import os

    # cuBLAS needs a fixed workspace to be deterministic; it must be set before CUDA starts.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def seed_everything(seed: int) -> None:
    """Seed every random source a cell may touch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class TaskCache:
    """Tasks built once per (name, parameters, device): their data is fixed by their own seed."""

    def __init__(self) -> None:
        self._tasks: dict[tuple[str, str, str], Task] = {}

    def get(self, conf: Configured, device: torch.device) -> Task:
        """The task for ``conf`` on ``device``, building it on first use."""
        key = (conf.name, json.dumps(conf.params, sort_keys=True, default=str), str(device))
        if key not in self._tasks:
            # A task must not depend on whatever state the global RNG is in.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                task = conf.cls(**conf.params)
            self._tasks[key] = task.to(device)
        return self._tasks[key]


def _base_row(cell: Cell, device: torch.device, started: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "cell_id": cell.cell_id,
        "task": cell.task.name,
        "task_label": cell.task.label,
        "model": cell.model.name,
        "model_label": cell.model.label,
        "objective": cell.objective.name,
        "label": cell.objective.label,
        "params": json.dumps(cell.params, sort_keys=True, default=str),
        "seed": cell.seed,
        "budget": cell.budget.name,
        "device": str(device),
        "started_at": started,
        "gbench_version": __version__,
        "torch_version": torch.__version__,
    }
    for role, conf in (("task", cell.task), ("model", cell.model), ("objective", cell.objective)):
        row[f"{role}_plugin"] = conf.entry.plugin.distribution
        row[f"{role}_plugin_version"] = conf.entry.plugin.version
    return row


def _as_estimate(value: Any) -> Estimate:
    if isinstance(value, Estimate):
        return Estimate(float(value.value), float(value.stderr))
    if isinstance(value, tuple) and len(value) == 2:
        return Estimate(float(value[0]), float(value[1]))
    return Estimate(float(value))


def skipped_outcome(cell: Cell, device: torch.device) -> Outcome:
    """The single row that records a skipped cell and its reason."""
    row = _base_row(cell, device, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    row.update(
        step=0,
        value=math.nan,
        stderr=math.nan,
        status="skipped",
        error=cell.skip_reason,
        wall_time_s=0.0,
    )
    return Outcome("skipped", [row], cell.skip_reason)


class _CellRun:
    """The mutable state of one cell's run, so the loop reads as the algorithm it is."""

    def __init__(self, cell: Cell, device: torch.device, timeout: float | None) -> None:
        self.cell, self.device = cell, device
        self.start = time.monotonic()
        self.deadline = None if timeout is None else self.start + timeout
        self.base = _base_row(cell, device, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        self.rows: list[dict[str, Any]] = []
        self.directions: dict[str, str] = {"train_loss": "min"}
        self.kept: dict[int, dict[str, torch.Tensor]] = {}  # model states by step

    def check_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise CellTimeout(f"cell ran past its time limit of {self.deadline - self.start:g} s")

    def record(self, step: int, name: str, source: Configured | None, est: Estimate) -> None:
        plugin = source.entry.plugin if source is not None else self.cell.objective.entry.plugin
        note = None
        if not math.isfinite(est.value):
            note = f"{name} returned {'NaN' if math.isnan(est.value) else est.value}"
        self.rows.append(
            {
                "error": note,
                **self.base,
                "step": step,
                "metric": name,
                "metric_source": source.name if source is not None else "objective",
                "value": est.value,
                "stderr": est.stderr,
                "metric_plugin": plugin.distribution,
                "metric_plugin_version": plugin.version,
            }
        )

    def evaluate(
        self,
        step: int,
        model: Model,
        task: Task,
        objective: Objective,
        metrics: list[tuple[Configured, Metric]],
    ) -> None:
        keep_state(self.cell, step, model, self.kept)
        ctx = EvalContext(self.cell.budget, self.device, step, objective)
        owners: dict[str, str] = {}
        devices = [self.device] if self.device.type == "cuda" else []
        # Metrics draw from their own seeded stream, so adding or removing one never changes
        # the training trajectory or the other metrics.
        with torch.random.fork_rng(devices=devices):
            was_training = model.training
            model.eval()
            try:
                for conf, metric in metrics:
                    torch.manual_seed(self.cell.seed * 1_000_003 + step)
                    with torch.no_grad():
                        values = metric.compute(model, task, ctx)
                    for name, value in values.items():
                        if name in owners:
                            raise RuntimeError(
                                f"metrics '{owners[name]}' and '{conf.name}' both return a value "
                                f"named '{name}'"
                            )
                        owners[name] = conf.name
                        self.directions[name] = metric.direction_of(name)
                        self.record(step, name, conf, _as_estimate(value))
                    self.check_time()
            finally:
                model.train(was_training)

    def train(self, task_cache: TaskCache, progress: ProgressFn | None) -> None:
        cell, budget, device = self.cell, self.cell.budget, self.device
        seed_everything(cell.seed)
        task = task_cache.get(cell.task, device)
        model = cell.model.cls(task, **cell.model.params).to(device)
        start_from_source(cell, model)
        objective = cell.objective.cls(**cell.objective.params)
        objective.setup(model, task, budget)
        metrics = [(m, m.cls(**m.params)) for m in cell.metrics]
        eval_steps = set(budget.eval_steps())

        data = task.train
        n = data.shape[0]
        batch = min(budget.batch_size, n)
        order = torch.Generator().manual_seed(cell.seed)
        perm, cursor = torch.randperm(n, generator=order).to(device), 0
        loss_sum, in_window = torch.zeros((), device=device), 0

        if 0 in eval_steps:
            self.evaluate(0, model, task, objective, metrics)
        for step in range(1, budget.steps + 1):
            if cursor + batch > n:
                perm, cursor = torch.randperm(n, generator=order).to(device), 0
            idx = perm[cursor : cursor + batch]
            cursor += batch
            loss = objective.step(data[idx], step - 1)
            loss_sum += loss.detach()
            in_window += 1
            if step % budget.log_every == 0 or step in eval_steps:
                mean_loss = (loss_sum / in_window).item()  # the one sync per window
                if not math.isfinite(mean_loss):
                    raise Diverged(f"training loss became {mean_loss} near step {step}")
                self.record(step, "train_loss", None, Estimate(mean_loss))
                loss_sum.zero_()
                in_window = 0
                if progress is not None:
                    progress(step, budget.steps)
                self.check_time()
            if step in eval_steps:
                self.evaluate(step, model, task, objective, metrics)

    def finish(self, status: str, error: str | None) -> Outcome:
        wall = time.monotonic() - self.start
        rows = self.rows or [{**self.base, "step": 0, "value": math.nan, "stderr": math.nan}]
        for row in rows:
            # A row's own note (a metric that returned NaN) is kept; the cell's error wins.
            row.update(status=status, error=error or row.get("error"), wall_time_s=wall)
        checkpoint = packed(self.cell, self.kept, status)
        return Outcome(status, rows, error, wall, self.directions, checkpoint=checkpoint)


@contextlib.contextmanager
def task_threads(cell: Cell) -> Iterator[None]:
    """Cap torch's intra-op threads at the task's ``max_threads`` while the cell runs."""
    threads, limit = torch.get_num_threads(), cell.task.cls.max_threads
    if limit is not None:
        torch.set_num_threads(max(1, min(threads, limit)))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_cell(
    cell: Cell,
    device: torch.device,
    *,
    timeout: float | None = None,
    task_cache: TaskCache | None = None,
    progress: ProgressFn | None = None,
) -> Outcome:
    """Run one cell and return its outcome; never raises except on Ctrl-C, which it records.

    A NaN or infinite loss ends the cell as ``diverged``, an exception as ``error`` with its
    traceback, the time limit as ``timeout``, and Ctrl-C as ``interrupted`` (the caller stops
    the grid when it sees that status).
    """
    if cell.skip_reason is not None:
        return skipped_outcome(cell, device)
    run = _CellRun(cell, device, timeout)
    try:
        with task_threads(cell):
            run.train(task_cache or TaskCache(), progress)
    except Diverged as exc:
        return run.finish("diverged", str(exc))
    except CellTimeout as exc:
        return run.finish("timeout", str(exc))
    except KeyboardInterrupt:
        return run.finish("interrupted", "stopped by the user (Ctrl-C or SIGTERM)")
    except Exception:
        return run.finish("error", traceback.format_exc())
    return run.finish("ok", None)


def run_work(
    cells: list[Cell],
    device: torch.device,
    *,
    timeout: float | None = None,
    task_cache: TaskCache | None = None,
    progress: ProgressFn | None = None,
) -> list[Outcome]:
    """Run one work item: a single cell, or replicas that train together as one model.

    Returns one outcome per cell, in order. A batch's time limit is ``timeout`` per cell.
    """
    from benchmark_core.engine.replicas import run_replicas

    limit = None if timeout is None else timeout * len(cells)
    return run_replicas(cells, device, timeout=limit, task_cache=task_cache, progress=progress)
