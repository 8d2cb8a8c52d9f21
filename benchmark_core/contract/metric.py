"""Metric: a measurement of a trained model against its task, with standard errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

import torch

from benchmark_core.contract.model import Model
from benchmark_core.contract.needs import Needs
from benchmark_core.contract.objective import Objective
from benchmark_core.contract.task import Task

if TYPE_CHECKING:
    from benchmark_core.contract.budgets import Budget

T = TypeVar("T")


class Estimate(NamedTuple):
    """A metric value with its standard error (NaN when the value is exact)."""

    value: float
    stderr: float = math.nan


@dataclass(frozen=True)
class EvalContext:
    """What a metric may use besides the model and the task: one per evaluation.

    Attributes
    ----------
    budget : Budget
        The cell's budget (``n_eval`` samples per sampling metric).
    device : torch.device
        Where the model and the task live.
    step : int
        The training step being evaluated (0 is before training).
    objective : Objective
        The cell's objective; a metric may call only what its ``objective_requires``
        declares (e.g. ``feed_eps()``).
    """

    budget: Budget
    device: torch.device
    step: int
    objective: Objective
    _store: dict[Hashable, Any] = field(default_factory=dict, repr=False, compare=False)

    def shared(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, called once per evaluation: every later call with an equal ``key``
        (from any metric of this evaluation) returns the first call's value.

        This is how metrics share work, such as one batch of Q's samples that several
        sampling metrics score. Every metric starts from the same seeded RNG state, so a
        key should name what the value depends on (sizes, temperature, the seed).
        """
        if key not in self._store:
            self._store[key] = compute()
        return self._store[key]


class Metric(Needs):
    """A measurement of a trained model against its task.

    Attributes
    ----------
    direction : str
        ``"min"`` (lower is better), ``"max"`` (higher is better) or ``"none"`` (a diagnostic),
        for every value the metric returns unless ``direction_of`` says otherwise.
    frontier : dict[str, str]
        The values of this metric that measure quality, each mapped to the value that measures
        the coverage it trades against: ``{"quality_value": "coverage_value"}``. Reports draw
        each pair as a quality–coverage frontier (coverage on x, quality on y) when a results
        table holds both; the coverage value may come from another metric. Empty by default.
    kinds, model_requires, task_requires
        As for an objective: the task kinds it measures and the capabilities it needs.
    objective_requires : frozenset[str]
        What it needs from the cell's objective, among the objective's ``provides`` (e.g.
        ``"feed_eps"``); on a cell whose objective lacks it the metric is not computed, and
        the grid records why.
    """

    direction: ClassVar[str] = "min"
    frontier: ClassVar[dict[str, str]] = {}

    def compute(
        self, model: Model, task: Task, ctx: EvalContext
    ) -> dict[str, Estimate | float | torch.Tensor]:
        """Return named values: floats, 0-d tensors or Estimates with standard errors."""
        raise NotImplementedError

    def direction_of(self, value_name: str) -> str:
        """The direction of one returned value (``min``, ``max`` or ``none``)."""
        return self.direction
