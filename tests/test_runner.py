"""One cell at a time: determinism, statuses, and metrics that never perturb training."""

import math
import time

import pandas as pd
import torch
from gbench_plugins.objectives.ml import MaximumLikelihood
from helpers import grid, registry_with

from benchmark_core.contract import Metric, Objective
from benchmark_core.contract.params import Param
from benchmark_core.engine.runner import run_cell

CPU = torch.device("cpu")


class NaNAfter(MaximumLikelihood):
    name = "nan_after"
    param_spec = {"lr": MaximumLikelihood.param_spec["lr"], "after": Param(40, low=0)}

    def step(self, batch, step):
        loss = super().step(batch, step)
        return loss * math.nan if step >= self.after else loss


class RaiseInStep(MaximumLikelihood):
    name = "raise_in_step"

    def step(self, batch, step):
        if step == 7:
            raise ValueError("exploded on purpose")
        return super().step(batch, step)


class Sleepy(MaximumLikelihood):
    name = "sleepy"

    def step(self, batch, step):
        time.sleep(0.02)
        return super().step(batch, step)


class NeedsSequences(Objective):
    name = "needs_sequences"
    kinds = frozenset({"sequence"})


class RaisingMetric(Metric):
    name = "raising_metric"

    def compute(self, model, task, ctx):
        raise RuntimeError("metric broke")


def frame(outcome):
    return pd.DataFrame(outcome.rows)


def test_a_cpu_cell_is_bit_for_bit_repeatable():
    [cell] = grid(registry_with(), models="gaussian")
    one, two = run_cell(cell, CPU), run_cell(cell, CPU)
    assert one.status == two.status == "ok"
    cols = ["step", "metric", "value", "stderr"]
    pd.testing.assert_frame_equal(frame(one)[cols], frame(two)[cols])
    assert set(frame(one).metric) >= {"nll_test", "nll_oracle", "mean_0", "cov_eig_1", "train_loss"}


def test_metrics_do_not_change_the_training_trajectory():
    reg = registry_with()
    [with_all] = grid(reg, metrics="all")
    [with_one] = grid(reg, metrics="nll_test")
    losses = [
        frame(run_cell(c, CPU)).query("metric == 'train_loss'").value.to_numpy()
        for c in (with_all, with_one)
    ]
    assert (losses[0] == losses[1]).all()


def test_evaluation_at_checkpoints_and_loss_logging():
    [cell] = grid(registry_with())
    df = frame(run_cell(cell, CPU))
    assert (
        sorted(df.query("metric == 'nll_test'").step) == cell.budget.eval_steps() == [0, 150, 300]
    )
    logged = df.query("metric == 'train_loss'").step
    assert (
        logged.max() == cell.budget.steps
        and len(logged) == cell.budget.steps // cell.budget.log_every
    )
    assert (df.status == "ok").all() and df.error.isna().all()
    assert (df.wall_time_s > 0).all() and len(set(df.wall_time_s)) == 1


def test_nan_loss_ends_the_cell_as_diverged_keeping_earlier_rows():
    [cell] = grid(registry_with(NaNAfter), objectives="nan_after[after=60]")
    out = run_cell(cell, CPU)
    assert out.status == "diverged" and "nan" in out.error
    df = frame(out)
    assert (df.status == "diverged").all()
    assert df.query("metric == 'train_loss'").step.max() == 50  # the last finite window
    assert 0 in set(df.query("metric == 'nll_test'").step)


def test_an_exception_ends_the_cell_as_error_with_its_traceback():
    [cell] = grid(registry_with(RaiseInStep), objectives="raise_in_step")
    out = run_cell(cell, CPU)
    assert out.status == "error"
    assert "Traceback" in out.error and "ValueError: exploded on purpose" in out.error


def test_a_raising_metric_is_an_error_naming_it():
    [cell] = grid(registry_with(RaisingMetric), metrics="raising_metric")
    out = run_cell(cell, CPU)
    assert out.status == "error" and "metric broke" in out.error


def test_the_time_limit_ends_the_cell_as_timeout():
    [cell] = grid(registry_with(Sleepy), objectives="sleepy")
    out = run_cell(cell, CPU, timeout=0.3)
    assert out.status == "timeout" and "time limit" in out.error
    # The limit ended training early: the 300 smoke steps sleep 6 s, and no row reaches them.
    assert {r["status"] for r in out.rows} == {"timeout"}
    assert max(r["step"] for r in out.rows) < cell.budget.steps


def test_an_incompatible_objective_is_a_skipped_cell_with_its_reason():
    [cell] = grid(registry_with(NeedsSequences), objectives="needs_sequences")
    assert cell.skip_reason == (
        "needs_sequences works on sequence tasks; gaussian is a vector task"
    )
    out = run_cell(cell, CPU)
    assert (
        out.status == "skipped" and len(out.rows) == 1 and out.rows[0]["error"] == cell.skip_reason
    )
