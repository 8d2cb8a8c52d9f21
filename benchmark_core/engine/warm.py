"""Warm starts: cells that start from another cell's trained model.

``B[init=A]`` trains objective B from the final model of the cell of objective A with the
same task, model (and parameters), seed and metrics; the budget is the source objective's
own for that profile. ``init`` is a parameter the engine owns on every objective: its value
is an objective selection, quoted when it has brackets (``init="A[lr=0.01]"``), a list of
them sweeps (``init=[A,"A[lr=0.01]"]``), and a source may itself be warm-started.

The source is an ordinary cell of the grid, added when the selection does not list it: it
has its own results and id, runs once however many cells start from it, and keeps its final
model as a checkpoint (:mod:`benchmark_core.results.checkpoints`). A warm-started cell's id
includes its source's id, and its step 0 evaluation is the source's final model.
`run_waves` (:mod:`benchmark_core.engine.waves`) runs sources before the cells that need them
and hands each dependent its source's checkpoint.

This module also holds the two calls the training loop makes: `start_from_source` after the
model is built, and `keep_state` at each evaluation step, whose states `packed` serialises
into the outcome (workers never touch the results folder; the driver writes the file).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from benchmark_core.contract import incompatibility, model_incompatibility
from benchmark_core.contract.budgets import budget_for
from benchmark_core.contract.errors import UsageError
from benchmark_core.engine.selection import Configured, expand, parse_selection
from benchmark_core.registry import Registry
from benchmark_core.results import checkpoints

if TYPE_CHECKING:  # the grid calls resolve_warm_starts: Cell only as a type here
    from benchmark_core.engine.grid import Cell

INIT = "init"
#: Warm starts may chain (a fine-tune of a fine-tune), but not without end.
MAX_DEPTH = 4


def _sources(cell: Cell, registry: Registry) -> list[Configured]:
    text = cell.objective.given[INIT]
    if not isinstance(text, str):
        raise UsageError(
            f"{cell.objective.name}[init={text!r}]: init names the objective to start from, "
            f'e.g. init=NAME or init="NAME[param=value]".'
        )
    try:
        specs = parse_selection(text, "objectives")
    except UsageError as exc:
        raise UsageError(f"{cell.objective.name}[init={text!r}]: {exc}") from None
    if specs is None:
        raise UsageError(f"{cell.objective.name}[init=all]: name the objective to start from.")
    return expand("objective", specs, registry)


def _resolve(cell: Cell, registry: Registry, depth: int) -> tuple[list[Cell], list[Cell]]:
    """The cells needed first (sources, theirs first), and the cell with each source resolved."""
    if INIT not in cell.objective.given:
        return [], [cell]
    if depth >= MAX_DEPTH:
        raise UsageError(
            f"{cell.objective.label}: warm starts nest more than {MAX_DEPTH} deep; "
            f"start from a shallower chain."
        )
    needed: list[Cell] = []
    versions: list[Cell] = []
    task, model = cell.task, cell.model
    for conf in _sources(cell, registry):
        reason = model_incompatibility(model.cls, task.cls) or incompatibility(
            conf.cls, task.cls, model.cls
        )
        budget = budget_for(cell.budget.name, task.cls, conf.cls)
        source = type(cell)(task, model, conf, cell.metrics, cell.seed, budget, reason)
        source = replace(source, metric_skips=cell.metric_skips, checkpoints="final")
        before, sources = _resolve(source, registry, depth + 1)
        needed += before + sources
        for src in sources:
            skip = cell.skip_reason
            if skip is None and src.skip_reason is not None:
                skip = f"its warm-start source {src.objective.label} is skipped: {src.skip_reason}"
            given = {**cell.objective.given, INIT: src.objective.label}
            objective = Configured(cell.objective.entry, cell.objective.params, given)
            versions.append(replace(cell, objective=objective, init=src, skip_reason=skip))
    return needed, versions


def resolve_warm_starts(cells: list[Cell], registry: Registry) -> list[Cell]:
    """Resolve every ``init``: add the source cells (once each, before their first dependent).

    Raises UsageError when an ``init`` does not name a valid objective selection.
    """
    if not any(INIT in cell.objective.given for cell in cells):
        return cells
    out: dict[str, Cell] = {}
    for cell in cells:
        needed, versions = _resolve(cell, registry, 0)
        for resolved in needed + versions:
            kept = out.setdefault(resolved.cell_id, resolved)
            if resolved.checkpoints == "final" and kept.checkpoints == "none":
                out[resolved.cell_id] = replace(kept, checkpoints="final")
    check_warm_starts(list(out.values()))
    return list(out.values())


def check_warm_starts(cells: list[Cell]) -> None:
    """Refuse, before anything runs, a warm start whose source is not in the grid or whose
    task or model (with parameters) differs from its dependent's."""
    ids = {cell.cell_id for cell in cells}
    for cell in cells:
        source = cell.init
        if source is None:
            continue
        if source.cell_id not in ids:
            raise UsageError(
                f"{cell.describe()} starts from cell {source.cell_id}, which is not in the grid."
            )
        for role in ("task", "model"):
            mine, theirs = getattr(cell, role), getattr(source, role)
            if (mine.name, mine.params) != (theirs.name, theirs.params):
                raise UsageError(
                    f"{cell.describe()} starts from {source.describe()}: their {role}s differ "
                    f"({mine.label} vs {theirs.label}); a warm start needs the {role} and "
                    f"parameters its source was trained with."
                )


def with_checkpoints(cells: list[Cell], mode: str) -> list[Cell]:
    """Keep model states as ``mode`` asks (none, final or all); warm-start sources keep at
    least their final state."""
    if mode not in checkpoints.MODES:
        raise UsageError(f"--checkpoints {mode!r}: choose {', '.join(checkpoints.MODES)}.")
    rank = checkpoints.MODES.index
    return [
        cell if rank(cell.checkpoints) >= rank(mode) else replace(cell, checkpoints=mode)
        for cell in cells
    ]


def depth(cell: Cell) -> int:
    """How many warm starts lie behind the cell (0 for a cold start)."""
    return 0 if cell.init is None else 1 + depth(cell.init)


def dependency_notes(cells: list[Cell]) -> list[str]:
    """One line per warm-started cell naming the cell it starts from."""
    return [
        f"{cell.cell_id} starts from {cell.init.cell_id} ({cell.init.objective.label}, "
        f"seed {cell.seed}): {cell.describe()}"
        for cell in cells
        if cell.init is not None
    ]


# The training loop's calls.


def start_from_source(cell: Cell, model: nn.Module) -> None:
    """Load a warm start's source model into ``model``; nothing for a cold start."""
    if cell.init is None:
        return
    if cell.init_state is None:
        raise RuntimeError(
            f"cell {cell.cell_id} starts from cell {cell.init.cell_id}, but no checkpoint was "
            f"attached: warm-started cells run through engine.waves.run_waves"
        )
    name, data = cell.init_state
    states = checkpoints.unpack(data, name)
    checkpoints.load_into(model, states[max(states)], name)


def keep_state(cell: Cell, step: int, model: nn.Module, kept: dict[int, dict]) -> None:
    """At an evaluation step, keep the model's state when the cell's checkpoint mode asks."""
    if cell.checkpoints == "all" or (cell.checkpoints == "final" and step == cell.budget.steps):
        kept[step] = checkpoints.capture(model)


def packed(cell: Cell, kept: dict[int, dict[str, torch.Tensor]], status: str) -> bytes | None:
    """The kept states as checkpoint bytes, for a cell that trained to the end and kept any
    (``ok``, or ``metric_error``: its model is sound, and `gbench evaluate` can retry the
    metric that failed)."""
    trained = status in ("ok", "metric_error")
    return checkpoints.pack(kept, cell.cell_id) if kept and trained else None
