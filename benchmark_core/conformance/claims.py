"""Conformance checks of a claim's declarations (run by the suite beside the components').

- ``declarations``: a name, a one-line description, a one-sentence statement, a source, and
  grids that are `ClaimGrid` values;
- ``grid``: each grid is a selection that builds here (names, parameters, seeds, budget), at
  every budget, with at least one cell that is not skipped;
- ``verdict``: on a small synthetic results table (every cell of the grid at the smoke budget,
  each metric's name holding a value) ``check`` returns a `Verdict` without raising, and on an
  empty table it does not say ``reproduced`` (no claim passes by default).
"""

from __future__ import annotations

import functools
from typing import Any

from benchmark_core.conformance.base import Check, Workbench, fail
from benchmark_core.contract.budgets import PROFILES
from benchmark_core.contract.claim import REPRODUCED, Claim, ClaimGrid, ClaimResults, Verdict
from benchmark_core.contract.errors import UsageError
from benchmark_core.registry import Entry


def claim_checks(entry: Entry, bench: Workbench) -> list[Check]:
    """The checks of one registered claim."""

    def make(name: str, fn: Any) -> Check:
        return Check(entry, name, functools.partial(fn, entry, bench))

    return [
        make("declarations", check_claim_declarations),
        make("grid", check_claim_grid),
        make("verdict", check_claim_verdict),
    ]


def _one_line(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and "\n" not in value.strip()


def check_claim_declarations(entry: Entry, bench: Workbench) -> None:
    """Name, description, statement, source and grids are declared and well formed."""
    cls = entry.cls
    for attr in ("description", "statement", "source"):
        if not _one_line(getattr(cls, attr, None)):
            raise fail(entry, attr, "must be one non-empty line")
    grids = cls.grids
    if not isinstance(grids, tuple) or not grids:
        raise fail(entry, "grids", "must be a non-empty tuple of ClaimGrid")
    for grid in grids:
        if not isinstance(grid, ClaimGrid):
            raise fail(entry, "grids", f"{grid!r} is not a ClaimGrid")
    if cls.check is Claim.check:
        raise fail(entry, "check", "is not implemented")


def _plan(entry: Entry, bench: Workbench, budget: str) -> Any:
    from benchmark_core.engine.claims import plan_claim

    try:
        return plan_claim(bench.registry, entry, budget)
    except UsageError as exc:
        raise fail(entry, "grids", str(exc)) from None


def check_claim_grid(entry: Entry, bench: Workbench) -> None:
    """Every grid builds at every budget, with at least one cell that can run."""
    for budget in PROFILES:
        plan = _plan(entry, bench, budget)
        if not any(c.skip_reason is None for c in plan.cells):
            reasons = sorted({c.skip_reason for c in plan.cells if c.skip_reason})
            raise fail(
                entry, "grids", f"no cell can run at budget {budget}: {'; '.join(reasons[:3])}"
            )


def _synthetic_frame(plan: Any) -> Any:
    import pandas as pd

    rows = []
    for i, cell in enumerate(c for c in plan.cells if c.skip_reason is None):
        for metric in cell.metrics:
            rows.append(
                {
                    "cell_id": cell.cell_id,
                    "status": "ok",
                    "step": cell.budget.steps,
                    "metric": metric.name,
                    "value": 0.5 + 0.01 * (i % 3),
                }
            )
    return pd.DataFrame(rows, columns=["cell_id", "status", "step", "metric", "value"])


def check_claim_verdict(entry: Entry, bench: Workbench) -> None:
    """``check`` returns a Verdict on a synthetic table, and no pass on an empty one."""
    from benchmark_core.engine.claims import claim_results

    plan = _plan(entry, bench, "smoke")
    for label, frame in (("a synthetic", _synthetic_frame(plan)), ("an empty", None)):
        if frame is None:
            results = ClaimResults.from_rows([], missing=["every cell (none has run)"])
        else:
            results = claim_results(plan.cells, frame)[0]
        try:
            verdict = entry.cls().check(results)
        except Exception as exc:
            raise fail(
                entry, "check", f"raised {type(exc).__name__}: {exc} on {label} results table"
            ) from exc
        if not isinstance(verdict, Verdict):
            raise fail(entry, "check", f"returned {type(verdict).__name__}, not a Verdict")
        if frame is None and verdict.outcome == REPRODUCED:
            raise fail(
                entry,
                "check",
                "says 'reproduced' on an empty results table: a claim must never pass by "
                "default (build the verdict with Verdict.of(evidence))",
            )
