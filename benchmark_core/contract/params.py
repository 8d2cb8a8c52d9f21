"""Typed, validated component parameters: the values a user may set and sweep."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from benchmark_core.contract.errors import UsageError, did_you_mean

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list"}


@dataclass(frozen=True)
class Param:
    """One declared parameter of a component.

    Parameters
    ----------
    default
        The value used when the user gives none. Its type is the parameter's type unless
        ``type`` says otherwise.
    help
        One line for ``gbench list``.
    type
        ``bool``, ``int``, ``float``, ``str`` or ``list`` (a list of numbers or strings). An
        int is accepted where a float is declared.
    low, high
        Bounds for numbers; ``low_open``/``high_open`` make them strict.
    choices
        The allowed values, for strings.
    file
        The value (a ``str``) is the path of a file the component reads: the file's content,
        not its path, then goes into the cell's id, so changing the file makes new cells.
    """

    default: Any
    help: str = ""
    type: type | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    file: bool = False

    @property
    def kind(self) -> type:
        """The parameter's value type."""
        if self.type is not None:
            return self.type
        if isinstance(self.default, bool):
            return bool
        if isinstance(self.default, int | float | str | list):
            return type(self.default)
        raise TypeError(f"cannot infer the type of default {self.default!r}; pass type=")

    def describe(self) -> str:
        """Return the type and range as text, e.g. ``float in (0, 1)``."""
        parts = [_TYPE_NAMES.get(self.kind, self.kind.__name__)]
        if self.low is not None or self.high is not None:
            lo = "-inf" if self.low is None else f"{self.low:g}"
            hi = "inf" if self.high is None else f"{self.high:g}"
            left = "(" if self.low_open or self.low is None else "["
            right = ")" if self.high_open or self.high is None else "]"
            parts.append(f"in {left}{lo}, {hi}{right}")
        if self.choices:
            parts.append("one of " + ", ".join(map(str, self.choices)))
        return " ".join(parts)

    def validate(self, value: Any, where: str) -> Any:
        """Return ``value`` coerced to the declared type, or raise UsageError saying why not."""
        kind = self.kind
        bad = UsageError(f"{where}={value!r} is not a valid value: expected {self.describe()}.")
        if kind is bool:
            if not isinstance(value, bool):
                raise bad
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad
            value = float(value)
            if not math.isfinite(value):
                raise bad
        elif kind is str:
            if not isinstance(value, str):
                raise bad
        elif kind is list and (
            not isinstance(value, list) or any(isinstance(v, list) for v in value)
        ):
            raise bad
        if isinstance(value, int | float) and not isinstance(value, bool):
            too_low = self.low is not None and (
                value <= self.low if self.low_open else value < self.low
            )
            too_high = self.high is not None and (
                value >= self.high if self.high_open else value > self.high
            )
            if too_low or too_high:
                raise bad
        if self.choices is not None and value not in self.choices:
            raise UsageError(
                f"{where}={value!r} is not a valid value: choose one of "
                + ", ".join(map(repr, self.choices))
                + "."
                + (did_you_mean(value, map(str, self.choices)) if isinstance(value, str) else "")
            )
        return value


def probability(default: float, help: str = "") -> Param:
    """A float strictly between 0 and 1."""
    return Param(default, help, float, 0.0, 1.0, low_open=True, high_open=True)


def positive(default: float | int, help: str = "") -> Param:
    """A number strictly greater than 0 (an int if the default is one)."""
    return Param(default, help, None, 0, None, low_open=True)


def validate_params(
    component: str, declared: dict[str, Param], given: dict[str, Any]
) -> dict[str, Any]:
    """Fill defaults and validate ``given`` against ``declared``; return the full dict."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        name = unknown[0]
        valid = ", ".join(declared) if declared else "none"
        raise UsageError(
            f"{component} has no parameter '{name}'.{did_you_mean(name, declared)} "
            f"Its parameters: {valid}."
        )
    out = {}
    for key, spec in declared.items():
        value = given.get(key, spec.default)
        out[key] = spec.validate(value, f"{component}[{key}]") if key in given else value
    return out
