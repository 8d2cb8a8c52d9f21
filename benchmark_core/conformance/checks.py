"""Which checks apply to a component (:func:`checks_for`), and the checks of declarations,
parameters, tasks and models; see :mod:`.conformance`."""

from __future__ import annotations

import functools
from typing import Any

import torch

from benchmark_core.conformance.base import (
    Check,
    NotApplicable,
    Workbench,
    build_model,
    fail,
)
from benchmark_core.conformance.behaviour import (
    check_default_models,
    check_metric_stderr,
    check_smoke_cell_and_descent,
)
from benchmark_core.conformance.density import sequence_problems, vector_problems
from benchmark_core.conformance.interfaces import (
    check_autoregressive,
    check_moments,
    check_next_token_log_probs,
    check_objective_provides,
    check_task_shape,
    check_test_log_prob,
    check_token_log_probs,
    check_vmap,
)
from benchmark_core.conformance.param_checks import check_bounds_declared, check_params
from benchmark_core.conformance.runs import (
    DIRECTIONS,
    check_metric_requirements,
    check_metric_values,
    check_objective_requirements,
    check_replicas,
)
from benchmark_core.contract import (
    KINDS,
    MODEL_CAPABILITIES,
    OBJECTIVE_CAPABILITIES,
    TASK_CAPABILITIES,
    Model,
    Task,
)
from benchmark_core.contract.budgets import PROFILES, Budget
from benchmark_core.registry import Entry


def checks_for(entry: Entry, bench: Workbench) -> list[Check]:
    """The checks that apply to ``entry``, given its kind and declarations."""

    def make(name: str, fn: Any, *args: Any) -> Check:
        return Check(entry, name, functools.partial(fn, entry, bench, *args))

    checks = [make("declarations", check_declarations), make("params", check_params)]
    cls = entry.cls
    if entry.kind == "task":
        checks += [make("data", check_task_data), make("shape", check_task_shape)]
        checks.append(make("capabilities", check_task_capabilities))
        checks.append(make("density", check_task_density))
        if cls.default_models:
            checks.append(make("default_models", check_default_models))
        return checks
    kinds = sorted(k for k in KINDS if k in getattr(cls, "kinds", ()))
    for kind in kinds:
        if entry.kind == "model":
            checks.append(make(f"capabilities[{kind}]", check_model_capabilities, kind))
            checks.append(make(f"density[{kind}]", check_model_density, kind))
        elif entry.kind == "objective":
            checks.append(make(f"smoke_cell[{kind}]", check_smoke_cell_and_descent, kind))
            checks.append(make(f"requirements[{kind}]", check_objective_requirements, kind))
            if cls.provides:
                checks.append(make(f"provides[{kind}]", check_objective_provides, kind))
            if kind in cls.replica_kinds:
                checks.append(make(f"replicas[{kind}]", check_replicas, kind))
        else:
            checks.append(make(f"values[{kind}]", check_metric_values, kind))
            checks.append(make(f"requirements[{kind}]", check_metric_requirements, kind))
            checks.append(make(f"stderr[{kind}]", check_metric_stderr, kind))
    return checks


# --- every component -------------------------------------------------------------------


def check_declarations(entry: Entry, bench: Workbench) -> None:
    """Names, descriptions, kinds, capabilities, requirements, direction and budgets."""
    cls = entry.cls
    desc = cls.description
    if not isinstance(desc, str) or not desc.strip() or "\n" in desc.strip():
        raise fail(entry, "description", f"must be one non-empty line, not {desc!r}")

    def subset(attr: str, value: Any, allowed: frozenset[str] | tuple[str, ...]) -> None:
        extra = sorted(set(value) - set(allowed))
        if extra:
            raise fail(
                entry,
                f"{attr}={sorted(value)}",
                f"{', '.join(map(repr, extra))} is not one of {', '.join(sorted(allowed))}",
            )

    if entry.kind == "task":
        if cls.kind not in KINDS:
            raise fail(entry, f"kind={cls.kind!r}", f"must be one of {', '.join(KINDS)}")
        subset("provides", cls.provides, TASK_CAPABILITIES)
    else:
        if not cls.kinds:
            raise fail(entry, "kinds", "is empty: the component can run on no task")
        subset("kinds", cls.kinds, KINDS)
    if entry.kind == "model":
        subset("provides", cls.provides, MODEL_CAPABILITIES)
    if entry.kind == "objective":
        subset("provides", cls.provides, OBJECTIVE_CAPABILITIES)
        if cls.objective_requires:
            raise fail(entry, "objective_requires", "is for metrics; an objective needs none")
        if not isinstance(cls.loss_descends, bool):
            raise fail(
                entry,
                f"loss_descends={cls.loss_descends!r}",
                "must be True or False (False only when step() returns a game value)",
            )
    if entry.kind == "metric":
        subset("objective_requires", cls.objective_requires, OBJECTIVE_CAPABILITIES)
    if entry.kind in ("objective", "metric"):
        for attr, caps in (
            ("task_requires", TASK_CAPABILITIES),
            ("model_requires", MODEL_CAPABILITIES),
        ):
            req = getattr(cls, attr)
            if isinstance(req, dict):
                subset(f"{attr} keys", req, KINDS)
                for kind, needs in req.items():
                    subset(f"{attr}[{kind!r}]", needs, caps)
            else:
                subset(attr, req, caps)
    if entry.kind == "metric" and cls.direction not in DIRECTIONS:
        raise fail(entry, f"direction={cls.direction!r}", "must be 'min', 'max' or 'none'")
    check_bounds_declared(entry)
    for key, value in getattr(cls, "budgets", {}).items():
        # budgets may be keyed by task kind first: {"vector": {"quick": {...}}}
        tables = value.items() if key in KINDS else [(key, value)]
        for profile, overrides in tables:
            if profile not in PROFILES:
                raise fail(
                    entry, f"budgets[{profile!r}]", f"no such profile ({', '.join(PROFILES)})"
                )
            subset(f"budgets[{profile!r}]", overrides, tuple(Budget.__dataclass_fields__))


# --- tasks -----------------------------------------------------------------------------


def _vocab(task: Any) -> int | None:
    value = getattr(task, "vocab_size", None)  # checked by check_task_shape
    return value if isinstance(value, int) else None


def _check_rows(entry: Entry, decl: str, x: Any, task: Task, what: str, n: int | None) -> None:
    """``x`` is ``n`` rows of ``task``'s sample space."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise fail(entry, decl, f"{what} must be a 2-D tensor [n, ...], got {shape}")
    if n is not None and len(x) != n:
        raise fail(entry, decl, f"{what} has {len(x)} rows, not {n}")
    if x.shape[1:] != task.train.shape[1:]:
        raise fail(
            entry,
            decl,
            f"{what} rows have shape {tuple(x.shape[1:])}, the task's "
            f"{tuple(task.train.shape[1:])}",
        )
    if task.kind == "vector":
        if not x.is_floating_point():
            raise fail(
                entry, decl, f"{what} must be floating point on a vector task, not {x.dtype}"
            )
        if not torch.isfinite(x).all():
            raise fail(entry, decl, f"{what} holds non-finite values")
    else:
        if x.is_floating_point() or x.dtype == torch.bool:
            raise fail(entry, decl, f"{what} must hold integer tokens, not {x.dtype}")
        vocab = _vocab(task)
        if len(x) and (x.min() < 0 or (vocab is not None and x.max() >= vocab)):
            raise fail(entry, decl, f"{what} holds tokens outside [0, {vocab})")


def check_task_data(entry: Entry, bench: Workbench) -> None:
    """Fixed, seeded train and test sets of the declared kind, whatever the global RNG."""
    task = bench.task(entry)
    decl = f"kind={entry.cls.kind!r}"
    for split in ("train", "test"):
        x = getattr(task, split, None)
        if x is None or len(x) == 0:
            raise fail(entry, "setup()", f"must build a non-empty self.{split}")
        _check_rows(entry, decl, x, task, f"self.{split}", None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(12345)
        again = entry.cls()
    if not (torch.equal(again.train, task.train) and torch.equal(again.test, task.test)):
        raise fail(
            entry,
            "setup()",
            "the train/test data change with the global RNG; draw them from a private "
            "torch.Generator seeded by the task's own parameters",
        )


def check_task_capabilities(entry: Entry, bench: Workbench) -> None:
    """Each capability in ``provides`` works."""
    task = bench.task(entry)
    provides = entry.cls.provides
    _check_log_prob(entry, task, provides)
    if "log_prob" in provides:
        check_test_log_prob(entry, task)
    if "sample" in provides:
        torch.manual_seed(0)
        _check_rows(entry, "provides 'sample'", task.sample(64), task, "sample(64)", 64)
    if "enumerable" in provides and task.kind == "sequence" and _vocab(task) is None:
        raise fail(entry, "provides 'enumerable'", "the task has no integer vocab_size attribute")
    if "token_log_prob" in provides:
        check_token_log_probs(entry, task)
    if "next_token_log_prob" in provides:
        check_next_token_log_probs(entry, task)


def _check_log_prob(entry: Entry, dist: Any, provides: frozenset[str], task: Any = None) -> None:
    if "log_prob" not in provides:
        return
    task = task or dist
    x = task.test[:256]
    lp = dist.log_prob(x)
    decl = "provides 'log_prob'"
    if not isinstance(lp, torch.Tensor) or lp.shape != (len(x),):
        shape = tuple(lp.shape) if isinstance(lp, torch.Tensor) else type(lp).__name__
        raise fail(
            entry, decl, f"log_prob of {len(x)} test rows has shape {shape}, not ({len(x)},)"
        )
    if not torch.isfinite(lp).all():
        raise fail(entry, decl, "log_prob is not finite on the task's test data")


def _density_problems(dist: Any, task: Task) -> list[str]:
    if task.kind == "vector":
        return vector_problems(dist)
    return sequence_problems(dist, _vocab(task), "enumerable" in task.provides)


def check_task_density(entry: Entry, bench: Workbench) -> None:
    """P's log_prob agrees with P's fresh samples."""
    if not {"log_prob", "sample"} <= entry.cls.provides:
        raise NotApplicable("the task does not provide both log_prob and sample")
    task = bench.task(entry)
    with torch.random.fork_rng(devices=[]):
        problems = _density_problems(task, task)
    if problems:
        raise fail(entry, "provides 'log_prob' and 'sample'", "; ".join(problems))


# --- models ----------------------------------------------------------------------------


def _grads(model: Model) -> bool:
    found = any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters())
    model.zero_grad(set_to_none=True)
    return found


def check_model_capabilities(entry: Entry, bench: Workbench, kind: str) -> None:
    """Each capability in ``provides`` works on a task of ``kind``."""
    task = bench.task(bench.task_for(entry, kind))
    provides = entry.cls.provides
    with torch.random.fork_rng(devices=[]):
        model = build_model(entry, task)
        trainable = any(p.requires_grad for p in model.parameters())
        _check_log_prob(entry, model, provides, task)
        if "log_prob" in provides and trainable:
            model.log_prob(task.test[:64]).sum().backward()
            if not _grads(model):
                raise fail(entry, "provides 'log_prob'", "log_prob carries no gradient")
        if "sample" in provides:
            x = model.sample(64)
            _check_rows(entry, "provides 'sample'", x, task, "sample(64)", 64)
            if x.requires_grad:
                raise fail(entry, "provides 'sample'", "sample() must not carry gradients")
        if "rsample" in provides:
            x = model.rsample(64)
            _check_rows(entry, "provides 'rsample'", x, task, "rsample(64)", 64)
            if trainable:
                if x.requires_grad:
                    x.sum().backward()
                if not _grads(model):
                    raise fail(
                        entry,
                        "provides 'rsample'",
                        "rsample() carries no gradient to the parameters",
                    )
        if "moments" in provides:
            check_moments(entry, model, task)
        if "vmap" in provides:
            check_vmap(entry, task, model, build_model(entry, task))
        if "autoregressive" in provides:
            check_autoregressive(entry, model, task)


def check_model_density(entry: Entry, bench: Workbench, kind: str) -> None:
    """Q's log_prob agrees with Q's samples (see conformance_density)."""
    provides = entry.cls.provides
    if "log_prob" not in provides or not provides & {"sample", "rsample"}:
        raise NotApplicable("the model does not provide both log_prob and sampling")
    task = bench.task(bench.task_for(entry, kind))
    with torch.random.fork_rng(devices=[]):
        model = build_model(entry, task)
        problems = _density_problems(model, task)
    if problems:
        raise fail(entry, "provides 'log_prob' and 'sample'", "; ".join(problems))
