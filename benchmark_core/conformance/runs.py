"""Conformance checks that train objectives and evaluate metrics; see :mod:`.conformance`."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch

from benchmark_core.conformance.base import (
    NotApplicable,
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
    if entry.cls.loss_descends:
        check_descent(entry, bench, task_e, model_e)


#: Descent check: steps, the share of them in each compared window, the starting
#: perturbation of the model's parameters (so there is a loss to lower) and the margin in
#: standard deviations of the windows' rank-sum statistic.
DESCENT_STEPS, DESCENT_WINDOW, DESCENT_PERTURB, DESCENT_Z = 64, 16, 2.0, 2.0


def descent_z(entry: Entry, bench: Workbench, task_e: Entry, model_e: Entry) -> float:
    """How far the losses of the last window lie below the first window's, in standard
    deviations of the rank-sum (Mann-Whitney) statistic: about 0 for no change, 4.8 when
    every late loss is below every early one; -inf for a non-finite loss or a mean that
    rose. Trains a model moved away from its initial parameters (seed 0, deterministic)."""
    task = bench.task(task_e)
    budget = replace(smoke_budget(task_e.cls, entry.cls), steps=DESCENT_STEPS)
    losses = []
    with torch.random.fork_rng(devices=[]):
        model = build_model(model_e, task)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(DESCENT_PERTURB * torch.randn_like(p))
        objective: Objective = entry.cls()
        objective.setup(model, task, budget)
        gen = torch.Generator().manual_seed(0)
        for step in range(DESCENT_STEPS):
            rows = torch.randint(len(task.train), (budget.batch_size,), generator=gen)
            losses.append(float(objective.step(task.train[rows], step)))
    first = torch.tensor(losses[:DESCENT_WINDOW], dtype=torch.float64)
    last = torch.tensor(losses[-DESCENT_WINDOW:], dtype=torch.float64)
    if not (torch.isfinite(first).all() and torch.isfinite(last).all()):
        return -math.inf
    if last.mean() >= first.mean():
        return -math.inf
    # Ranks rather than means and variances: robust to one huge early loss (a first step
    # from far away) and to the steep fall inside the first window.
    n = DESCENT_WINDOW
    wins = (first[:, None] > last[None, :]).double() + 0.5 * (first[:, None] == last[None, :])
    return float((wins.sum() - n * n / 2) / math.sqrt(n * n * (2 * n + 1) / 12))


def check_descent(entry: Entry, bench: Workbench, task_e: Entry, model_e: Entry) -> None:
    """Training lowers the objective's own logged loss (a wrong sign raises it)."""
    z = descent_z(entry, bench, task_e, model_e)
    if z <= DESCENT_Z:
        raise fail(
            entry,
            "step()",
            f"set loss_descends = False only if the loss is a game value; otherwise check the "
            f"sign of the loss you minimise: {DESCENT_STEPS} steps on ({task_e.name}, "
            f"{model_e.name}) did not lower the loss step() returns (the last "
            f"{DESCENT_WINDOW} steps' losses lie {z:.1f} standard deviations below the "
            f"first {DESCENT_WINDOW}'s by a rank-sum test; needs > {DESCENT_Z:g})",
        )


def check_default_models(entry: Entry, bench: Workbench) -> None:
    """Each built-in model the task names in ``default_models`` builds for it and trains in
    a smoke cell (through the real runner) with an objective that can train the pair."""
    from benchmark_core.contract import incompatibility, model_incompatibility
    from benchmark_core.engine.grid import Cell
    from benchmark_core.engine.runner import run_cell
    from benchmark_core.engine.selection import Configured

    names = list(entry.cls.default_models)
    models = bench.registry.of_kind("model")
    objectives = sorted(bench.registry.of_kind("objective").items(), key=lambda i: i[0] != "ml")
    decl = f"default_models={names}"
    for name in names:
        if name not in models:
            raise fail(entry, decl, f"no installed model is named '{name}'")
        model_e = models[name]
        why = model_incompatibility(model_e.cls, entry.cls)
        if why is not None:
            raise fail(entry, decl, f"model '{name}' cannot be built for this task: {why}")
        obj_e = next(
            (o for _, o in objectives if incompatibility(o.cls, entry.cls, model_e.cls) is None),
            None,
        )
        if obj_e is None:
            raise NotApplicable(f"no installed objective can train ({entry.name}, {name})")
        confs = [Configured(e, e.cls.validate({}), {}) for e in (entry, model_e, obj_e)]
        cell = Cell(*confs, (), 0, smoke_budget(entry.cls, obj_e.cls))
        with torch.random.fork_rng(devices=[]):
            outcome = run_cell(cell, CPU, task_cache=bench.cache)
        if outcome.status != "ok":
            tail = (outcome.error or "").strip().splitlines()[-1:] or [""]
            raise fail(
                entry,
                decl,
                f"a smoke cell of model '{name}' trained by '{obj_e.name}' ended "
                f"'{outcome.status}': {tail[0]}",
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


#: Stderr check: repeats of the metric on one model (metric seeds differ) and how far below
#: the observed spread the mean reported stderr may be (honest built-ins sit at 0.35-2.7 of
#: it; a stderr ten times too small at about 0.1).
STDERR_REPEATS, STDERR_MIN_RATIO = 8, 0.2


def check_metric_stderr(entry: Entry, bench: Workbench, kind: str) -> None:
    """A value reported with a standard error is not far more precise than the spread of
    repeated evaluations of one model (different metric seeds) shows it to be."""
    task_e, model_e = bench.pair_for(entry, kind)
    task = bench.task(task_e)
    seen: dict[str, list[Estimate]] = {}
    with torch.random.fork_rng(devices=[]):
        model = build_model(model_e, task, 0)
        ctx = _context(bench, task_e, model_e, model, task, entry.cls.objective_requires)
        model.eval()
        for seed in range(STDERR_REPEATS):
            torch.manual_seed(1000 + seed)
            with torch.no_grad():
                # a fresh context: shared samples must not carry over between repeats
                fresh = EvalContext(ctx.budget, ctx.device, ctx.step, ctx.objective)
                values = entry.cls().compute(model, task, fresh)
            for name, value in values.items():
                seen.setdefault(name, []).append(_as_estimate(entry, name, value))
    checked = False
    for name, estimates in sorted(seen.items()):
        values = torch.tensor([e.value for e in estimates], dtype=torch.float64)
        errors = torch.tensor([e.stderr for e in estimates], dtype=torch.float64)
        if len(estimates) < 3 or errors.isnan().any() or values.isnan().any():
            continue
        spread = float(values.std())
        if spread == 0:
            continue  # deterministic given the model: nothing to compare with
        checked = True
        mean_se = float(errors.mean())
        if mean_se < STDERR_MIN_RATIO * spread:
            raise fail(
                entry,
                "compute()",
                f"the stderr of '{name}' is too small: its mean {mean_se:.3g} over "
                f"{len(estimates)} evaluations of one model is below {STDERR_MIN_RATIO:g} × the "
                f"spread of their values ({spread:.3g}) on ({task_e.name}, {model_e.name}); "
                "compute it from the samples the value averages (std / sqrt(n))",
            )
    if not checked:
        raise NotApplicable("no value varies across metric seeds with a reported stderr")
