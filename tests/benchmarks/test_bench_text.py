"""The text task's hot paths (run with ``pytest tests/benchmarks --benchmark-only``).

One thread, as a gbench cell runs the text task (``TextTask.max_threads``). Other processes
on the machine distort the timings: compare runs made side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import torch
from gbench_plugins.metrics.likelihood import NLLOracle, NLLTest
from gbench_plugins.objectives.ml import MaximumLikelihood
from gbench_plugins.tasks.text import TextTask
from threadpoolctl import threadpool_limits
from workloads import BATCH, text_sampling_and_scoring, text_setup

from benchmark_core.contract import EvalContext
from benchmark_core.contract.budgets import budget_for

N = 10_000


@pytest.fixture(scope="module")
def text() -> Iterator[tuple[TextTask, torch.nn.Module]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(TextTask.max_threads or threads)
    try:
        with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
            yield text_setup()
    finally:
        torch.set_num_threads(threads)


def _ctx(n: int, step: int) -> EvalContext:
    budget = replace(budget_for("quick", TextTask, MaximumLikelihood), n_eval=n)
    return EvalContext(budget, torch.device("cpu"), step, None)


def test_ml_training_step_text(benchmark, text) -> None:
    task, model = text
    objective = MaximumLikelihood()
    objective.setup(model, task, budget_for("quick", TextTask, MaximumLikelihood))
    model.train()
    batch = task.train[:BATCH]
    benchmark(objective.step, batch, 0)


def test_sample_10k_lstm(benchmark, text) -> None:
    _, model = text
    model.eval()
    with torch.no_grad():
        benchmark(model.sample_with_log_prob, N)


def test_nll_oracle_10k(benchmark, text) -> None:
    """Sampling 10,000 sequences of Q and scoring them under P, as the metric does."""
    task, model = text
    model.eval()
    steps = iter(range(10**9))  # a new evaluation each round: nothing is reused

    def run() -> None:
        with torch.no_grad():
            NLLOracle().compute(model, task, _ctx(N, next(steps)))

    benchmark(run)


def test_nll_test_10k(benchmark, text) -> None:
    """Scoring the 10,000 held-out sequences under Q, as the metric does."""
    task, model = text
    model.eval()
    steps = iter(range(10**9))

    def run() -> None:
        with torch.no_grad():
            NLLTest().compute(model, task, _ctx(N, next(steps)))

    benchmark(run)


def test_sampling_and_scoring_workload(benchmark, text) -> None:
    task, model = text
    benchmark.pedantic(text_sampling_and_scoring, args=(task, model, N), rounds=1)
