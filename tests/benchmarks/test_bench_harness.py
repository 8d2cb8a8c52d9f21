"""Hot paths of the harness and the training steps (``pytest tests/benchmarks --benchmark-only``).

The same workloads, as a table of ratios against their targets: ``tests/benchmarks/ratios.py``.
"""

import itertools

import pytest
import torch
from helpers import registry_with
from speed import Noop, batches, build, cells, grid_seconds, trivial_cells

from benchmark_core.engine.loop import build as build_work
from benchmark_core.engine.runner import TaskCache, run_cell
from benchmark_core.registry import load_registry

CPU = torch.device("cpu")
REGISTRY = load_registry({"GBENCH_LOAD_PLUGINS": ""})
VECTOR_OBJECTIVES = ["ml", "reverse_kl", "jspi_exact", "jspi"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what the runner uses for the built-in tasks
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("objective", VECTOR_OBJECTIVES)
def test_training_step_gaussian(benchmark, objective):
    [cell] = cells(REGISTRY, objective, "gaussian", "gaussian")
    task, _, obj = build(cell)
    data = itertools.cycle(batches(task, cell, 8))
    benchmark(lambda: obj.step(next(data), 0))


@pytest.mark.parametrize("objective", VECTOR_OBJECTIVES)
def test_32_replicas_step_gaussian(benchmark, objective):
    group = cells(REGISTRY, objective, "gaussian", "isotropic_gaussian", seeds="32")
    first = group[0]
    task, _, _ = build(first)
    _, _, obj = build_work(group, task, CPU)  # as the engine builds a replica batch
    data = itertools.cycle(batches(task, first, 4, replicas=32))
    benchmark(lambda: obj.step(next(data), 0))


def test_harness_overhead_per_cell(benchmark, tmp_path):
    """A grid of 20 trivial cells (1 step, no metrics), written to disk: divide by 20."""
    grid = trivial_cells(registry_with(Noop), 20)
    counter = itertools.count()
    benchmark(lambda: grid_seconds(grid, tmp_path / str(next(counter))))


def test_run_cell_smoke_ml_gaussian(benchmark):
    [cell] = cells(REGISTRY, "ml", "gaussian", "isotropic_gaussian", budget="smoke")
    cache = TaskCache()
    benchmark(run_cell, cell, CPU, task_cache=cache)
