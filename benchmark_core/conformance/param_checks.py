"""Conformance checks of a component's declared parameters: each numeric one bounded, every
default valid, values the declaration rules out refused, ``all_sweep`` valid."""

from __future__ import annotations

import math
from typing import Any

from benchmark_core.conformance.base import Workbench, fail, short
from benchmark_core.contract.errors import UsageError
from benchmark_core.contract.params import Param
from benchmark_core.registry import Entry


def check_bounds_declared(entry: Entry) -> None:
    """Each int/float parameter declares its valid range: ``renyi[alpha=-1]`` must be refused
    at selection, not train to nonsense."""
    for name, spec in entry.cls.param_spec.items():
        if spec.kind not in (int, float) or isinstance(spec.default, bool):
            continue
        if spec.low is None and spec.high is None and not spec.choices:
            raise fail(
                entry,
                f"param_spec[{name!r}]",
                f'declare the valid range, e.g. Param({spec.default!r}, "...", low=0) '
                "(low and/or high, or choices): a numeric parameter without bounds accepts any "
                "value, however meaningless",
            )


def _bad_values(spec: Param) -> list[Any]:
    """Values the declaration says must be refused."""
    kind = spec.kind
    bad: list[Any] = []
    if kind in (int, float):
        step = 1 if kind is int else max(abs(spec.low or 0), abs(spec.high or 0), 1) * 1e-3
        if spec.low is not None:
            bad.append(spec.low if spec.low_open else kind(spec.low - step))
        if spec.high is not None:
            bad.append(spec.high if spec.high_open else kind(spec.high + step))
        bad.append("not-a-number")
        if kind is int:
            bad.append(float(spec.default) + 0.5)
        else:
            bad.append(math.inf)
    elif kind is bool:
        bad += ["yes", 2]
    elif kind is str:
        bad.append(7)
        if spec.choices:
            bad.append("".join(sorted(map(str, spec.choices))) + "_not_a_choice")
    elif kind is list:
        bad += ["not-a-list", [[1, 2]]]
    if spec.choices and kind in (int, float):
        bad.append(kind(max(spec.choices) + 1))
    return bad


def check_params(entry: Entry, bench: Workbench) -> None:
    """Defaults validate; bad values and unknown names are refused; all_sweep is valid."""
    cls = entry.cls
    for name, spec in cls.param_spec.items():
        decl = f"param_spec[{name!r}] = {spec.describe()}, default {spec.default!r}"
        try:
            spec.validate(spec.default, f"{cls.name}[{name}]")
        except UsageError as exc:
            raise fail(
                entry, decl, f"the default is refused by its own declaration ({exc})"
            ) from None
        for value in _bad_values(spec):
            try:
                cls.validate({name: value})
            except UsageError:
                continue
            raise fail(entry, decl, f"the invalid value {short(value)} was accepted")
    try:
        cls.validate({"no_such_parameter_xyz": 1})
    except UsageError:
        pass
    else:
        raise fail(entry, "param_spec", "an unknown parameter name was accepted")
    if cls.validate({}) != {k: s.default for k, s in cls.param_spec.items()}:
        raise fail(entry, "param_spec", "validate({}) does not return the defaults")
    for name, values in cls.all_sweep.items():
        if name not in cls.param_spec:
            raise fail(entry, f"all_sweep[{name!r}]", "is not a declared parameter")
        for value in values:
            try:
                cls.validate({name: value})
            except UsageError as exc:
                raise fail(entry, f"all_sweep[{name!r}]", str(exc)) from None
    if entry.kind in ("objective", "metric"):
        obj = cls()
        for name, spec in cls.param_spec.items():
            if getattr(obj, name, object()) != spec.default:
                raise fail(entry, f"param_spec[{name!r}]", "the default is not set as an attribute")
