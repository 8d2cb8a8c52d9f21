"""The four kinds of component (Task, Model, Objective, Metric) and their declared capabilities.

Compatibility is decided from declarations alone, before anything is built: a Task says what
it provides, a Model says what it can do, and an Objective or Metric says what it needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import torch

from .errors import UsageError
from .params import Param, validate_params

if TYPE_CHECKING:
    from .budgets import Budget
    from .replicas import ReplicaStack

#: Sample-space kinds a Task can be.
KINDS = ("vector", "sequence")

#: Human words for each capability, used in skip reasons.
CAPABILITIES = {
    "log_prob": "exact density (log_prob)",
    "sample": "sampling (sample)",
    "rsample": "reparameterised sampling (rsample)",
    "autoregressive": "step-wise autoregressive interface",
    "moments": "closed-form moments (mean, covariance)",
    "enumerable": "enumerable sample space",
    "vmap": "methods that run under torch.func.vmap (replicas trained as one model)",
}


class Component:
    """Common base: a name, a one-line description and typed, validated parameters.

    Attributes
    ----------
    name : str
        The unique name users select the component by.
    description : str
        One line for ``gbench list``.
    param_spec : dict[str, Param]
        The declared parameters with their defaults; each becomes an attribute of the instance.
    all_sweep : dict[str, list]
        Values swept when the user selects ``all`` of this kind (e.g. ``{"pi": [0.1, 0.5]}``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    param_spec: ClassVar[dict[str, Param]] = {}
    all_sweep: ClassVar[dict[str, list[Any]]] = {}

    def __init__(self, **params: Any) -> None:
        self.params = type(self).validate(params)
        for key, value in self.params.items():
            setattr(self, key, value)

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Return the full, validated parameter dict for ``params`` (defaults filled in).

        Each value is checked against its `Param`, then the whole set by `check`. Selection
        calls this for every configuration before any cell is built, so a bad combination of
        values is refused (exit code 2) before anything runs.
        """
        full = validate_params(cls.name, cls.param_spec, params)
        try:
            cls.check(full)
        except UsageError:
            raise
        except (ValueError, OSError) as exc:
            raise UsageError(f"{cls.name}: {exc}") from None
        return full

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        """Refuse a parameter set that the per-value checks cannot see is wrong.

        Override to check values against each other or against the outside world (a file
        that must exist and parse). ``params`` is complete and each value already valid.
        Raise `UsageError`, or ``ValueError``/``OSError``, whose message becomes a
        UsageError prefixed with the component's name. Keep it cheap: it runs for every
        configuration of a sweep during selection.
        """


class Task(Component):
    """A data distribution P with fixed, seeded training and held-out test sets.

    Attributes
    ----------
    kind : str
        ``"vector"`` (samples are rows of a float tensor ``[n, dim]``) or ``"sequence"``
        (rows of a long tensor ``[n, length]`` over ``vocab_size`` symbols).
    provides : frozenset[str]
        ``"log_prob"`` when P's density is known exactly, ``"sample"`` when fresh samples can
        be drawn, ``"enumerable"`` when the sample space can be summed over.
    default_models : tuple[str, ...]
        Models used when the user names none.
    budgets : dict[str, dict[str, int]]
        Per-profile overrides of the budget fields (``{"quick": {"steps": 4000}}``).
    max_threads : int or None
        At most this many CPU threads for the task's cells. Tiny models (2-D Gaussians) run
        several times faster on one thread: thread hand-offs cost more than their arithmetic.
    train, test : torch.Tensor
        The fixed training set and the separate held-out set, built by ``setup``.
    vocab_size, length : int
        Sequence tasks only: symbols are ``0 .. vocab_size - 1``; every sequence has
        ``length`` symbols.
    """

    kind: ClassVar[str] = "vector"
    provides: ClassVar[frozenset[str]] = frozenset()
    default_models: ClassVar[tuple[str, ...]] = ()
    budgets: ClassVar[dict[str, dict[str, int]]] = {}
    max_threads: ClassVar[int | None] = None

    train: torch.Tensor
    test: torch.Tensor

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.setup()

    def setup(self) -> None:
        """Build the fixed data (``self.train``, ``self.test``) from the task's own seed."""
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log P(x) for each row of ``x``; only for tasks that provide ``log_prob``."""
        raise NotImplementedError(f"task {self.name} has no known density")

    def sample(self, n: int) -> torch.Tensor:
        """Draw ``n`` fresh samples from P using the global torch RNG."""
        raise NotImplementedError(f"task {self.name} cannot draw fresh samples")

    def enumerate(self) -> torch.Tensor:
        """Every point of the sample space, one per row; only for tasks that provide
        ``enumerable``. Sums over these rows make metrics and gradients exact."""
        raise NotImplementedError(f"task {self.name} has no enumerable sample space")

    def to(self, device: torch.device | str) -> Task:
        """Move every tensor and module the task holds to ``device``; return self."""
        for key, value in vars(self).items():
            if isinstance(value, torch.Tensor | torch.nn.Module):
                setattr(self, key, value.to(device))
        return self


class Model(torch.nn.Module, Component):
    """A parametric distribution Q, built for a given task.

    Subclasses implement ``build(task)`` and the methods their ``provides`` declares.

    Attributes
    ----------
    kinds : frozenset[str]
        Task kinds the model can be built for.
    provides : frozenset[str]
        Subset of ``log_prob``, ``sample``, ``rsample``, ``autoregressive``, ``moments``,
        ``vmap`` (its methods run under torch.func.vmap, so replicas can train as one).
    """

    kinds: ClassVar[frozenset[str]] = frozenset({"vector"})
    provides: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, task: Task, **params: Any) -> None:
        torch.nn.Module.__init__(self)
        Component.__init__(self, **params)
        self.build(task)

    def build(self, task: Task) -> None:
        """Create the model's parameters for ``task``'s shapes."""
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log Q(x) for each row of ``x``."""
        raise NotImplementedError

    def sample(self, n: int) -> torch.Tensor:
        """Draw ``n`` samples (no gradient)."""
        with torch.no_grad():
            return self.rsample(n)

    def rsample(self, n: int) -> torch.Tensor:
        """Draw ``n`` reparameterised samples that carry gradients to the parameters."""
        raise NotImplementedError

    def mean(self) -> torch.Tensor:
        """Exact mean of Q; only for models that provide ``moments``."""
        raise NotImplementedError

    def covariance(self) -> torch.Tensor:
        """Exact covariance of Q; only for models that provide ``moments``."""
        raise NotImplementedError


Requirements = frozenset[str] | dict[str, frozenset[str]]


class _Needs(Component):
    """Shared declarations of components that need things from the task and the model.

    ``model_requires`` and ``task_requires`` are sets of capabilities, or dicts from task
    kind to such sets when the needs differ by kind (an adversarial objective needs
    reparameterised samples on vectors but a density and a sampler on sequences).
    """

    kinds: ClassVar[frozenset[str]] = frozenset(KINDS)
    model_requires: ClassVar[Requirements] = frozenset()
    task_requires: ClassVar[Requirements] = frozenset()

    @classmethod
    def requirements(cls, kind: str) -> tuple[frozenset[str], frozenset[str]]:
        """The (task, model) capabilities needed on tasks of ``kind``."""

        def pick(req: Requirements) -> frozenset[str]:
            return req.get(kind, frozenset()) if isinstance(req, dict) else req

        return pick(cls.task_requires), pick(cls.model_requires)


class Objective(_Needs):
    """A training objective: owns its optimisers (and any auxiliary network) and takes steps.

    Attributes
    ----------
    kinds : frozenset[str]
        Task kinds it trains on.
    model_requires, task_requires : frozenset[str]
        Capabilities it needs from the model and from the task.
    budgets : dict
        Per-profile budget overrides, applied after the task's (adversarial training may
        need more steps, say); or a dict from task kind to such overrides.
    replica_kinds : frozenset[str]
        Task kinds on which it can train several cells as one stacked model
        (`setup_replicas`, `step_replicas`; the model must provide ``vmap``).
    replica_params : frozenset[str]
        Parameters that may differ between replicas trained together (seeds always may).
    """

    budgets: ClassVar[dict[str, Any]] = {}
    replica_kinds: ClassVar[frozenset[str]] = frozenset()
    replica_params: ClassVar[frozenset[str]] = frozenset()

    def setup(self, model: Model, task: Task, budget: Budget) -> None:
        """Create optimisers and auxiliary networks before the first step."""
        raise NotImplementedError

    def step(self, batch: torch.Tensor, step: int) -> torch.Tensor:
        """Take one training step on ``batch``; return the loss as a detached 0-d tensor.

        Must not synchronise with the device (no ``.item()``): the runner checks the loss
        for divergence every few steps.
        """
        raise NotImplementedError

    def setup_replicas(
        self, models: ReplicaStack, task: Task, budget: Budget, params: list[dict[str, Any]]
    ) -> None:
        """Like `setup`, for R replicas stacked in ``models``; ``params[r]`` are replica r's."""
        raise NotImplementedError

    def step_replicas(self, batch: torch.Tensor, step: int) -> torch.Tensor:
        """One step of every replica, on ``batch`` [R, B, ...]; the losses, detached, [R]."""
        raise NotImplementedError

    @staticmethod
    def adam(
        params: Any, lr: float, steps: int, betas: tuple[float, float] = (0.9, 0.999)
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """Adam with a cosine decay to ``lr / 100`` over ``steps``, so that the final iterates
        settle instead of jittering at the full learning rate."""
        params = list(params)
        # The fused kernel updates every tensor in one call: on the small models of the
        # built-in tasks it is 3x faster than the per-tensor loop (see tests/benchmarks).
        fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
        opt = torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(steps, 1), eta_min=lr / 100
        )
        return opt, sched


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


class Metric(_Needs):
    """A measurement of a trained model against its task.

    Attributes
    ----------
    direction : str
        ``"min"`` (lower is better), ``"max"`` (higher is better) or ``"none"`` (a diagnostic),
        for every value the metric returns unless ``direction_of`` says otherwise.
    """

    direction: ClassVar[str] = "min"

    def compute(
        self, model: Model, task: Task, ctx: EvalContext
    ) -> dict[str, Estimate | float | torch.Tensor]:
        """Return named values: floats, 0-d tensors or Estimates with standard errors."""
        raise NotImplementedError

    def direction_of(self, value_name: str) -> str:
        """The direction of one returned value (``min``, ``max`` or ``none``)."""
        return self.direction


def incompatibility(
    user: type[Objective] | type[Metric], task: type[Task], model: type[Model]
) -> str | None:
    """Why ``user`` cannot run on (task, model), or None when it can."""
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
    return None


def model_incompatibility(model: type[Model], task: type[Task]) -> str | None:
    """Why ``model`` cannot be built for ``task``, or None when it can."""
    if task.kind not in model.kinds:
        kinds = " or ".join(sorted(model.kinds))
        return f"{model.name} models {kinds} data; {task.name} is a {task.kind} task"
    return None
