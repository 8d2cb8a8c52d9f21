"""The training loop, for one cell or for R replica cells trained together as one model.

The loop's bookkeeping always holds R replicas: losses shaped [R], one data permutation per
replica (from its cell's seed), one record per replica, and a divergence check that ends only
the replica whose loss went NaN or infinite. A lone cell is a stack of one: the objective
gets the model itself and the replica's batch, and returns a 0-d loss.

What a batch of replicas shares: the task (built once, fixed by its own seed), the objective
(one instance, its ``replica_params`` holding a tensor [R]) and, since the objective draws
for every replica at once, the stream of random numbers used while training (Q's samples, a
discriminator's initial weights). So a replica is repeatable when it runs in the same batch,
not bit-for-bit equal to its cell run alone; its initial model, data order and metrics are
the same as alone.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import torch

from benchmark_core.contract import Estimate, Model, Objective, Task
from benchmark_core.engine.grid import Cell
from benchmark_core.engine.record import CellRecord, Outcome, ProgressFn
from benchmark_core.engine.selection import Configured
from benchmark_core.engine.stack import ReplicaStack


def seed_everything(seed: int) -> None:
    """Seed every random source a cell may touch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class TaskCache:
    """Tasks built once per (name, parameters, device): their data is fixed by their own seed."""

    def __init__(self) -> None:
        self._tasks: dict[tuple[str, str, str], Task] = {}

    def get(self, conf: Configured, device: torch.device) -> Task:
        """The task for ``conf`` on ``device``, building it on first use."""
        key = (conf.name, json.dumps(conf.params, sort_keys=True, default=str), str(device))
        if key not in self._tasks:
            # A task must not depend on whatever state the global RNG is in.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                task = conf.cls(**conf.params)
            self._tasks[key] = task.to(device)
        return self._tasks[key]


def build(
    cells: list[Cell], task: Task, device: torch.device
) -> tuple[Model | ReplicaStack, list[Model], Objective]:
    """The trained model (a lone cell's own, or the replicas' stack), the per-cell models and
    the objective, set up.

    A lone cell keeps the order of random draws it always had: seed, model, objective, setup.
    Replicas: each model is built under its own cell's seed, exactly as alone; then the first
    cell's seed is set again before the objective is built and set up.
    """
    first, budget = cells[0], cells[0].budget
    models = []
    for cell in cells:
        seed_everything(cell.seed)
        models.append(cell.model.cls(task, **cell.model.params).to(device))
    if len(cells) == 1:
        objective = first.objective.cls(**first.objective.params)
        objective.setup(models[0], task, budget)
        return models[0], models, objective
    seed_everything(first.seed)
    objective = first.objective.cls(**first.objective.params)
    stack = ReplicaStack(models).to(device)
    for name in sorted(first.objective.cls.replica_params):
        # The declared mechanism (see Objective.replica_params): one value per replica, [R].
        values = [cell.objective.params[name] for cell in cells]
        setattr(objective, name, torch.tensor(values, device=device))
    objective.setup(stack, task, budget)
    return stack, models, objective


class Batches:
    """Each replica's own data order: a permutation per replica from its cell's seed, taken
    ``batch_size`` rows at a time and drawn afresh when the next batch would not fit."""

    def __init__(self, data: torch.Tensor, seeds: list[int], batch_size: int) -> None:
        self.data, self.n = data, data.shape[0]
        self.size = min(batch_size, self.n)
        self.orders = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.perm, self.cursor = self._permutations(), 0

    def _permutations(self) -> torch.Tensor:
        perms = [torch.randperm(self.n, generator=g) for g in self.orders]
        return torch.stack(perms).to(self.data.device)

    def next(self) -> torch.Tensor:
        """The next batch of every replica, [R, B, ...]."""
        if self.cursor + self.size > self.n:
            self.perm, self.cursor = self._permutations(), 0
        idx = self.perm[:, self.cursor : self.cursor + self.size]
        self.cursor += self.size
        return self.data[idx]


def _check_loss(loss: torch.Tensor, cells: list[Cell]) -> None:
    want = () if len(cells) == 1 else (len(cells),)
    if tuple(loss.shape) != want:
        name = cells[0].objective.name
        need = (
            "a lone cell's loss must be 0-d"
            if not want
            else f"it must return one loss per replica, shape [{len(cells)}]"
        )
        raise ValueError(f"{name}.step returned a loss of shape {tuple(loss.shape)}: {need}")


def train(
    cells: list[Cell],
    runs: list[CellRecord],
    done: dict[int, Outcome],
    device: torch.device,
    cache: TaskCache,
    progress: ProgressFn | None,
) -> None:
    """Train ``cells`` together (one cell: alone), recording into ``runs``.

    A replica whose windowed loss is not finite ends ``diverged`` in ``done``; the others go
    on. Exceptions (the time limit included) propagate: they end every replica still running.
    """
    budget = cells[0].budget
    task = cache.get(cells[0].task, device)
    model, models, objective = build(cells, task, device)
    metrics = [[(m, m.cls(**m.params)) for m in cell.metrics] for cell in cells]
    eval_steps = set(budget.eval_steps())
    lone = len(cells) == 1

    def evaluate(step: int) -> None:
        if isinstance(model, ReplicaStack):
            model.write_back()
        for r, run in enumerate(runs):
            if r not in done:
                run.evaluate(step, models[r], task, objective, metrics[r])

    batches = Batches(task.train, [cell.seed for cell in cells], budget.batch_size)
    loss_sum, in_window = torch.zeros(len(cells), device=device), 0
    if 0 in eval_steps:
        evaluate(0)
    for step in range(1, budget.steps + 1):
        batch = batches.next()
        loss = objective.step(batch[0] if lone else batch, step - 1)
        _check_loss(loss, cells)
        loss_sum += loss.detach()
        in_window += 1
        if step % budget.log_every == 0 or step in eval_steps:
            means = (loss_sum / in_window).tolist()  # the one sync per window
            _log_window(step, means, runs, done)
            if len(done) == len(runs):
                return
            loss_sum.zero_()
            in_window = 0
            if progress is not None:
                progress(step, budget.steps)
            runs[0].check_time()
        if step in eval_steps:
            evaluate(step)


def _log_window(
    step: int, means: list[float], runs: list[CellRecord], done: dict[int, Outcome]
) -> None:
    """Record each running replica's mean loss over the window, or end it as diverged."""
    for r, mean in enumerate(means):
        if r in done:
            continue
        if not math.isfinite(mean):
            done[r] = runs[r].finish("diverged", f"training loss became {mean} near step {step}")
        else:
            runs[r].record(step, "train_loss", None, Estimate(mean))
