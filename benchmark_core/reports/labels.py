"""Reading component labels and parameters: ``name[a=0.5,lr=0.001]`` and the params JSON.

Labels are written by the harness as ``name[key=value,...]``; these helpers take them apart
for plots and tables without knowing any particular component.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

#: Parameter names that read better as their symbol on an axis or beside a point.
SYMBOLS = {
    "pi": "π",
    "eps": "ε",
    "epsilon": "ε",
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "lambda": "λ",
    "lam": "λ",
    "tau": "τ",
    "sigma": "σ",
    "temperature": "T",
}
#: Where a bare parameter name is looked for, in this order.
ROLES = ("objective", "model", "task")
_MISSING = object()


def natural_key(label: str) -> tuple[tuple[int, Any], ...]:
    """Sort key that orders numbers inside labels by value: ``a=0.9`` before ``a=0.99``.

    Parameters
    ----------
    label : str
        Any label.

    Returns
    -------
    tuple
        Comparable pieces: numbers as floats, the rest as strings.
    """
    parts = re.split(r"(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)", str(label))
    return tuple((1, float(p)) if i % 2 else (0, p) for i, p in enumerate(parts) if p)


def split_items(inner: str) -> list[str]:
    """Split ``a=1,b=[2,3]`` at the commas that are not inside brackets.

    Parameters
    ----------
    inner : str
        The text between a label's outer brackets.

    Returns
    -------
    list of str
        The ``key=value`` items, stripped, empty ones dropped.
    """
    items, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += ch in "[({"
        depth -= ch in "])}"
        if ch == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    return [s.strip() for s in items if s.strip()]


def strip_param(label: str, name: str) -> str:
    """Remove ``name=value`` from a ``component[k=v,...]`` label.

    Parameters
    ----------
    label : str
        A component label such as ``"name[a=0.5,lr=0.001]"``.
    name : str
        The parameter to remove.

    Returns
    -------
    str
        ``"name[lr=0.001]"`` for the example; the label unchanged if it has no such parameter.
    """
    match = re.fullmatch(r"([^\[]*)\[(.*)\]", label.strip())
    if not match:
        return label
    kept = [s for s in split_items(match.group(2)) if s.split("=", 1)[0].strip() != name]
    return match.group(1) + (f"[{','.join(kept)}]" if kept else "")


def param_value(params: str | Mapping[str, Any], param: str) -> tuple[str | None, Any]:
    """Find a parameter in a cell's params.

    Parameters
    ----------
    params : str or mapping
        The ``params`` column: JSON ``{"task": {...}, "model": {...}, "objective": {...}}``.
    param : str
        ``"lr"`` (looked up in the objective, then the model, then the task) or a qualified
        ``"objective.lr"``.

    Returns
    -------
    (str or None, object)
        The role it was found in and its value, or ``(None, None)`` if the cell has no such
        parameter.
    """
    p = json.loads(params) if isinstance(params, str) else dict(params)
    role, _, name = param.rpartition(".")
    for r in (role,) if role else ROLES:
        value = (p.get(r) or {}).get(name, _MISSING)
        if value is not _MISSING:
            return r, value
    return None, None


def param_note(label: str) -> str:
    """The parameters of a label with symbols for known names, for notes beside points.

    Parameters
    ----------
    label : str
        E.g. ``"name[a=0.5]"``.

    Returns
    -------
    str
        E.g. ``"π=0.5"``; empty for a label without parameters.
    """
    match = re.fullmatch(r"[^\[]*\[(.*)\]", label.strip())
    if not match:
        return ""
    items = [s.split("=", 1) for s in split_items(match.group(1))]
    return ", ".join(f"{SYMBOLS.get(k.strip(), k.strip())}={v[0]}" if v else k for k, *v in items)
