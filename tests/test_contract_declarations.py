"""The contract's declarations: a third-party task that declares only what the contract asks
works with every built-in model, and the conformance suite refuses one that does not; sequence
shapes, per-token log-probabilities, the autoregressive interface, what a metric needs from
the objective (skipped at grid time), and the evaluation's shared store."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark_core.conformance import suite as conformance
from benchmark_core.conformance.suite import smoke_budget
from benchmark_core.contract import EvalContext, Metric, Model, Task
from benchmark_core.contract.budgets import PROFILES
from benchmark_core.contract.params import Param
from benchmark_core.engine.grid import Cell, build_grid
from benchmark_core.engine.runner import run_cell
from benchmark_core.engine.selection import Spec
from benchmark_core.registry import KINDS, Entry, PluginInfo, Registry, load_registry

CPU = torch.device("cpu")


def registry_with(*classes: type) -> Registry:
    """The built-in registry plus these test components, as plugin 'contract-tests'."""
    registry = load_registry({"GBENCH_LOAD_PLUGINS": ""})
    info = PluginInfo(
        "contract-tests", "contract-tests", "gbench-contract-tests", "0.0", builtin=False
    )
    registry.plugins.append(info)
    for cls in classes:
        kind = next(k for k, (_, base) in KINDS.items() if issubclass(cls, base))
        registry.components[kind][cls.name] = Entry(kind, cls, info)
    return registry


def results_of(*classes: type) -> dict[str, conformance.Result]:
    registry = registry_with(*classes)
    checks = conformance.collect(registry, ["contract-tests"])
    return {r.check.id: r for r in conformance.run(checks)}


def failure(results: dict[str, conformance.Result], check_id: str) -> str:
    result = results[check_id]
    assert result.status == "fail", f"{check_id} did not fail: {result}"
    return result.message


# --- a third-party vector task ---------------------------------------------------------------


class UndeclaredDimTask(Task):
    """A 3-D Gaussian with diagonal covariance, written from the contract alone, minus ``dim``."""

    name = "no_dim_gaussian"
    description = "3-D diagonal Gaussian that does not declare its dimension"
    kind = "vector"
    provides = frozenset({"log_prob", "sample"})
    param_spec = {"seed": Param(0, "seed of the fixed data", low=0)}

    def setup(self) -> None:
        self.scale = torch.tensor([2.0, 1.0, 0.5])
        gen = torch.Generator().manual_seed(self.seed)
        self.train = self._draw(2000, gen)
        self.test = self._draw(1000, gen)

    def _draw(self, n: int, gen: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, 3, generator=gen) * self.scale

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z = x / self.scale
        return -0.5 * (z * z).sum(1) - self.scale.log().sum() - 1.5 * math.log(2 * math.pi)

    def sample(self, n: int) -> torch.Tensor:
        return self._draw(n)


class ThirdPartyVectorTask(UndeclaredDimTask):
    """The same task, declaring its dimension as the contract says."""

    name = "third_party_gaussian"
    description = "3-D diagonal Gaussian declaring dim, as a third-party author writes it"
    dim = 3


class WrongDimTask(UndeclaredDimTask):
    name = "wrong_dim_gaussian"
    description = "3-D diagonal Gaussian declaring dim = 2"
    dim = 2


def test_a_third_party_vector_task_declaring_dim_conforms():
    results = results_of(ThirdPartyVectorTask)
    assert {r.status for r in results.values()} == {"pass"}, results


def test_a_vector_task_without_dim_fails_conformance_with_a_clear_message():
    message = failure(results_of(UndeclaredDimTask), "task:no_dim_gaussian:shape")
    assert message.startswith("task 'no_dim_gaussian' (plugin 'contract-tests'")
    assert "a vector task must declare its dimension as an int attribute 'dim'" in message
    assert "its rows have 3 coordinates" in message
    message = failure(results_of(WrongDimTask), "task:wrong_dim_gaussian:shape")
    assert "dim is 2 but the rows of train have 3 coordinates" in message


class StaleTestLogProbs(ThirdPartyVectorTask):
    name = "stale_test_log_prob"
    description = "3-D diagonal Gaussian whose cached test log-densities are off by one"

    def test_log_prob(self) -> torch.Tensor:
        return self.log_prob(self.test) + 1.0


def test_cached_test_log_probs_must_equal_log_prob():
    message = failure(results_of(StaleTestLogProbs), "task:stale_test_log_prob:capabilities")
    assert "provides 'log_prob': test_log_prob() differs from log_prob (by 1)" in message


def _vector_models() -> list[Entry]:
    models = registry_with().of_kind("model")
    return [e for _, e in sorted(models.items()) if "vector" in e.cls.kinds]


def test_every_builtin_vector_model_builds_and_samples_on_the_third_party_task():
    task = ThirdPartyVectorTask()
    names = []
    for entry in _vector_models():
        torch.manual_seed(0)
        model = entry.cls(task)
        provides = entry.cls.provides
        if "log_prob" in provides:
            lp = model.log_prob(task.test[:16])
            assert lp.shape == (16,) and torch.isfinite(lp).all(), entry.name
        if "rsample" in provides:
            x = model.rsample(8)
            assert x.shape == (8, 3) and x.requires_grad, entry.name
        if "sample" in provides:
            assert model.sample(8).shape == (8, 3), entry.name
        names.append(entry.name)
    assert {"isotropic_gaussian", "gaussian", "gaussian_mixture", "flow", "mlp_generator"} <= set(
        names
    )


@pytest.mark.parametrize("model", [e.name for e in _vector_models()])
def test_a_smoke_cell_of_each_builtin_vector_model_runs_on_the_third_party_task(model):
    registry = registry_with(ThirdPartyVectorTask)
    cells = build_grid(
        registry,
        [Spec("ml"), Spec("jspi")],
        [Spec("third_party_gaussian")],
        [Spec(model)],
        [Spec("nll_oracle")],
        [0],
        "smoke",
    )
    cell = next(c for c in cells if c.skip_reason is None)
    cell = Cell(
        cell.task,
        cell.model,
        cell.objective,
        cell.metrics,
        0,
        smoke_budget(ThirdPartyVectorTask, cell.objective.cls),
    )
    outcome = run_cell(cell, CPU)
    assert outcome.status == "ok", outcome.error
    values = [r["value"] for r in outcome.rows if r["metric"] == "nll_oracle"]
    assert values and all(math.isfinite(v) for v in values)


# --- sequence tasks: shape and per-token log-probabilities -----------------------------------


class PositionsTask(Task):
    """Two independent positions over three symbols, with exact per-token log P."""

    name = "positions"
    description = "independent categorical positions (3 symbols, length 2)"
    kind = "sequence"
    provides = frozenset({"log_prob", "sample", "token_log_prob"})
    param_spec = {"seed": Param(0, "seed of the fixed data", low=0)}
    vocab_size, length = 3, 2

    def setup(self) -> None:
        self.probs = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
        gen = torch.Generator().manual_seed(self.seed)
        self.train, self.test = self._draw(512, gen), self._draw(256, gen)

    def _draw(self, n: int, gen: torch.Generator | None = None) -> torch.Tensor:
        return torch.multinomial(self.probs, n, replacement=True, generator=gen).T

    def token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        return self.probs.log()[torch.arange(2), x]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.probs.log()[torch.arange(2), x].sum(1)

    def sample(self, n: int) -> torch.Tensor:
        return self._draw(n)


class WrongTokenLogProbs(PositionsTask):
    name = "bad_token_log_probs"

    def token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        return super().token_log_probs(x) - 0.1  # sums to log P − 0.2


class NextTokenTask(PositionsTask):
    """Also gives each position's whole distribution (independent positions: the same rows
    whatever the prefix)."""

    name = "next_token_positions"
    provides = frozenset({"log_prob", "sample", "token_log_prob", "next_token_log_prob"})

    def next_token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        return self.probs.log().expand(x.shape[0], -1, -1)


class UnnormalisedNextToken(NextTokenTask):
    name = "unnormalised_next_token"

    def next_token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        return super().next_token_log_probs(x) + 0.5


class InconsistentNextToken(NextTokenTask):
    name = "inconsistent_next_token"

    def next_token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        return super().next_token_log_probs(x).flip(-1)  # normalised, but not P's


class NextTokenOnly(NextTokenTask):
    name = "next_token_only"
    provides = frozenset({"log_prob", "sample", "next_token_log_prob"})


class NoVocabTask(PositionsTask):
    name = "no_vocab"
    vocab_size = None  # type: ignore[assignment]


class WrongLengthTask(PositionsTask):
    name = "wrong_length"
    length = 5


def test_a_sequence_task_with_per_token_log_probs_conforms():
    results = results_of(PositionsTask)
    assert {r.status for r in results.values()} == {"pass"}, results


def test_per_token_log_probs_that_do_not_sum_to_log_prob_fail():
    message = failure(results_of(WrongTokenLogProbs), "task:bad_token_log_probs:capabilities")
    assert "provides 'token_log_prob'" in message
    assert "summed over positions differs from log_prob by 0.2" in message


def test_next_token_log_probs_must_be_normalised_and_agree_with_token_log_probs():
    results = results_of(NextTokenTask, UnnormalisedNextToken, InconsistentNextToken, NextTokenOnly)
    assert results["task:next_token_positions:capabilities"].status == "pass"
    message = failure(results, "task:unnormalised_next_token:capabilities")
    assert "provides 'next_token_log_prob'" in message
    assert "log Σ_v exp(next_token_log_probs) differs from 0 (by 0.5)" in message
    message = failure(results, "task:inconsistent_next_token:capabilities")
    assert "next_token_log_probs at x differs from token_log_probs" in message
    message = failure(results, "task:next_token_only:capabilities")
    assert "also provide 'token_log_prob'" in message


def test_a_sequence_task_must_declare_vocab_size_and_a_matching_length():
    message = failure(results_of(NoVocabTask), "task:no_vocab:shape")
    assert "a sequence task must declare 'vocab_size' as an int >= 1 (got None)" in message
    message = failure(results_of(WrongLengthTask), "task:wrong_length:shape")
    assert "length is 5 but the train sequences have 2" in message


# --- the autoregressive interface ------------------------------------------------------------


class NotReallyAutoregressive(Model):
    """Independent softmax positions that claim the autoregressive interface."""

    name = "fake_autoregressive"
    description = "independent positions declaring 'autoregressive' without its methods"
    kinds = frozenset({"sequence"})
    provides = frozenset({"log_prob", "sample", "autoregressive"})

    def build(self, task: Task) -> None:
        self.logits = torch.nn.Parameter(torch.randn(task.length, task.vocab_size))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.log_softmax(-1)[torch.arange(self.logits.shape[0]), x].sum(1)

    def sample(self, n: int) -> torch.Tensor:
        probs = self.logits.detach().softmax(-1)
        return torch.multinomial(probs, n, replacement=True).T


def test_a_model_declaring_autoregressive_must_implement_the_interface():
    message = failure(
        results_of(NotReallyAutoregressive), "model:fake_autoregressive:capabilities[sequence]"
    )
    assert "provides 'autoregressive'" in message
    lacks = (
        "lacks initial_token, step, token_log_probs, fed_log_probs, next_token_log_probs, "
        "weighted_log_prob, "
    )
    assert lacks + "sample_with_log_prob" in message


def test_the_builtin_sequence_models_implement_the_contract_interface():
    from gbench_plugins.common.autoregressive import LSTMCore
    from gbench_plugins.models.sequence import LSTMModel, TabularModel

    from benchmark_core import Autoregressive, AutoregressiveModel

    assert issubclass(LSTMModel, AutoregressiveModel) and issubclass(
        TabularModel, AutoregressiveModel
    )
    # The text task's oracle is driven through the same interface.
    oracle = LSTMCore(7, 4, 4, length=3, generator=torch.Generator().manual_seed(0))
    assert isinstance(oracle, Autoregressive)
    out = oracle.sample_with_log_prob(50)
    torch.testing.assert_close(out.log_prob, oracle.log_prob(out.tokens), rtol=1e-5, atol=1e-5)


def test_a_models_own_tempered_log_prob_is_checked_against_the_step_wise_one():
    from gbench_plugins.models.sequence import TabularModel

    class Untempered(TabularModel):
        """Forgets to divide by T: its log Q_T is log Q."""

        name = "untempered_tabular"

        def tempered_log_prob(self, x, temperature):
            return self.log_prob(x)

    results = results_of(Untempered)
    message = failure(results, "model:untempered_tabular:capabilities[sequence]")
    assert "tempered_log_prob(x, 0.7) differs from the step-wise log softmax(logits / 0.7)" in (
        message
    )


# --- what a metric needs from the objective --------------------------------------------------


def test_a_metric_needing_feed_eps_is_skipped_with_its_reason_on_other_objectives():
    cells = build_grid(
        registry_with(),
        [Spec("ml"), Spec("scheduled_sampling")],
        [Spec("pairs")],
        [Spec("tabular")],
        [Spec("ss_fixed_point_tv"), Spec("mutual_info")],
        [0],
        "smoke",
    )
    by_objective = {c.objective.name: c for c in cells}
    ml, ss = by_objective["ml"], by_objective["scheduled_sampling"]
    assert [m.name for m in ml.metrics] == ["mutual_info"]
    assert ml.metric_skips == (
        "ss_fixed_point_tv needs the objective's probability of feeding the true symbol "
        "(feed_eps); ml has none",
    )
    assert [m.name for m in ss.metrics] == ["ss_fixed_point_tv", "mutual_info"]
    assert ss.metric_skips == ()


def test_ss_fixed_point_tv_reads_the_declared_feed_eps():
    from gbench_plugins.common.pairs import conditional, ss_fixed_point, total_variation
    from gbench_plugins.metrics.pairs import SSFixedPointTV, model_joint, task_joint
    from gbench_plugins.models.sequence import TabularModel
    from gbench_plugins.objectives.scheduled_sampling import ScheduledSampling
    from gbench_plugins.tasks.pairs import PairsTask

    task = PairsTask(k=3, n_train=100, n_test=100)
    torch.manual_seed(0)
    model = TabularModel(task, init_scale=1.0)
    objective = ScheduledSampling(eps=0.3)
    objective.setup(model, task, PROFILES["smoke"])
    ctx = EvalContext(PROFILES["smoke"], CPU, 0, objective)
    with torch.no_grad():
        out = SSFixedPointTV().compute(model, task, ctx)
        p, q = task_joint(task), model_joint(model, task)
    want = total_variation(conditional(q), ss_fixed_point(p, 0.3), weights=p.sum(axis=1))
    assert out["ss_eps"].value == 0.3 == objective.feed_eps()
    assert math.isclose(out["ss_fixed_point_tv"].value, want, rel_tol=1e-9)


class PeeksAtTheObjective(Metric):
    name = "peeks_at_objective"
    description = "reads the objective's feed_eps without declaring it"
    kinds = frozenset({"sequence"})
    direction = "none"

    def compute(self, model, task, ctx):
        return {"eps": float(ctx.objective.feed_eps())}


def test_a_metric_calling_an_undeclared_objective_method_fails_conformance():
    message = failure(
        results_of(PeeksAtTheObjective), "metric:peeks_at_objective:requirements[sequence]"
    )
    assert "objective_requires=[]" in message and "it called objective.feed_eps()" in message
    assert "add 'feed_eps' to objective_requires" in message


# --- the evaluation's shared store -----------------------------------------------------------


def test_shared_computes_once_per_key_and_per_evaluation():
    calls = []

    def compute(value):
        calls.append(value)
        return value

    ctx = EvalContext(PROFILES["smoke"], CPU, 0, None)
    assert ctx.shared("a", lambda: compute(1)) == 1
    assert ctx.shared("a", lambda: compute(2)) == 1
    assert ctx.shared(("b", 1.0), lambda: compute(3)) == 3
    other = EvalContext(PROFILES["smoke"], CPU, 0, None)
    assert other.shared("a", lambda: compute(4)) == 4
    assert calls == [1, 3, 4]


def test_sampling_metrics_of_one_evaluation_share_one_draw_through_the_context():
    from gbench_plugins.metrics.likelihood import NLLDiv, NLLOracle
    from gbench_plugins.models.sequence import TabularModel
    from gbench_plugins.tasks.pairs import PairsTask

    task = PairsTask(k=4, n_train=100, n_test=100)
    torch.manual_seed(0)
    model = TabularModel(task, init_scale=1.0)
    draws = []
    original = model.sample_with_log_prob

    def counted(n, temperature=1.0):
        draws.append((n, temperature))
        return original(n, temperature)

    model.sample_with_log_prob = counted
    ctx = EvalContext(PROFILES["smoke"], CPU, 0, None)
    with torch.no_grad():
        torch.manual_seed(5)
        oracle = NLLOracle().compute(model, task, ctx)["nll_oracle"]
        torch.manual_seed(5)
        div = NLLDiv().compute(model, task, ctx)["nll_div"]
    assert draws == [(PROFILES["smoke"].n_eval, 1.0)]
    # Independently: the same samples scored under P and under Q.
    torch.manual_seed(5)
    x = original(PROFILES["smoke"].n_eval).tokens
    assert math.isclose(oracle.value, float(-task.log_prob(x).double().mean()), rel_tol=1e-9)
    with torch.no_grad():
        log_q = model.log_prob(x).double()
    assert math.isclose(div.value, float(-log_q.mean()), rel_tol=1e-5)
    assert not hasattr(model, "_gbench_draws")
