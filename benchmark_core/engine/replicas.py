"""Which cells may train together as replicas: grouping a grid's cells into work items.

When an objective lists the task's kind in ``replica_kinds`` and the model provides ``vmap``,
cells with the same task, model, budget, metrics and objective parameters (up to the
objective's ``replica_params``, π say) form one work item, which the training loop
(:mod:`benchmark_core.engine.loop`) trains as one stacked model
(:class:`benchmark_core.engine.stack.ReplicaStack`). Each replica keeps its own
initialisation, data order, metrics and result file; the batch is recorded in each file's
metadata (``replicas``: the cell ids trained together).
"""

from __future__ import annotations

import json

from benchmark_core.engine.grid import Cell


def _key(cell: Cell) -> str | None:
    """Cells with the same key may train together; None: this cell trains alone."""
    objective = cell.objective.cls
    if (
        cell.skip_reason is not None
        or cell.task.cls.kind not in objective.replica_kinds
        or "vmap" not in cell.model.cls.provides
    ):
        return None
    own = {k: v for k, v in cell.objective.params.items() if k not in objective.replica_params}
    key = [
        [cell.task.name, cell.task.params],
        [cell.model.name, cell.model.params],
        [cell.objective.name, own],
        [[m.name, m.params] for m in cell.metrics],
        cell.budget.as_dict(),
        [str(e.plugin.distribution) for e in (cell.task.entry, cell.objective.entry)],
    ]
    return json.dumps(key, sort_keys=True, default=str)


def group_replicas(cells: list[Cell], most: int) -> list[list[Cell]]:
    """Split ``cells`` into work items: groups of up to ``most`` replicas, or single cells.

    Items keep the order of their first cells.
    """
    if most <= 1:
        return [[cell] for cell in cells]
    items: list[list[Cell]] = []
    open_groups: dict[str, list[Cell]] = {}
    for cell in cells:
        key = _key(cell)
        group = open_groups.get(key) if key is not None else None
        if group is not None and len(group) < most:
            group.append(cell)
            continue
        items.append([cell])
        if key is not None:
            open_groups[key] = items[-1]
    return items
