"""Proxies that expose only the declared capabilities of a model or a task.

An objective or a metric that declares ``model_requires = {"log_prob"}`` is run against a
model whose other capability methods (``sample``, ``rsample``, ``mean``, the autoregressive
``step``...) record the call and raise (likewise a task's, and for a metric the objective's
``feed_eps``); its ``provides`` shows only what was declared, so code that branches on
``"moments" in model.provides`` takes its fallback. Everything else (parameters, ``train``,
``test``, shapes) passes through unchanged.
"""

from __future__ import annotations

from typing import Any

from benchmark_core.contract.autoregressive import AUTOREGRESSIVE_METHODS

#: method -> the capability that licenses calling it
MODEL_METHODS = {
    "log_prob": "log_prob",
    "sample": "sample",
    "rsample": "rsample",
    "mean": "moments",
    "covariance": "moments",
    **{m: "autoregressive" for m in AUTOREGRESSIVE_METHODS if m != "log_prob"},
}
TASK_METHODS = {
    "log_prob": "log_prob",
    "test_log_prob": "log_prob",
    "sample": "sample",
    "enumerate": "enumerable",
    "token_log_probs": "token_log_prob",
    "next_token_log_probs": "next_token_log_prob",
}
OBJECTIVE_METHODS = {"feed_eps": "feed_eps"}

#: Declaring the left capability licenses the right ones too: ``Model.sample`` defaults to
#: ``rsample`` without gradients, so a model that can rsample can sample.
IMPLIED = {"rsample": frozenset({"sample"})}


class UndeclaredCapability(Exception):
    """A component called a capability method it did not declare that it needs."""


def licensed(declared: frozenset[str]) -> frozenset[str]:
    """The declared capabilities with the ones they imply."""
    out = set(declared)
    for cap in declared:
        out |= IMPLIED.get(cap, frozenset())
    return frozenset(out)


class Restricted:
    """Wrap ``target`` so that only the capabilities in ``allowed`` can be called.

    Each refused call is appended to ``violations`` as ``(role, method, capability)`` before
    raising, so that a component that swallows exceptions is caught all the same.
    """

    def __init__(
        self,
        target: Any,
        allowed: frozenset[str],
        methods: dict[str, str],
        role: str,
        violations: list[tuple[str, str, str]],
    ) -> None:
        object.__setattr__(self, "_r_target", target)
        object.__setattr__(self, "_r_allowed", licensed(allowed))
        object.__setattr__(self, "_r_methods", methods)
        object.__setattr__(self, "_r_role", role)
        object.__setattr__(self, "_r_violations", violations)

    def __getattr__(self, name: str) -> Any:
        target = object.__getattribute__(self, "_r_target")
        cap = object.__getattribute__(self, "_r_methods").get(name)
        if cap is not None and cap not in object.__getattribute__(self, "_r_allowed"):
            role = object.__getattribute__(self, "_r_role")
            violations = object.__getattribute__(self, "_r_violations")

            def refused(*args: Any, **kwargs: Any) -> Any:
                violations.append((role, name, cap))
                raise UndeclaredCapability(f"{role}.{name}() needs the {role}'s '{cap}'")

            return refused
        return getattr(target, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_r_target"), name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return object.__getattribute__(self, "_r_target")(*args, **kwargs)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(proxy, Model) stays true
        return type(object.__getattribute__(self, "_r_target"))

    @property
    def provides(self) -> frozenset[str]:
        """What the target provides, as far as the user declared it needs."""
        target = object.__getattribute__(self, "_r_target")
        return frozenset(target.provides) & object.__getattribute__(self, "_r_allowed")
