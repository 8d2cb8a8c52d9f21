"""One cell's record while it trains: its rows, its evaluations, its final status."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from benchmark_core import __version__
from benchmark_core.contract import Estimate, EvalContext, Metric, Model, Objective, Task
from benchmark_core.engine.grid import Cell
from benchmark_core.engine.selection import Configured

ProgressFn = Callable[[int, int], None]

#: The status of a cell that trained to the end but one of whose metrics raised.
METRIC_ERROR = "metric_error"


class CellTimeout(Exception):
    """The cell ran past its time limit."""


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


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _as_estimate(value: Any) -> Estimate:
    if isinstance(value, Estimate):
        return Estimate(float(value.value), float(value.stderr))
    if isinstance(value, tuple) and len(value) == 2:
        return Estimate(float(value[0]), float(value[1]))
    return Estimate(float(value))


def skipped_outcome(cell: Cell, device: torch.device) -> Outcome:
    """The single row that records a skipped cell and its reason."""
    row = _base_row(cell, device, _now())
    row.update(
        step=0,
        value=math.nan,
        stderr=math.nan,
        status="skipped",
        error=cell.skip_reason,
        wall_time_s=0.0,
    )
    return Outcome("skipped", [row], cell.skip_reason)


class CellRecord:
    """The rows of one cell's run so far, and the clock its time limit runs on."""

    def __init__(self, cell: Cell, device: torch.device, timeout: float | None) -> None:
        self.cell, self.device = cell, device
        self.start = time.monotonic()
        self.deadline = None if timeout is None else self.start + timeout
        self.base = _base_row(cell, device, _now())
        self.rows: list[dict[str, Any]] = []
        self.directions: dict[str, str] = {"train_loss": "min"}
        #: "metric at step N: last line of its traceback", for each evaluation that raised.
        self.metric_failures: list[str] = []
        self._failure_rows: set[int] = set()

    def check_time(self) -> None:
        """Raise `CellTimeout` once the cell is past its time limit."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise CellTimeout(f"cell ran past its time limit of {self.deadline - self.start:g} s")

    def record(
        self,
        step: int,
        name: str,
        source: Configured | None,
        est: Estimate,
        error: str | None = None,
    ) -> None:
        """One row: ``name``'s value at ``step`` (``source`` None: the objective's loss)."""
        plugin = source.entry.plugin if source is not None else self.cell.objective.entry.plugin
        note = error
        if note is None and not math.isfinite(est.value):
            note = f"{name} returned {'NaN' if math.isnan(est.value) else est.value}"
        if error is not None:
            self._failure_rows.add(len(self.rows))
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
        """Every metric of the cell at ``step``; one that raises is recorded, not fatal."""
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
                    try:
                        with torch.no_grad():
                            values = metric.compute(model, task, ctx)
                    except Exception:
                        self.metric_failed(step, conf, traceback.format_exc())
                        self.check_time()
                        continue
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

    def metric_failed(self, step: int, conf: Configured, trace: str) -> None:
        """Record that metric ``conf`` raised at ``step``: a NaN row carrying its traceback."""
        last = trace.strip().splitlines()[-1] if trace.strip() else "an exception"
        self.metric_failures.append(f"{conf.name} at step {step}: {last}")
        self.record(step, conf.name, conf, Estimate(math.nan), error=trace)

    def finish(self, status: str, error: str | None) -> Outcome:
        """The cell's outcome; a run that ended ``ok`` with a failed metric is ``metric_error``."""
        wall = time.monotonic() - self.start
        if status == "ok" and self.metric_failures:
            status = METRIC_ERROR
            error = "a metric raised (its rows hold the traceback): " + "; ".join(
                self.metric_failures
            )
            row_error = None
        else:
            row_error = error
        rows = self.rows or [{**self.base, "step": 0, "value": math.nan, "stderr": math.nan}]
        for i, row in enumerate(rows):
            # A row's own note (a metric that returned NaN) is kept unless the cell ended on
            # an error of its own; a failed metric's traceback is always kept.
            own = row.get("error")
            keep = i in self._failure_rows or row_error is None
            row.update(status=status, error=own if keep else row_error, wall_time_s=wall)
        return Outcome(status, rows, error, wall, self.directions)
