"""Conformance checks of what a component is for, beyond the shape of its declarations: an
objective lowers the loss it logs, a task's default models train on it, a metric's standard
errors match the spread of repeated evaluations; see :mod:`.suite`."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from benchmark_core.conformance.base import (
    NotApplicable,
    Workbench,
    build_model,
    fail,
    smoke_budget,
)
from benchmark_core.conformance.runs import CPU, _as_estimate, _context, check_smoke_cell
from benchmark_core.contract import Estimate, EvalContext, Objective
from benchmark_core.registry import Entry


def check_smoke_cell_and_descent(entry: Entry, bench: Workbench, kind: str) -> None:
    """A smoke cell through the real runner ends ok, and (unless the objective declares
    ``loss_descends = False``) training lowers the loss ``step`` returns."""
    check_smoke_cell(entry, bench, kind)
    if entry.cls.loss_descends:
        check_descent(entry, bench, *bench.pair_for(entry, kind))


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
            losses.append(float(objective.step(task.train[rows], step).detach()))
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
