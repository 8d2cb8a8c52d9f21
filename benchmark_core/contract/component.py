"""Component: the common base of tasks, models, objectives and metrics; capabilities and kinds."""

from __future__ import annotations

from typing import Any, ClassVar

from benchmark_core.contract.errors import UsageError
from benchmark_core.contract.params import Param, validate_params

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
    "token_log_prob": "per-token log-probabilities (token_log_probs)",
    "next_token_log_prob": "next-symbol distributions (next_token_log_probs)",
    "feed_eps": "probability of feeding the true symbol (feed_eps)",
    "vmap": "methods that run under torch.func.vmap (replicas trained as one model)",
}

#: The capabilities each role may declare in ``provides`` (and others in their ``*_requires``).
TASK_CAPABILITIES = frozenset(
    {"log_prob", "sample", "enumerable", "token_log_prob", "next_token_log_prob"}
)
MODEL_CAPABILITIES = frozenset(
    {"log_prob", "sample", "rsample", "autoregressive", "moments", "vmap"}
)
OBJECTIVE_CAPABILITIES = frozenset({"feed_eps"})


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
