"""What objectives and metrics need from a task and a model, and why a combination cannot run."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from benchmark_core.contract.component import CAPABILITIES, KINDS, Component
from benchmark_core.contract.model import Model
from benchmark_core.contract.task import Task

if TYPE_CHECKING:
    from benchmark_core.contract.metric import Metric
    from benchmark_core.contract.objective import Objective

Requirements = frozenset[str] | dict[str, frozenset[str]]


class Needs(Component):
    """Shared declarations of components that need things from the task and the model.

    ``model_requires`` and ``task_requires`` are sets of capabilities, or dicts from task
    kind to such sets when the needs differ by kind (an adversarial objective needs
    reparameterised samples on vectors but a density and a sampler on sequences).
    ``objective_requires`` (metrics only) names what is needed from the cell's objective,
    among the objective's ``provides``.
    """

    kinds: ClassVar[frozenset[str]] = frozenset(KINDS)
    model_requires: ClassVar[Requirements] = frozenset()
    task_requires: ClassVar[Requirements] = frozenset()
    objective_requires: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def requirements(cls, kind: str) -> tuple[frozenset[str], frozenset[str]]:
        """The (task, model) capabilities needed on tasks of ``kind``."""

        def pick(req: Requirements) -> frozenset[str]:
            return req.get(kind, frozenset()) if isinstance(req, dict) else req

        return pick(cls.task_requires), pick(cls.model_requires)


def incompatibility(
    user: type[Objective] | type[Metric],
    task: type[Task],
    model: type[Model],
    objective: type[Objective] | None = None,
) -> str | None:
    """Why ``user`` cannot run on (task, model), or None when it can.

    For a metric, ``objective`` is the cell's objective: what the metric's
    ``objective_requires`` names must be in the objective's ``provides``. Left out, only the
    task and the model are considered.
    """
    if task.kind not in user.kinds:
        kinds = " or ".join(sorted(user.kinds))
        return f"{user.name} works on {kinds} tasks; {task.name} is a {task.kind} task"
    task_needs, model_needs = user.requirements(task.kind)
    missing_task = sorted(task_needs - task.provides)
    if missing_task:
        what = CAPABILITIES.get(missing_task[0], missing_task[0])
        return f"{user.name} needs the task's {what}; {task.name} has none"
    missing_model = sorted(model_needs - model.provides)
    if missing_model:
        what = CAPABILITIES.get(missing_model[0], missing_model[0])
        return f"{user.name} needs the model's {what}; {model.name} has none"
    if objective is not None:
        missing_objective = sorted(user.objective_requires - objective.provides)
        if missing_objective:
            what = CAPABILITIES.get(missing_objective[0], missing_objective[0])
            return f"{user.name} needs the objective's {what}; {objective.name} has none"
    return None


def model_incompatibility(model: type[Model], task: type[Task]) -> str | None:
    """Why ``model`` cannot be built for ``task``, or None when it can."""
    if task.kind not in model.kinds:
        kinds = " or ".join(sorted(model.kinds))
        return f"{model.name} models {kinds} data; {task.name} is a {task.kind} task"
    return None
