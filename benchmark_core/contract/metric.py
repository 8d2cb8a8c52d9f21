"""Metric: a measurement of a trained model against its task, with standard errors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import torch

from benchmark_core.contract.model import Model
from benchmark_core.contract.needs import Needs
from benchmark_core.contract.objective import Objective
from benchmark_core.contract.task import Task

if TYPE_CHECKING:
    from benchmark_core.contract.budgets import Budget


class Estimate(NamedTuple):
    """A metric value with its standard error (NaN when the value is exact)."""

    value: float
    stderr: float = math.nan


@dataclass(frozen=True)
class EvalContext:
    """What a metric may use besides the model and the task."""

    budget: Budget
    device: torch.device
    step: int
    objective: Objective


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
