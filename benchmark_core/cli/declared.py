"""What the loaded plugins declare for reports, read from the registry: each task's headline
metrics and frontier reference, and the metrics' quality–coverage pairs. A malformed
declaration is left out (it draws nothing) rather than failing a report."""

from __future__ import annotations

from typing import Any


def headline_metrics(registry: Any) -> dict[str, tuple[str, ...]]:
    """Task name -> the headline metrics it declares (:attr:`Task.headline_metrics`)."""
    out = {}
    for name, entry in registry.of_kind("task").items():
        declared = getattr(entry.cls, "headline_metrics", ()) or ()
        if isinstance(declared, list | tuple) and all(isinstance(m, str) for m in declared):
            out[name] = tuple(declared)
    return out


def frontier_pairs(registry: Any) -> list[tuple[str, str]]:
    """The ``(coverage, quality)`` pairs that the loaded metrics declare, in registry order."""
    pairs = []
    for entry in registry.of_kind("metric").values():
        frontier = getattr(entry.cls, "frontier", None) or {}
        if isinstance(frontier, dict):  # a malformed declaration draws nothing rather than fail
            pairs += [(str(c), str(q)) for q, c in frontier.items()]
    return list(dict.fromkeys(pairs))


def frontier_references(registry: Any, directions: dict[str, str]) -> dict[str, Any]:
    """Task name -> the :class:`~benchmark_core.reports.reference_curve.Reference` it declares
    (:attr:`Task.frontier_reference`, :attr:`Task.frontier_select_by`); tasks without one are
    left out."""
    from benchmark_core.reports.reference_curve import Reference

    out = {}
    for name, entry in registry.of_kind("task").items():
        objective = getattr(entry.cls, "frontier_reference", "") or ""
        select_by = getattr(entry.cls, "frontier_select_by", "") or ""
        if isinstance(objective, str) and objective and isinstance(select_by, str):
            direction = "max" if directions.get(select_by) == "max" else "min"
            out[name] = Reference(objective, select_by, direction)
    return out
