"""Run profiles: how many steps, how big a batch, how many samples the metrics use."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from benchmark_core.contract.errors import UsageError, did_you_mean

#: Task kinds (as in components.KINDS; repeated here to keep this module import-light).
KINDS = ("vector", "sequence")

if TYPE_CHECKING:
    from benchmark_core.contract.objective import Objective
    from benchmark_core.contract.task import Task


@dataclass(frozen=True)
class Budget:
    """The size of one cell's run.

    Attributes
    ----------
    name : str
        ``smoke`` (tests and CI), ``quick`` (the default; a laptop CPU) or ``paper`` (a GPU).
    steps : int
        Training steps.
    batch_size : int
        Training samples per step.
    n_eval : int
        Samples each sampling-based metric draws.
    checkpoints : int
        Evaluations of the metrics during training, the last one at the final step.
    log_every : int
        Steps between loss records and divergence checks (each one synchronises the device).
    """

    name: str
    steps: int
    batch_size: int
    n_eval: int
    checkpoints: int
    log_every: int

    def as_dict(self) -> dict[str, int | str]:
        """The budget as a plain dict."""
        return asdict(self)

    def eval_steps(self) -> list[int]:
        """Steps after which the metrics are evaluated (0 is before training)."""
        n = max(self.checkpoints, 1)
        return sorted({0, *(round(self.steps * (i + 1) / n) for i in range(n))})


PROFILES: dict[str, Budget] = {
    "smoke": Budget("smoke", steps=300, batch_size=256, n_eval=2_000, checkpoints=2, log_every=25),
    "quick": Budget(
        "quick", steps=2_000, batch_size=256, n_eval=10_000, checkpoints=4, log_every=50
    ),
    "paper": Budget(
        "paper", steps=20_000, batch_size=512, n_eval=100_000, checkpoints=10, log_every=100
    ),
}


def budget_for(name: str, task: type[Task], objective: type[Objective]) -> Budget:
    """The profile ``name`` with the task's, then the objective's, overrides applied.

    An owner's ``budgets`` maps profile to overrides, or task kind to such a map (an
    objective that needs more steps on vectors only: ``{"vector": {"quick": {...}}}``).
    """
    if name not in PROFILES:
        raise UsageError(
            f"unknown budget '{name}'.{did_you_mean(name, PROFILES)} "
            f"Choose one of: {', '.join(PROFILES)}."
        )
    budget = PROFILES[name]
    for owner in (task, objective):
        table = getattr(owner, "budgets", {})
        if table and set(table) <= set(KINDS):  # keyed by task kind first, like requirements
            table = table.get(task.kind, {})
        overrides = table.get(name, {})
        if overrides:
            budget = replace(budget, **overrides)
    return budget
