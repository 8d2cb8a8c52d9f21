"""Meta-tests: every hook is tested and documented; every built-in passes the conformance
suite; and the suite fails, with a message naming the culprit, on broken components."""

import ast
import functools
import inspect
import math
import re

import pytest
import torch
from gbench_plugins.models.gaussian import FullGaussian, IsotropicGaussian
from gbench_plugins.objectives.ml import MaximumLikelihood
from gbench_plugins.tasks.gaussian import GaussianTask
from helpers import REPO, registry_with

from benchmark_core.conformance import suite as conformance
from benchmark_core.contract import Estimate, Metric, Model, Objective, Task, hookspecs
from benchmark_core.contract.params import Param, positive

HOOKS = sorted(
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "gbench_spec")
)


@functools.cache
def _test_names() -> set[str]:
    names = set()
    for path in (REPO / "tests").rglob("test_*.py"):
        tree = ast.parse(path.read_text())
        names |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    return names


def test_hookspecs_are_found():
    assert {"register_tasks", "register_commands", "register_plots"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    """A test named ``test_hook_<hook>`` (tests/test_hooks.py) exercises each hook."""
    assert any(name.startswith(f"test_hook_{hook}") for name in _test_names()), (
        f"hook {hook} has no test: add test_hook_{hook} to tests/test_hooks.py"
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    assert f"`{hook}" in (REPO / "CONTRIBUTING.md").read_text(), (
        f"hook {hook} is not documented in CONTRIBUTING.md"
    )


@pytest.mark.gbench_conformance("gbench")
def test_builtin_components_conform(gbench_check):
    gbench_check()


# --- the suite catches broken components ---------------------------------------------------


def _results(*classes):
    registry = registry_with(*classes)
    return {r.check.id: r for r in conformance.run(conformance.collect(registry, ["tests"]))}


def _failure(results, check_id):
    result = results[check_id]
    assert result.status == "fail", f"{check_id} did not fail: {result}"
    return result.message


class DefaultOutOfBounds(MaximumLikelihood):
    name = "bad_default"
    param_spec = {"lr": positive(-0.1, "a learning rate that must be > 0")}


def test_a_param_default_outside_its_bounds_fails():
    message = _failure(_results(DefaultOutOfBounds), "objective:bad_default:params")
    assert message.startswith(
        "objective 'bad_default' (plugin 'tests', gbench-tests 0.0): param_spec['lr'] = "
        "float in (0, inf), default -0.1: the default is refused by its own declaration"
    )


class AcceptsTooMuch(MaximumLikelihood):
    name = "bad_choices"

    @classmethod
    def validate(cls, params):
        return {"lr": params.get("lr", 0.05)}  # forgets to validate


def test_a_param_that_accepts_bad_values_fails():
    message = _failure(_results(AcceptsTooMuch), "objective:bad_choices:params")
    assert "param_spec['lr']" in message and "the invalid value 0 was accepted" in message


class UndeclaredDirection(Metric):
    name = "bad_direction"
    description = "a metric whose values have a direction it never declared"
    kinds = frozenset({"vector"})
    direction = "min"

    def compute(self, model, task, ctx):
        return {"bad_direction": Estimate(1.0), "accuracy": Estimate(0.5, 0.1)}

    def direction_of(self, value_name):
        return "higher" if value_name == "accuracy" else self.direction


def test_a_metric_returning_an_undeclared_direction_fails():
    message = _failure(_results(UndeclaredDirection), "metric:bad_direction:values[vector]")
    assert message == (
        "metric 'bad_direction' (plugin 'tests', gbench-tests 0.0): direction='min': "
        "direction_of('accuracy') is 'higher', not 'min', 'max' or 'none'"
    )


class InfiniteMetric(UndeclaredDirection):
    name = "bad_infinite"

    def compute(self, model, task, ctx):
        return {"bad_infinite": math.inf}

    def direction_of(self, value_name):
        return "min"


def test_a_metric_returning_infinity_fails():
    message = _failure(_results(InfiniteMetric), "metric:bad_infinite:values[vector]")
    assert "value 'bad_infinite' is inf: return a finite value or NaN" in message


class WideSamples(IsotropicGaussian):
    """log_prob says N(μ, s²I) but the samples come from N(μ, 4 s²I)."""

    name = "bad_samples"

    def rsample(self, n):
        return self.mu + 2 * torch.exp(self.log_s) * torch.randn(n, self.dim)


class Unnormalised(IsotropicGaussian):
    """log_prob forgets the normalising constant."""

    name = "bad_normaliser"

    def log_prob(self, x):
        return -0.5 * (((x - self.mu) * torch.exp(-self.log_s)) ** 2).sum(-1)


def test_a_model_whose_log_prob_disagrees_with_its_samples_fails():
    results = _results(WideSamples, Unnormalised)
    wide = _failure(results, "model:bad_samples:density[vector]")
    assert wide.startswith(
        "model 'bad_samples' (plugin 'tests', gbench-tests 0.0): provides 'log_prob' and "
        "'sample': the mean log_prob of its own samples is"
    )
    assert "the samples do not follow the density" in wide
    unnormalised = _failure(results, "model:bad_normaliser:density[vector]")
    assert "exp(log_prob) integrates to 6.2" in unnormalised  # 2π, for a 2-D unit Gaussian


class SneakyObjective(Objective):
    """Declares it needs log_prob only, but trains through rsample."""

    name = "bad_requirements"
    description = "declares log_prob, uses rsample"
    kinds = frozenset({"vector"})
    model_requires = frozenset({"log_prob"})

    def setup(self, model, task, budget):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step(self, batch, step):
        loss = (self.model.rsample(8).mean(0) - batch.mean(0)).square().sum()
        loss = loss - self.model.log_prob(batch).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.detach()


def test_an_objective_using_an_undeclared_capability_fails():
    message = _failure(_results(SneakyObjective), "objective:bad_requirements:requirements[vector]")
    assert message == (
        "objective 'bad_requirements' (plugin 'tests', gbench-tests 0.0): model_requires="
        "['log_prob'] on vector tasks: it called model.rsample(), which needs the model's "
        "reparameterised sampling (rsample); add 'rsample' to model_requires (or stop calling it)"
    )


class SneakyMetric(Metric):
    """Reads the task's density without declaring it."""

    name = "bad_metric_requirements"
    description = "uses the task's log_prob without declaring it"
    kinds = frozenset({"vector"})
    model_requires = frozenset({"sample"})

    def compute(self, model, task, ctx):
        return {"bad": -task.log_prob(model.sample(16)).mean()}


def test_a_metric_using_an_undeclared_task_capability_fails():
    results = _results(SneakyMetric)
    assert results["metric:bad_metric_requirements:values[vector]"].status == "pass"
    message = _failure(results, "metric:bad_metric_requirements:requirements[vector]")
    assert "task_requires=[] on vector tasks: it called task.log_prob()" in message


class AttachedLoss(MaximumLikelihood):
    name = "bad_loss"

    def step(self, batch, step):
        super().step(batch, step)
        return -self.model.log_prob(batch).mean()


def test_an_objective_returning_a_loss_with_a_graph_fails():
    message = _failure(_results(AttachedLoss), "objective:bad_loss:requirements[vector]")
    assert "step(): must return a detached loss (loss.detach())" in message


class CrashingObjective(MaximumLikelihood):
    name = "bad_crash"

    def step(self, batch, step):
        raise RuntimeError("shapes do not match")


def test_an_objective_whose_smoke_cell_errors_fails():
    message = _failure(_results(CrashingObjective), "objective:bad_crash:smoke_cell[vector]")
    assert "a smoke cell on (gaussian, isotropic_gaussian) ended 'error'" in message
    assert "RuntimeError: shapes do not match" in message


class OneLossForAllReplicas(MaximumLikelihood):
    name = "bad_replicas"

    def step(self, batch, step):
        return super().step(batch, step).mean()  # one number, not one per replica


def test_an_objective_whose_replica_step_returns_one_loss_fails():
    message = _failure(_results(OneLossForAllReplicas), "objective:bad_replicas:replicas[vector]")
    assert "replicas on (gaussian, isotropic_gaussian) ended 'error'" in message
    assert "it must return one loss per replica, shape [3]" in message


class NotVmappable(FullGaussian):
    name = "bad_vmap"

    def log_prob(self, x):
        scale = float(self.log_diag.detach().exp().max())  # a Python number: vmap cannot
        return super().log_prob(x) + 0 * scale


def test_a_model_that_declares_vmap_but_breaks_under_it_fails():
    message = _failure(_results(NotVmappable), "model:bad_vmap:capabilities[vector]")
    assert "provides 'vmap'" in message and "failed under torch.func.vmap" in message


class UnseededTask(GaussianTask):
    name = "bad_unseeded"

    def setup(self):
        super().setup()
        self.train = self._draw(self.n_train)  # the global RNG


def test_a_task_whose_data_depend_on_the_global_rng_fails():
    message = _failure(_results(UnseededTask), "task:bad_unseeded:data")
    assert "the train/test data change with the global RNG" in message


def test_a_check_that_cannot_run_is_skipped_with_the_reason():
    class SequenceOnly(MaximumLikelihood):
        name = "seq_only"
        kinds = frozenset({"sequence"})

    results = _results(SequenceOnly)
    if any(e.cls.kind == "sequence" for e in registry_with().of_kind("task").values()):
        pytest.skip("a sequence task is installed")
    skipped = results["objective:seq_only:smoke_cell[sequence]"]
    assert skipped.status == "skip" and "no installed sequence task" in skipped.message


def test_unknown_package_is_a_usage_error_listing_what_is_loaded():
    from benchmark_core.contract.errors import UsageError

    with pytest.raises(UsageError, match="no loaded plugin or distribution is named 'gbench-nope'"):
        conformance.collect(registry_with(), ["gbench-nope"])


def test_check_plugin_command_prints_a_table_and_exits_by_outcome(gbench, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    ok = gbench("check-plugin", "gbench_plugins.objectives.ml")
    assert ok.code == 0, ok.out + ok.err
    assert "objective" in ok.out and "smoke_cell[vector]" in ok.out and "0 failed" in ok.out
    unknown = gbench("check-plugin", "gbench-nope")
    assert (
        unknown.code == 2
        and "no loaded plugin or distribution is named 'gbench-nope'" in unknown.err
    )


def test_check_plugin_exits_1_and_names_the_failure(gbench, monkeypatch):
    from benchmark_core import registry as plugins

    broken = registry_with(DefaultOutOfBounds)
    monkeypatch.setattr(plugins, "get_registry", lambda: broken)
    failed = gbench("check-plugin", "tests")
    assert failed.code == 1
    assert (
        "FAIL objective:bad_default:params: objective 'bad_default' (plugin 'tests'" in failed.err
    )


def test_the_plugin_in_contributing_runs_and_conforms():
    source = (REPO / "CONTRIBUTING.md").read_text()
    code = re.search(r"```python\n# gbench_mine.py\n(.*?)```", source, re.S).group(1)
    namespace = {}
    exec(code, namespace)
    results = _results(namespace["MomentMatch"])
    assert {r.status for r in results.values()} == {"pass"}, results


# --- sequence tasks and models -------------------------------------------------------------


class ToySequenceTask(Task):
    """Three independent positions over three symbols: small enough to enumerate."""

    name = "toy_sequence"
    description = "independent categorical positions (3 symbols, length 3)"
    kind = "sequence"
    provides = frozenset({"log_prob", "sample", "enumerable"})
    default_models = ("toy_sequence_model",)
    param_spec = {"seed": Param(0, "seed of the fixed data", low=0)}
    vocab_size, length = 3, 3

    def setup(self):
        self.probs = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
        gen = torch.Generator().manual_seed(self.seed)
        self.train, self.test = self._draw(512, gen), self._draw(256, gen)

    def _draw(self, n, gen=None):
        return torch.multinomial(self.probs, n, replacement=True, generator=gen).T

    def log_prob(self, x):
        return self.probs.log()[torch.arange(self.length), x].sum(1)

    def sample(self, n):
        return self._draw(n)


class ToySequenceModel(Model):
    """Independent softmax positions."""

    name = "toy_sequence_model"
    description = "independent categorical positions with learnable logits"
    kinds = frozenset({"sequence"})
    provides = frozenset({"log_prob", "sample"})

    def build(self, task):
        self.logits = torch.nn.Parameter(torch.randn(task.length, task.vocab_size))

    def log_probs(self):
        return self.logits.log_softmax(-1)

    def log_prob(self, x):
        return self.log_probs()[torch.arange(self.logits.shape[0]), x].sum(1)

    def sample(self, n):
        with torch.no_grad():
            return torch.multinomial(self.log_probs().exp(), n, replacement=True).T


class UnnormalisedSequenceModel(ToySequenceModel):
    name = "bad_sequence_model"

    def log_probs(self):
        return self.logits - 1.0


class TokenOutOfRangeTask(ToySequenceTask):
    name = "bad_tokens"
    default_models = ()

    def sample(self, n):
        return self._draw(n) + 1  # 3 is not a symbol


def test_sequence_components_conform_and_builtins_run_on_them():
    results = _results(ToySequenceTask, ToySequenceModel)
    assert {r.status for r in results.values()} == {"pass"}, results
    registry = registry_with(ToySequenceTask, ToySequenceModel)
    ml = conformance.run(conformance.collect(registry, ["gbench_plugins.objectives.ml"]))
    statuses = {r.check.id: r.status for r in ml}
    assert statuses["objective:ml:smoke_cell[sequence]"] == "pass", ml
    assert set(statuses.values()) == {"pass"}, ml


def test_a_sequence_model_whose_probabilities_do_not_sum_to_one_fails():
    results = _results(ToySequenceTask, UnnormalisedSequenceModel)
    message = _failure(results, "model:bad_sequence_model:density[sequence]")
    # Either check catches it, depending on which sequence task the suite pairs it with.
    assert ("exp(log_prob) sums to" in message and "not 1" in message) or (
        "> 0 on a sample of a discrete space" in message
    ), message


def test_a_task_sampling_tokens_outside_its_vocabulary_fails():
    message = _failure(_results(TokenOutOfRangeTask), "task:bad_tokens:capabilities")
    assert "provides 'sample': sample(64) holds tokens outside [0, 3)" in message
