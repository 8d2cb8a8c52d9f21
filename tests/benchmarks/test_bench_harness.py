"""Hot paths of the harness (run with ``pytest tests/benchmarks --benchmark-only``)."""

import torch
from conftest import grid, registry_with

from benchmark_core.components import Objective
from benchmark_core.executors import run_grid
from benchmark_core.runner import TaskCache, run_cell

CPU = torch.device("cpu")


class Noop(Objective):
    """A trivial objective: the cost of a cell is then the harness's own."""

    name = "noop"

    def setup(self, model, task, budget):
        self.zero = torch.zeros(())

    def step(self, batch, step):
        return self.zero


def test_ml_training_step_gaussian(benchmark):
    from benchmark_core.budgets import PROFILES
    from plugins.models.gaussian import FullGaussian
    from plugins.objectives.ml import MaximumLikelihood
    from plugins.tasks.gaussian import GaussianTask

    task = GaussianTask()
    model = FullGaussian(task)
    objective = MaximumLikelihood()
    objective.setup(model, task, PROFILES["quick"])
    batch = task.train[:256]
    benchmark(objective.step, batch, 0)


def test_harness_overhead_per_cell(benchmark, tmp_path):
    """A grid of 20 trivial cells (1 step, no metrics), written to disk: divide by 20."""
    reg = registry_with(Noop)
    cells = grid(reg, objectives="noop", metrics="moments", seeds="20")
    cells = [
        c.__class__(
            **{
                **c.__dict__,
                "budget": c.budget.__class__(
                    **{**c.budget.as_dict(), "steps": 1, "checkpoints": 1, "log_every": 1}
                ),
            }
        )
        for c in cells
    ]
    counter = iter(range(10**6))
    benchmark(lambda: run_grid(cells, tmp_path / str(next(counter)), CPU, force=True))


def test_run_cell_smoke_ml_gaussian(benchmark):
    [cell] = grid(registry_with())
    cache = TaskCache()
    benchmark(run_cell, cell, CPU, task_cache=cache)
