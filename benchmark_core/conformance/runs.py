"""Conformance checks that train objectives and evaluate metrics; see :mod:`.conformance`."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch

from benchmark_core.conformance.base import (
    Workbench,
    build_model,
    fail,
    short,
    smoke_budget,
)
from benchmark_core.conformance.proxy import (
    MODEL_METHODS,
    OBJECTIVE_METHODS,
    TASK_METHODS,
    Restricted,
    UndeclaredCapability,
)
from benchmark_core.contract import CAPABILITIES, Estimate, EvalContext, Metric, Objective
from benchmark_core.registry import Entry

DIRECTIONS = ("min", "max", "none")
CPU = torch.device("cpu")


# --- objectives ------------------------------------------------------------------------


def check_smoke_cell(entry: Entry, bench: Workbench, kind: str) -> None:
    """A few steps through the real runner on the CPU end with status ok."""
    from benchmark_core.engine.grid import Cell
    from benchmark_core.engine.runner import run_cell
    from benchmark_core.engine.selection import Configured

    task_e, model_e = bench.pair_for(entry, kind)

    def conf(e: Entry) -> Configured:
        return Configured(e, e.cls.validate({}), {})

    cell = Cell(
        conf(task_e), conf(model_e), conf(entry), (), 0, smoke_budget(task_e.cls, entry.cls)
    )
    with torch.random.fork_rng(devices=[]):
        outcome = run_cell(cell, CPU, task_cache=bench.cache)
    if outcome.status != "ok":
        tail = (outcome.error or "").strip().splitlines()[-1:] or [""]
        raise fail(
            entry,
            f"kinds={sorted(entry.cls.kinds)}",
            f"a smoke cell on ({task_e.name}, {model_e.name}) ended '{outcome.status}': {tail[0]}"
            f"\n{outcome.error or ''}",
        )


def check_replicas(entry: Entry, bench: Workbench, kind: str) -> None:
    """Three replicas (seeds 0-2) train as one stack for a few steps and each ends ok: the
    objective's one ``step`` takes a `ModelStack` and a batch [3, B, ...] and returns [3]."""
    from benchmark_core.engine.grid import Cell
    from benchmark_core.engine.runner import run_work
    from benchmark_core.engine.selection import Configured

    task_e, model_e = bench.pair_for(entry, kind, needs=frozenset({"vmap"}))
    decl = f"replica_kinds={sorted(entry.cls.replica_kinds)}"
    confs = [Configured(e, e.cls.validate({}), {}) for e in (task_e, model_e, entry)]
    budget = smoke_budget(task_e.cls, entry.cls)
    cells = [Cell(*confs, (), seed, budget) for seed in range(3)]
    with torch.random.fork_rng(devices=[]):
        outcomes = run_work(cells, CPU, task_cache=bench.cache)
    for outcome in outcomes:
        if outcome.status != "ok":
            tail = (outcome.error or "").strip().splitlines()[-1:] or [""]
            pair = f"({task_e.name}, {model_e.name})"
            raise fail(entry, decl, f"replicas on {pair} ended '{outcome.status}': {tail[0]}")


def _requirements_decl(
    entry: Entry, kind: str, violations: list[tuple[str, str, str]]
) -> tuple[str, str]:
    task_needs, model_needs = entry.cls.requirements(kind)
    role, method, cap = violations[0]
    attr = f"{role}_requires"
    needs = {"model": model_needs, "task": task_needs}.get(role, entry.cls.objective_requires)
    return (
        f"{attr}={sorted(needs)} on {kind} tasks",
        f"it called {role}.{method}(), which needs the {role}'s {CAPABILITIES.get(cap, cap)}; "
        f"add '{cap}' to {attr} (or stop calling it)",
    )


def check_objective_requirements(entry: Entry, bench: Workbench, kind: str) -> None:
    """Trained against proxies exposing only what it declared, the objective takes steps that
    return detached 0-d finite losses and move the model's parameters."""
    task_e, model_e = bench.pair_for(entry, kind)
    task = bench.task(task_e)
    budget = smoke_budget(task_e.cls, entry.cls)
    task_needs, model_needs = entry.cls.requirements(kind)
    violations: list[tuple[str, str, str]] = []
    pair = f"on ({task_e.name}, {model_e.name})"
    with torch.random.fork_rng(devices=[]):
        model = build_model(model_e, task)
        before = [p.detach().clone() for p in model.parameters()]
        objective: Objective = entry.cls()
        try:
            objective.setup(
                Restricted(model, model_needs, MODEL_METHODS, "model", violations),
                Restricted(task, task_needs, TASK_METHODS, "task", violations),
                budget,
            )
            for step in range(budget.steps):
                batch = task.train[step * budget.batch_size : (step + 1) * budget.batch_size]
                loss = objective.step(batch, step)
                if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                    raise fail(
                        entry,
                        "step()",
                        f"must return a 0-d tensor (reduce it, e.g. loss.mean()), "
                        f"got {short(loss)} {pair}",
                    )
                if loss.requires_grad:
                    raise fail(
                        entry, "step()", f"must return a detached loss (loss.detach()) {pair}"
                    )
                if not torch.isfinite(loss):
                    raise fail(entry, "step()", f"returned a loss of {loss.item()} {pair}")
        except UndeclaredCapability:
            pass
    if violations:
        raise fail(entry, *_requirements_decl(entry, kind, violations))
    after = list(model.parameters())
    if before and all(torch.equal(b, a.detach()) for b, a in zip(before, after, strict=True)):
        raise fail(
            entry, "step()", f"{budget.steps} steps left the model's parameters unchanged {pair}"
        )


# --- metrics ---------------------------------------------------------------------------


def _context(
    bench: Workbench, task_e: Entry, model_e: Entry, model: Any, task: Any, needs: frozenset[str]
) -> EvalContext:
    budget = smoke_budget(task_e.cls)
    objective = None
    obj_e = bench.objective_for(task_e, model_e, needs)
    if obj_e is not None:
        objective = obj_e.cls()
        objective.setup(model, task, smoke_budget(task_e.cls, obj_e.cls))
    return EvalContext(budget, CPU, 0, objective)  # type: ignore[arg-type]


def _as_estimate(entry: Entry, name: str, value: Any) -> Estimate:
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    if isinstance(value, tuple) and len(value) == 2:
        value = Estimate(*value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = Estimate(float(value))
    if not isinstance(value, Estimate):
        raise fail(
            entry,
            "compute()",
            f"value '{name}' is {short(value)}: return a float, a 0-d "
            "tensor or an Estimate(value, stderr)",
        )
    est = Estimate(float(value.value), float(value.stderr))
    if math.isinf(est.value):
        raise fail(
            entry, "compute()", f"value '{name}' is {est.value}: return a finite value or NaN"
        )
    if math.isinf(est.stderr) or est.stderr < 0:
        raise fail(entry, "compute()", f"the stderr of '{name}' is {est.stderr}: use ≥ 0 or NaN")
    return est


def _metric_names(entry: Entry, bench: Workbench, kind: str, restrict: bool) -> list[set[str]]:
    task_e, model_e = bench.pair_for(entry, kind)
    task = bench.task(task_e)
    task_needs, model_needs = entry.cls.requirements(kind)
    names = []
    for seed in (0, 1):
        violations: list[tuple[str, str, str]] = []
        with torch.random.fork_rng(devices=[]):
            model = build_model(model_e, task, seed)
            obj_needs = entry.cls.objective_requires
            ctx = _context(bench, task_e, model_e, model, task, obj_needs)
            model.eval()
            m, t = model, task
            if restrict:
                m = Restricted(model, model_needs, MODEL_METHODS, "model", violations)
                t = Restricted(task, task_needs, TASK_METHODS, "task", violations)
                if ctx.objective is not None:
                    o = Restricted(
                        ctx.objective, obj_needs, OBJECTIVE_METHODS, "objective", violations
                    )
                    ctx = replace(ctx, objective=o)
            metric: Metric = entry.cls()
            torch.manual_seed(seed)
            try:
                with torch.no_grad():
                    values = metric.compute(m, t, ctx)
            except UndeclaredCapability:
                values = {}
        if violations:
            raise fail(entry, *_requirements_decl(entry, kind, violations))
        if not isinstance(values, dict) or not values:
            raise fail(entry, "compute()", f"must return a non-empty dict, got {short(values)}")
        for name, value in values.items():
            if not isinstance(name, str) or not name:
                raise fail(entry, "compute()", f"value names must be strings, got {name!r}")
            _as_estimate(entry, name, value)
            direction = metric.direction_of(name)
            if direction not in DIRECTIONS:
                raise fail(
                    entry,
                    f"direction={entry.cls.direction!r}",
                    f"direction_of({name!r}) is {direction!r}, not 'min', 'max' or 'none'",
                )
        names.append(set(values))
    if names[0] != names[1]:
        raise fail(
            entry,
            "compute()",
            f"value names change from one model to another: "
            f"{sorted(names[0])} vs {sorted(names[1])}",
        )
    return names


def check_metric_values(entry: Entry, bench: Workbench, kind: str) -> None:
    """Finite-or-NaN values, stable names, a declared direction for each."""
    bench.memo[("names", entry.name, kind)] = _metric_names(entry, bench, kind, restrict=False)


def check_metric_requirements(entry: Entry, bench: Workbench, kind: str) -> None:
    """With only its declared capabilities visible, the metric runs and returns the same names."""
    key = ("names", entry.name, kind)
    # Restricted first: a call to an undeclared capability is reported as such, not as the
    # error it may cause on a partner that lacks the capability.
    restricted = _metric_names(entry, bench, kind, restrict=True)[0]
    full = (bench.memo.get(key) or _metric_names(entry, bench, kind, restrict=False))[0]
    if full != restricted:
        raise fail(
            entry,
            "compute()",
            f"returns {sorted(restricted)} when the model's undeclared capabilities are hidden "
            f"but {sorted(full)} otherwise; a value's presence must not depend on them",
        )
