"""The conformance suite's building blocks: checks, results, failures and the workbench that
finds compatible partners for a component; the checks themselves import these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from benchmark_core.contract import Component, Task, incompatibility, model_incompatibility
from benchmark_core.contract.budgets import Budget, budget_for
from benchmark_core.registry import Entry, Registry


class ConformanceError(AssertionError):
    """A component does not do what it declares; the message names it, its plugin and why."""


class NotApplicable(Exception):
    """The check cannot run here (no compatible partner installed, say); a skip, not a failure."""


#: Steps of a conformance smoke cell: enough to exercise setup, steps and the loss checks.
SMOKE_STEPS = 3


def smoke_budget(task: type[Task], objective: type[Component] | None = None) -> Budget:
    """The ``smoke`` profile with the components' overrides, cut down to a few steps."""
    budget = budget_for("smoke", task, objective or _NoOverrides)  # type: ignore[arg-type]
    return replace(
        budget,
        steps=SMOKE_STEPS,
        batch_size=min(budget.batch_size, 64),
        n_eval=min(budget.n_eval, 256),
        checkpoints=1,
        log_every=1,
    )


class _NoOverrides:
    budgets: dict[str, dict[str, int]] = {}


def where(entry: Entry) -> str:
    """``objective 'foo' (plugin 'foo', gbench-foo 0.1.0)``: how messages name a component."""
    p = entry.plugin
    return f"{entry.kind} '{entry.name}' (plugin '{p.name}', {p.distribution} {p.version})"


#: The longest printout of a value a failure message embeds (the fix must stay readable).
SHORT_REPR = 120


def short(value: Any, limit: int = SHORT_REPR) -> str:
    """A value for a failure message: tensors by shape, dtype and a few entries; anything
    else by its repr, cut to ``limit`` characters."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten()[:4].tolist()
        more = ", ..." if value.numel() > 4 else ""
        entries = ", ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in flat)
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype}, [{entries}{more}])"
    if isinstance(value, dict):
        inner = ", ".join(f"{k!r}: {short(v)}" for k, v in list(value.items())[:4])
        text = "{" + inner + (", ..." if len(value) > 4 else "") + "}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(entry: Entry, declaration: str, problem: str) -> ConformanceError:
    """A failure naming the component, its plugin, the declaration at fault and the problem."""
    return ConformanceError(f"{where(entry)}: {declaration}: {problem}")


@dataclass(frozen=True)
class Check:
    """One check of one component; call it to run it (raises ConformanceError on failure)."""

    entry: Entry
    name: str
    run_fn: Callable[[], None]

    @property
    def id(self) -> str:
        """``kind:component:check``, unique within a registry."""
        return f"{self.entry.kind}:{self.entry.name}:{self.name}"

    def __call__(self) -> None:
        # The checks work on tiny tensors, where thread hand-offs cost more than arithmetic.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self.run_fn()
        finally:
            torch.set_num_threads(threads)


@dataclass(frozen=True)
class Result:
    """The outcome of one check: ``pass``, ``fail`` or ``skip``, with a message."""

    check: Check
    status: str
    message: str = ""


class Workbench:
    """Finds compatible partners from declarations and builds tasks once (they are fixed)."""

    def __init__(self, registry: Registry) -> None:
        from benchmark_core.engine.runner import TaskCache

        self.registry = registry
        self.cache = TaskCache()
        #: results one check computes and another reuses (a metric's value names)
        self.memo: dict[tuple[str, ...], Any] = {}

    def task(self, entry: Entry) -> Task:
        """The task with default parameters, built as the runner builds it (and shared)."""
        from benchmark_core.engine.selection import Configured

        return self.cache.get(Configured(entry, entry.cls.validate({}), {}), torch.device("cpu"))

    def _tasks_of(self, kind: str) -> list[Entry]:
        return [e for _, e in sorted(self.registry.of_kind("task").items()) if e.cls.kind == kind]

    def _models_for(self, task: Entry) -> list[Entry]:
        models = self.registry.of_kind("model")
        named = [models[n] for n in task.cls.default_models if n in models]
        rest = [e for n, e in sorted(models.items()) if n not in task.cls.default_models]
        return [m for m in named + rest if model_incompatibility(m.cls, task.cls) is None]

    def pair_for(
        self, user: Entry, kind: str, needs: frozenset[str] = frozenset()
    ) -> tuple[Entry, Entry]:
        """A (task, model) of ``kind`` that the objective or metric ``user`` can run on (with
        a model that also provides ``needs``)."""
        for task in self._tasks_of(kind):
            for model in self._models_for(task):
                if needs <= model.cls.provides and (
                    incompatibility(user.cls, task.cls, model.cls) is None
                ):
                    return task, model
        extra = f" with a model providing {sorted(needs)}" if needs else ""
        raise NotApplicable(f"no installed {kind} task and model{extra} satisfy {user.name}")

    def task_for(self, model: Entry, kind: str) -> Entry:
        """A task of ``kind`` that ``model`` can be built for (one listing it as a default
        first)."""
        tasks = [t for t in self._tasks_of(kind) if model_incompatibility(model.cls, t.cls) is None]
        tasks.sort(key=lambda t: model.name not in t.cls.default_models)
        if not tasks:
            raise NotApplicable(f"no installed {kind} task to build model {model.name} for")
        return tasks[0]

    def model_for(self, task: Entry) -> Entry:
        """A model that can be built for ``task``."""
        models = self._models_for(task)
        if not models:
            raise NotApplicable(f"no installed model can be built for task {task.name}")
        return models[0]

    def objective_for(
        self, task: Entry, model: Entry, needs: frozenset[str] = frozenset()
    ) -> Entry | None:
        """Any objective that can train (task, model) and provides ``needs``, for metrics
        that read the context (None when none is needed and none is installed)."""
        for _, entry in sorted(self.registry.of_kind("objective").items()):
            if needs <= entry.cls.provides and (
                incompatibility(entry.cls, task.cls, model.cls) is None
            ):
                return entry
        if needs:
            raise NotApplicable(
                f"no installed objective provides {sorted(needs)} on ({task.name}, {model.name})"
            )
        return None


def build_model(entry: Entry, task: Task, seed: int = 0) -> Any:
    """``entry``'s model with default parameters for ``task``, initialised from ``seed``."""
    torch.manual_seed(seed)
    return entry.cls(task)
