"""The plugin author's path: the conformance suite catches what an author gets wrong
(issue 16): unbounded numeric parameters, a wrong-signed objective, a task whose default
models do not train, a metric whose standard error is far below its spread."""

from __future__ import annotations

import pytest
import torch
from gbench_plugins.objectives.ml import MaximumLikelihood
from gbench_plugins.tasks.gaussian import GaussianTask
from helpers import registry_with

from benchmark_core.conformance import suite as conformance
from benchmark_core.contract import Estimate, Metric
from benchmark_core.contract.params import Param


def _results(*classes):
    registry = registry_with(*classes)
    return {r.check.id: r for r in conformance.run(conformance.collect(registry, ["tests"]))}


def _failure(results, check_id):
    result = results[check_id]
    assert result.status == "fail", f"{check_id} did not fail: {result}"
    return result.message


class Unbounded(MaximumLikelihood):
    name = "bad_unbounded"
    param_spec = {**MaximumLikelihood.param_spec, "alpha": Param(1.0, "the order α", float)}


def test_a_numeric_parameter_without_bounds_fails_saying_how_to_declare_them():
    message = _failure(_results(Unbounded), "objective:bad_unbounded:declarations")
    assert "param_spec['alpha']: declare the valid range, e.g. Param(1.0, \"...\", low=0)" in (
        message
    )


class SignFlipped(MaximumLikelihood):
    """ml by gradient ascent: maximises the loss it logs."""

    name = "bad_sign"

    def setup(self, model, task, budget):
        self.model = model
        self.opt = torch.optim.Adam(model.parameters(), lr=0.01, maximize=True)

    def step(self, batch, step):
        loss = -self.model.log_prob(batch).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.detach()


def test_an_objective_with_the_wrong_sign_fails_and_an_honest_one_passes():
    results = _results(SignFlipped, HonestMl)
    message = _failure(results, "objective:bad_sign:smoke_cell[vector]")
    assert message.split(": ", 2)[1:2] == ["step()"]
    assert "check the sign of the loss you minimise" in message
    assert results["objective:honest_ml:smoke_cell[vector]"].status == "pass"


class HonestMl(SignFlipped):
    name = "honest_ml"

    def setup(self, model, task, budget):
        self.model = model
        self.opt = torch.optim.Adam(model.parameters(), lr=0.01)


class GameValue(SignFlipped):
    """Declares its logged loss a game value: the descent check does not apply."""

    name = "game_value"
    loss_descends = False


def test_a_declared_game_value_loss_opts_out_of_the_descent_check():
    assert _results(GameValue)["objective:game_value:smoke_cell[vector]"].status == "pass"


class MissingDefault(GaussianTask):
    name = "bad_defaults"
    default_models = ("isotropic_gaussian", "no_such_model")


def test_a_task_naming_a_default_model_that_does_not_exist_fails():
    results = _results(MissingDefault)
    message = _failure(results, "task:bad_defaults:default_models")
    assert "default_models=['isotropic_gaussian', 'no_such_model']" in message
    assert "no installed model is named 'no_such_model'" in message


def test_builtin_tasks_train_with_each_of_their_default_models():
    results = conformance.run(
        [c for c in conformance.collect(registry_with(), ["gbench"]) if c.name == "default_models"]
    )
    assert len(results) >= 4  # gaussian, mixture, pairs, text
    assert {r.status for r in results} == {"pass"}, [r.message for r in results]


@pytest.mark.parametrize("name", ["ml", "reverse_kl", "jspi_exact", "scheduled_sampling"])
def test_builtin_objectives_lower_their_own_loss(name):
    from benchmark_core.conformance.base import Workbench
    from benchmark_core.conformance.behaviour import DESCENT_Z, descent_z

    registry = registry_with()
    bench = Workbench(registry)
    entry = registry.of_kind("objective")[name]
    for kind in sorted(entry.cls.kinds):
        assert descent_z(entry, bench, *bench.pair_for(entry, kind)) > 2 * DESCENT_Z


class HonestMean(Metric):
    """The mean of Q's first coordinate over n samples, with its standard error."""

    name = "honest_mean"
    description = "mean of the first coordinate of Q's samples, with std / sqrt(n)"
    kinds = frozenset({"vector"})
    model_requires = frozenset({"sample"})
    direction = "none"
    shrink = 1.0

    def compute(self, model, task, ctx):
        x = model.sample(256)[:, 0]
        return {self.name: Estimate(float(x.mean()), self.shrink * float(x.std()) / 16)}


class OverconfidentMean(HonestMean):
    name = "overconfident_mean"
    shrink = 0.1


def test_a_stderr_ten_times_too_small_fails_and_an_honest_one_passes():
    results = _results(HonestMean, OverconfidentMean)
    assert results["metric:honest_mean:stderr[vector]"].status == "pass"
    message = _failure(results, "metric:overconfident_mean:stderr[vector]")
    assert "compute(): the stderr of 'overconfident_mean' is too small" in message


def test_builtin_metrics_report_honest_stderrs():
    results = conformance.run(
        [c for c in conformance.collect(registry_with(), ["gbench"]) if c.name.startswith("stderr")]
    )
    assert {r.check.entry.name for r in results if r.status == "pass"} >= {"c2st", "prdc", "mmd"}
    assert [r.message for r in results if r.status == "fail"] == []


class VectorLoss(HonestMl):
    name = "bad_vector_loss"

    def step(self, batch, step):
        super().step(batch, step)
        return -self.model.log_prob(batch).detach()  # one loss per row: 1000 numbers


def test_a_failure_embeds_a_short_tensor_and_keeps_the_fix(gbench, monkeypatch):
    from benchmark_core import registry as plugins

    monkeypatch.setenv("COLUMNS", "80")
    broken = registry_with(VectorLoss)
    monkeypatch.setattr(plugins, "get_registry", lambda: broken)
    failed = gbench("check-plugin", "tests")
    assert failed.code == 1
    [line] = [x for x in failed.err.splitlines() if "requirements[vector]" in x]
    assert "must return a 0-d tensor (reduce it, e.g. loss.mean()), got tensor(shape=(" in line
    assert line.endswith("on (gaussian, isotropic_gaussian)") and len(line) < 400
    table = failed.out.splitlines()
    assert max(map(len, table)) <= 80
    for check in ("declarations", "params", "smoke_cell[vector]", "requirements[vector]"):
        assert any(f"objective:bad_vector_loss:{check} " in row for row in table), check


class SlowSgd(SignFlipped):
    """Honest plain SGD: one huge first step from far away, then a slow, steady fall."""

    name = "slow_sgd"

    def setup(self, model, task, budget):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01)


def test_an_honest_objective_with_one_huge_early_loss_passes_the_descent_check():
    assert _results(SlowSgd)["objective:slow_sgd:smoke_cell[vector]"].status == "pass"


def test_loss_descends_must_be_a_bool():
    message = _failure(
        _results(type("NotBool", (GameValue,), {"name": "bad_flag", "loss_descends": "no"})),
        "objective:bad_flag:declarations",
    )
    assert "loss_descends='no': must be True or False" in message


def test_at_60_columns_ids_wrap_but_results_stay_whole(gbench, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    ok = gbench("check-plugin", "gbench_plugins.objectives.scheduled_sampling")
    assert ok.code == 0, ok.out + ok.err
    lines = ok.out.splitlines()
    assert max(map(len, lines)) <= 60
    assert sum("│ pass   │" in line for line in lines) == 5  # one per check, never "pa…"
