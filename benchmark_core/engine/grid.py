"""The grid: every (task, model, objective, seed) cell, with skip reasons decided up front."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from benchmark_core.contract import incompatibility, model_incompatibility
from benchmark_core.contract.budgets import Budget, budget_for
from benchmark_core.engine.selection import Configured, Spec, expand, with_task_defaults
from benchmark_core.registry import Registry


@dataclass(frozen=True)
class Cell:
    """One unit of work: a task, a model, an objective (each configured), a seed, a budget."""

    task: Configured
    model: Configured
    objective: Configured
    metrics: tuple[Configured, ...]
    seed: int
    budget: Budget
    skip_reason: str | None = None
    metric_skips: tuple[str, ...] = ()
    #: The cell whose final model this one starts from (a warm start), or None.
    init: Cell | None = None
    #: Which model states to keep: ``none``, ``final`` or ``all`` (every evaluation step).
    checkpoints: str = field(default="none", compare=False)
    #: A warm start's source checkpoint (its file name, its bytes), attached just before it runs.
    init_state: tuple[str, bytes] | None = field(default=None, compare=False, repr=False)

    @cached_property
    def cell_id(self) -> str:
        """A stable hash of the components, their parameters, the seed, budget and versions."""
        key: dict[str, object] = {
            role: [
                conf.name,
                conf.params,
                conf.entry.plugin.distribution,
                conf.entry.plugin.version,
            ]
            for role, conf in (
                ("task", self.task),
                ("model", self.model),
                ("objective", self.objective),
            )
        }
        key.update(seed=self.seed, budget=self.budget.name)
        files = {
            f"{role}.{name}": file_digest(str(value))
            for role, conf in (
                ("task", self.task),
                ("model", self.model),
                ("objective", self.objective),
            )
            for name, value in conf.params.items()
            if getattr(conf.cls.param_spec.get(name), "file", False) and value
        }
        if files:  # only then: the ids of cells that read no file stay as they were
            key["files"] = files
        if self.init is not None:
            key["init"] = self.init.cell_id
        blob = json.dumps(key, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def params(self) -> dict[str, dict]:
        """All parameters of the cell, by role."""
        params: dict[str, dict] = {
            "task": self.task.params,
            "model": self.model.params,
            "objective": self.objective.params,
        }
        if self.init is not None:
            params["init"] = {"cell_id": self.init.cell_id, "objective": self.init.objective.label}
        return params

    def describe(self) -> str:
        """One line naming the cell."""
        return f"{self.task.label} · {self.model.label} · {self.objective.label} · seed {self.seed}"


def file_digest(path: str) -> str:
    """The SHA-256 of a file's content (what a cell reads), or why it cannot be read."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        return f"unreadable: {type(exc).__name__}"
    return _digest(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    """Keyed on the file's time and size too, so that a changed file is read again."""
    sha = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                sha.update(chunk)
    except OSError as exc:
        return f"unreadable: {type(exc).__name__}"
    return sha.hexdigest()


def _models_for(
    task: Configured, models: list[Configured] | None, registry: Registry
) -> list[Configured]:
    if models is not None:
        return models
    names = [n for n in task.cls.default_models if n in registry.of_kind("model")]
    if not names:  # the task's defaults are not installed: fall back to every model that fits
        names = [
            n
            for n, e in sorted(registry.of_kind("model").items())
            if model_incompatibility(e.cls, task.cls) is None
        ]
    return expand("model", [Spec(n) for n in names], registry)


def task_warm_start(objective: Configured, task: type) -> Configured:
    """``objective`` as it runs on ``task``: started from the objective the task's
    :attr:`Task.warm_starts` names, unless the selection gave ``init`` (``none``: no start)."""
    from benchmark_core.engine.warm import INIT

    if INIT in objective.given:
        if objective.given[INIT] != "none":
            return objective
        given = {k: v for k, v in objective.given.items() if k != INIT}
        return Configured(objective.entry, objective.params, given)
    source = (getattr(task, "warm_starts", None) or {}).get(objective.name)
    if not source:
        return objective
    return Configured(objective.entry, objective.params, {**objective.given, INIT: source})


def build_grid(
    registry: Registry,
    objectives: list[Spec] | None,
    tasks: list[Spec] | None,
    models: list[Spec] | None,
    metrics: list[Spec] | None,
    seeds: list[int],
    budget: str,
) -> list[Cell]:
    """Validate every selection, then return the cells in task, model, objective, seed order.

    Raises UsageError before anything is built when a name, parameter or value is invalid.
    """
    task_confs = expand("task", tasks, registry)
    model_confs = None if models is None else expand("model", models, registry)
    objective_confs = expand("objective", objectives, registry)
    metric_confs = expand("metric", metrics, registry, allow_sweeps=False)

    cells = []
    for task in task_confs:
        task_metrics = with_task_defaults(metric_confs, task.cls)
        task_objectives = [task_warm_start(o, task.cls) for o in objective_confs]
        for model in _models_for(task, model_confs, registry):
            reason_model = model_incompatibility(model.cls, task.cls)
            for objective in task_objectives:
                usable, skipped = [], []
                for metric in task_metrics:
                    why = reason_model or incompatibility(
                        metric.cls, task.cls, model.cls, objective.cls
                    )
                    (skipped if why else usable).append(why or metric)
                size = budget_for(budget, task.cls, objective.cls)
                reason = reason_model or incompatibility(objective.cls, task.cls, model.cls)
                for seed in seeds:
                    cells.append(
                        Cell(
                            task,
                            model,
                            objective,
                            tuple(usable),
                            seed,
                            size,
                            reason,
                            tuple(skipped),
                        )
                    )
    from benchmark_core.engine.warm import resolve_warm_starts

    return resolve_warm_starts(cells, registry)
