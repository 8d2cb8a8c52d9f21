"""The text task's hot paths as plain functions, for pytest-benchmark and for ratio scripts.

- `text_setup`: the default ``text`` task and a fresh default ``lstm`` model, seeded as the
  runner seeds a cell (task from seed 0, model from the cell's seed);
- `text_ml_epoch`: one epoch over the 10,000 training sequences at batch 64 with the real
  ``ml`` objective (its step, its Adam and cosine schedule);
- `text_sampling_and_scoring`: ``nll_oracle`` on n samples of Q plus ``nll_test`` on the
  held-out sequences, through the metrics' own ``compute`` as an evaluation runs them.

The functions leave the intra-op thread count alone: the caller chooses it (a gbench cell
runs the text task with ``TextTask.max_threads``).
"""

from __future__ import annotations

from dataclasses import replace
from itertools import count

import torch
from gbench_plugins.metrics.likelihood import NLLOracle, NLLTest
from gbench_plugins.models.sequence import LSTMModel
from gbench_plugins.objectives.ml import MaximumLikelihood
from gbench_plugins.tasks.text import TextTask

from benchmark_core.contract import EvalContext
from benchmark_core.contract.budgets import budget_for

BATCH = 64
# Distinct evaluation steps, so that no call reuses the samples an earlier call cached.
_eval_steps = count(10**9)


def text_setup(seed: int = 0) -> tuple[TextTask, LSTMModel]:
    """The default text task and a fresh default lstm model (weights from ``seed``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        task = TextTask()
    torch.manual_seed(seed)
    return task, LSTMModel(task)


def text_ml_epoch(task: TextTask, model: LSTMModel, batch: int = BATCH) -> None:
    """One shuffled epoch of the ``ml`` objective over ``task.train`` (157 steps at 64)."""
    n = task.train.shape[0]
    steps = -(-n // batch)
    budget = replace(budget_for("quick", TextTask, MaximumLikelihood), steps=steps)
    objective = MaximumLikelihood()
    objective.setup(model, task, budget)
    model.train()
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    for step in range(steps):
        objective.step(task.train[perm[step * batch : (step + 1) * batch]], step)


def text_sampling_and_scoring(task: TextTask, model: LSTMModel, n: int = 10_000) -> None:
    """``nll_oracle`` on n samples of Q and ``nll_test`` on the held-out set, as evaluated."""
    budget = replace(budget_for("quick", TextTask, MaximumLikelihood), n_eval=n)
    ctx = EvalContext(budget, torch.device("cpu"), next(_eval_steps), None)
    model.eval()
    try:
        with torch.no_grad():  # as the runner's evaluate
            torch.manual_seed(0)
            NLLOracle().compute(model, task, ctx)
            torch.manual_seed(0)
            NLLTest().compute(model, task, ctx)
    finally:
        model.train()
