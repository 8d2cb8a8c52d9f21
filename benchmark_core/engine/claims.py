"""Claims: the cells each one needs, one merged grid for them all, and their verdicts.

A claim's grid is built by the ordinary selection and grid machinery, so its cells are the
very cells ``gbench run`` would make (same ids): cells already in the results folder are
reused, whichever command ran them. A cell two claims share is run once, with the union of
the metrics they ask for. Checking reads each cell's final evaluation, relabels it as the
claim's own selections write it, and hands the table to the claim's ``check``.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from benchmark_core.contract.claim import INCONCLUSIVE, ClaimGrid, ClaimResults, Verdict
from benchmark_core.contract.errors import ResultsError, UsageError, did_you_mean
from benchmark_core.engine.grid import Cell, build_grid
from benchmark_core.engine.selection import parse_seeds, parse_selection
from benchmark_core.registry import Entry, Registry
from benchmark_core.results.store import read_file


@dataclass(frozen=True)
class ClaimPlan:
    """A claim and the cells it needs at one budget."""

    entry: Entry
    budget: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class ClaimCheck:
    """What checking a claim found: its verdict and how many of its cells ended ok."""

    plan: ClaimPlan
    verdict: Verdict
    cells_ok: int


def select_claims(registry: Registry, names: Sequence[str]) -> list[Entry]:
    """The claims named (``all`` or none: every registered claim), in name order for ``all``."""
    table = registry.of_kind("claim")
    if not names or list(names) == ["all"]:
        return [table[name] for name in sorted(table)]
    chosen = []
    for name in names:
        if name == "all":
            raise UsageError("'all' selects every claim: give it alone, or list claims by name.")
        if name not in table:
            raise UsageError(
                f"unknown claim '{name}'.{did_you_mean(name, table)} "
                f"Valid claims: {', '.join(sorted(table)) or 'none installed'}."
            )
        if table[name] not in chosen:
            chosen.append(table[name])
    return chosen


def grid_cells(registry: Registry, grid: ClaimGrid, budget: str) -> list[Cell]:
    """The cells of one ClaimGrid (its own budget if it names one, else ``budget``)."""
    models = None if grid.models is None else parse_selection(grid.models, "models")
    return build_grid(
        registry,
        parse_selection(grid.objectives, "objectives"),
        parse_selection(grid.tasks, "tasks"),
        models,
        parse_selection(grid.metrics, "metrics"),
        parse_seeds(grid.seeds),
        grid.budget or budget,
    )


def plan_claim(registry: Registry, entry: Entry, budget: str) -> ClaimPlan:
    """Build a claim's cells; a grid that does not parse or validate is a UsageError that
    names the claim and its plugin."""
    cells: list[Cell] = []
    for grid in entry.cls.grids:
        try:
            cells += grid_cells(registry, grid, budget)
        except UsageError as exc:
            raise UsageError(
                f"claim '{entry.name}' (plugin '{entry.plugin.name}') needs a grid that "
                f"cannot be built here: {exc}"
            ) from None
    return ClaimPlan(entry, budget, tuple(cells))


def merged_cells(plans: Iterable[ClaimPlan]) -> list[Cell]:
    """Every cell of the plans once, in first-seen order, each with the union of the metrics
    that the claims sharing it ask for (so that no claim's run overwrites another's)."""
    by_id: dict[str, Cell] = {}
    for plan in plans:
        for cell in plan.cells:
            seen = by_id.get(cell.cell_id)
            if seen is None:
                by_id[cell.cell_id] = cell
                continue
            names = {m.name for m in seen.metrics}
            extra = tuple(m for m in cell.metrics if m.name not in names)
            skips = tuple(s for s in cell.metric_skips if s not in seen.metric_skips)
            if extra or skips:
                by_id[cell.cell_id] = replace(
                    seen, metrics=seen.metrics + extra, metric_skips=seen.metric_skips + skips
                )
    return list(by_id.values())


def claim_results(cells: Sequence[Cell], frame: pd.DataFrame) -> tuple[ClaimResults, int]:
    """A claim's results from a results table holding (at least) its cells' rows.

    Returns the ClaimResults (final rows of the cells that ended ok, labelled as the claim's
    grids label them; the others named in ``missing``) and the number of cells that ended ok.
    """
    labels = pd.DataFrame(
        [
            (c.cell_id, c.task.label, c.model.label, c.objective.label, c.seed)
            for c in cells
            if c.skip_reason is None
        ],
        columns=["cell_id", "task", "model", "objective", "seed"],
    ).drop_duplicates()
    rows = frame[frame["cell_id"].isin(set(labels["cell_id"]))]
    status = rows.groupby("cell_id")["status"].first() if len(rows) else pd.Series(dtype=str)
    ok_ids = set(status[status == "ok"].index)
    rows = rows[rows["cell_id"].isin(ok_ids)]
    final = rows[rows["step"] == rows.groupby("cell_id")["step"].transform("max")]
    final = final[["cell_id", "metric", "value"]].merge(labels, on="cell_id")
    missing = [
        f"{c.describe()} ({status.get(c.cell_id, 'not run')})"
        for c in cells
        if c.skip_reason is None and c.cell_id not in ok_ids
    ]
    missing += [f"{c.describe()} (skipped: {c.skip_reason})" for c in cells if c.skip_reason]
    return ClaimResults(final, tuple(dict.fromkeys(missing))), len(ok_ids)


def read_cells(cells: Sequence[Cell], out_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """The rows of each cell's file in ``out_dir`` (absent files are simply not there) and the
    problems met reading them."""
    frames, problems = [], []
    for cell_id in dict.fromkeys(c.cell_id for c in cells):
        path = out_dir / f"{cell_id}.parquet"
        if not path.exists():
            continue
        try:
            frames.append(read_file(path)[0])
        except ResultsError as exc:
            problems.append(str(exc))
    columns = ["cell_id", "status", "step", "metric", "value"]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return frame, problems


def check_claim(plan: ClaimPlan, frame: pd.DataFrame) -> ClaimCheck:
    """Run the claim's check on its cells' rows in ``frame``.

    A check that raises does not decide anything: its verdict is inconclusive, with the error
    in the notes (the claim's plugin has a bug to fix).
    """
    results, ok = claim_results(plan.cells, frame)
    try:
        verdict = plan.entry.cls().check(results)
        if not isinstance(verdict, Verdict):
            raise TypeError(f"check() returned {type(verdict).__name__}, not a Verdict")
    except Exception as exc:
        where = traceback.format_exc(limit=-1).strip().splitlines()
        note = f"the check raised {type(exc).__name__}: {exc} ({where[1].strip()})"
        verdict = Verdict(INCONCLUSIVE, (), (note,))
    return ClaimCheck(plan, verdict, ok)


def claims_in(registry: Registry, frame: pd.DataFrame) -> tuple[list[ClaimCheck], list[str]]:
    """The claims whose every cell is in a results table, checked (one per budget found);
    and a note for each claim whose cells are only partly there."""
    checks, partial = [], []
    present = set(frame["cell_id"]) if "cell_id" in frame else set()
    budgets = sorted(frame["budget"].dropna().unique()) if "budget" in frame else []
    for entry in select_claims(registry, []):
        for budget in budgets:
            try:
                plan = plan_claim(registry, entry, budget)
            except UsageError:
                continue  # a grid this installation cannot build: not this report's business
            ids = {c.cell_id for c in plan.cells if c.skip_reason is None}
            if ids and ids <= present:
                checks.append(check_claim(plan, frame))
            elif ids & present:
                partial.append(
                    f"{entry.name} ({budget}): {len(ids & present)} of its {len(ids)} cells "
                    f"are here; run `gbench claims {entry.name} --budget {budget}` for the rest"
                )
    return checks, partial
