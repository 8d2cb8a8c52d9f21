"""One cell at a time: determinism, statuses, and metrics that never perturb training."""

import json
import math
import time

import pandas as pd
import pyarrow.parquet as pq
import torch
from gbench_plugins.objectives.ml import MaximumLikelihood
from helpers import grid, registry_with
from plugin_helpers import make_dist

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


class LossOfShapeOne(MaximumLikelihood):
    name = "loss_of_shape_one"

    def step(self, batch, step):
        return super().step(batch, step).reshape(1)


class NeedsSequences(Objective):
    name = "needs_sequences"
    kinds = frozenset({"sequence"})


class RaisingMetric(Metric):
    name = "raising_metric"

    def compute(self, model, task, ctx):
        raise RuntimeError("metric broke")


class ZeroAtStart(Metric):
    """1 / step: raises ZeroDivisionError at step 0 only."""

    name = "zero_at_start"

    def compute(self, model, task, ctx):
        return {"zero_at_start": 1.0 / ctx.step}


ZERO_AT_START_PLUGIN = """
from benchmark_core import Metric, hookimpl


class ZeroAtStart(Metric):
    name = "zero_at_start"
    description = "1 / step (raises at step 0)"

    def compute(self, model, task, ctx):
        return {"zero_at_start": 1.0 / ctx.step}


@hookimpl
def register_metrics(register):
    register(ZeroAtStart)
"""


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


def test_a_lone_cell_whose_step_returns_more_than_one_number_is_an_error():
    [cell] = grid(registry_with(LossOfShapeOne), objectives="loss_of_shape_one")
    out = run_cell(cell, CPU)
    assert out.status == "error"
    assert "loss_of_shape_one.step returned a loss of shape (1,)" in out.error
    assert "a lone cell's loss must be 0-d" in out.error


def test_a_raising_metric_is_recorded_and_the_cell_trains_on():
    reg = registry_with(ZeroAtStart)
    [with_bad] = grid(reg, metrics="zero_at_start,nll_test")
    [without] = grid(reg, metrics="nll_test")
    out, ref = run_cell(with_bad, CPU), run_cell(without, CPU)
    assert out.status == "metric_error"
    assert "zero_at_start at step 0: ZeroDivisionError" in out.error
    df = frame(out)
    assert (df.status == "metric_error").all()
    bad = df.query("metric == 'zero_at_start'").set_index("step")
    assert list(bad.index) == with_bad.budget.eval_steps() == [0, 150, 300]
    assert math.isnan(bad.value[0]) and bad.metric_source[0] == "zero_at_start"
    assert (
        "Traceback" in bad.error[0] and "ZeroDivisionError: float division by zero" in bad.error[0]
    )
    # Later evaluations of the same metric still run, and their rows carry no error.
    assert bad.value[150] == 1 / 150 and bad.value[300] == 1 / 300
    assert bad.error[[150, 300]].isna().all()
    # Training and every other metric are exactly what they are without the failing metric.
    cols = ["step", "metric", "value", "stderr"]
    rest = df[df.metric != "zero_at_start"][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest, frame(ref)[cols].reset_index(drop=True))
    assert df[df.metric != "zero_at_start"].error.isna().all()


def test_a_metric_that_always_raises_names_itself_at_every_evaluation():
    [cell] = grid(registry_with(RaisingMetric), metrics="raising_metric,nll_test")
    out = run_cell(cell, CPU)
    assert out.status == "metric_error"
    assert out.error.count("raising_metric at step") == 3 and "metric broke" in out.error
    df = frame(out)
    assert len(df.query("metric == 'nll_test'")) == 3
    assert df.query("metric == 'train_loss'").step.max() == cell.budget.steps


def test_gbench_run_exits_1_on_a_metric_error_and_reruns_the_cell(gbench, tmp_path, monkeypatch):
    dist = make_dist(tmp_path / "site", "zero_at_start_plugin", ZERO_AT_START_PLUGIN)
    monkeypatch.syspath_prepend(str(dist))
    out = tmp_path / "out"
    args = ["run", "--objectives", "ml", "--tasks", "gaussian", "--models", "isotropic_gaussian"]
    args += ["--metrics", "zero_at_start,nll_test", "--seeds", "1", "--budget", "smoke"]
    first = gbench(*args, "--out", str(out))
    assert first.code == 1 and "metric_error" in first.out
    [path] = out.glob("*.parquet")
    rows = pq.read_table(path).to_pandas()
    assert set(rows.status) == {"metric_error"}
    assert rows.query("metric == 'nll_test'").value.notna().all()
    assert json.loads(pq.read_schema(path).metadata[b"gbench"])["directions"]["nll_test"] == "min"
    # A cell whose metric failed is not done: the next run trains it again.
    again = gbench(*args, "--out", str(out))
    assert again.code == 1 and "done earlier" not in again.out


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
