"""The pairs task, the sequence models' step-wise interface, and the check() hook."""

import json
import math

import numpy as np
import pytest
import torch
from gbench_plugins.common.pairs import dirichlet_table
from gbench_plugins.models.sequence import LSTMModel, TabularModel
from gbench_plugins.tasks.pairs import PairsTask
from helpers import registry_with

from benchmark_core.contract import Task
from benchmark_core.contract.errors import UsageError
from benchmark_core.contract.params import Param
from benchmark_core.engine.selection import expand, parse_selection


class Checked(Task):
    name = "checked"
    param_spec = {"lo": Param(0), "hi": Param(1)}

    @classmethod
    def check(cls, params):
        if params["lo"] >= params["hi"]:
            raise ValueError(f"lo={params['lo']} must be below hi={params['hi']}")

    def setup(self):
        self.train = self.test = torch.zeros(1, 1)


def test_check_runs_during_selection_and_its_value_error_becomes_a_usage_error():
    reg = registry_with(Checked)
    assert len(expand("task", parse_selection("checked[hi=[2,3]]"), reg)) == 2
    with pytest.raises(UsageError, match="checked: lo=5 must be below hi=1"):
        expand("task", parse_selection("checked[lo=[0,5]]"), reg)
    with pytest.raises(UsageError):
        Checked(lo=3, hi=2)


def test_pairs_data_log_prob_and_enumeration_match_the_table():
    task = PairsTask(k=4, seed=3)
    table = dirichlet_table(4, 3, 1.0, 0.8, 0.1)
    x = task.enumerate()
    assert x.shape == (16, 2)
    np.testing.assert_allclose(task.log_prob(x).exp().reshape(4, 4).numpy(), table, rtol=1e-5)
    counts = torch.bincount(task.train[:, 0] * 4 + task.train[:, 1], minlength=16)
    freq = counts.double().numpy().reshape(4, 4) / task.n_train
    assert np.abs(freq - table).max() < 0.01
    assert not torch.equal(task.train[: task.n_test], task.test)


def test_a_table_that_is_not_a_distribution_is_refused_before_anything_runs(gbench, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([[0.5, 0.2], [0.2, 0.2]]))
    res = gbench("run", "--tasks", f"pairs[table='{bad}']", "--out", str(tmp_path / "r"))
    assert res.code == 2
    assert "sums to 1.1" in res.err + res.out and "not 1" in res.err + res.out
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.parquet"))
    res = gbench("run", "--tasks", "pairs[table=missing.json]", "--dry-run")
    assert res.code == 2 and "does not exist" in res.err + res.out


def test_a_table_file_is_used(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps([[0.4, 0.1], [0.1, 0.4]]))
    task = PairsTask(table=str(path))
    assert task.vocab_size == 2
    assert math.isclose(task.log_prob(torch.tensor([[0, 1]])).exp().item(), 0.1, rel_tol=1e-6)


@pytest.mark.parametrize("cls", [TabularModel, LSTMModel])
def test_step_interface_agrees_with_log_prob_and_samples_score_exactly(cls):
    torch.manual_seed(0)
    task = PairsTask(k=5)
    model = cls(task)
    x = task.test[:64]
    token, state, total = model.initial_token(64), None, torch.zeros(64)
    for t in range(2):
        logits, state = model.step(token, state)
        total += torch.log_softmax(logits, 1).gather(1, x[:, t : t + 1]).squeeze(1)
        token = x[:, t]
    torch.testing.assert_close(total, model.log_prob(x), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        out = model.sample_with_log_prob(500, temperature=0.7)
        torch.testing.assert_close(out.log_prob, model.log_prob(out.tokens), rtol=1e-4, atol=1e-4)
        greedy = model.sample(3, temperature=0.0)
        assert (greedy == greedy[0]).all()
    # Q sums to one over all K² pairs.
    assert math.isclose(model.log_prob(task.enumerate()).exp().sum().item(), 1.0, rel_tol=1e-5)


def test_budgets_may_be_keyed_by_task_kind():
    from gbench_plugins.objectives.adversarial import AdversarialJSPi
    from gbench_plugins.tasks.gaussian import GaussianTask

    from benchmark_core.contract.budgets import budget_for

    assert budget_for("quick", GaussianTask, AdversarialJSPi).steps == 3000
    assert budget_for("quick", PairsTask, AdversarialJSPi).steps == 1500  # the task's


def test_score_function_surrogate_gives_the_exact_gradient_in_expectation():
    from gbench_plugins.objectives.score_function import leave_one_out_baseline, surrogate

    cost = torch.tensor([1.0, 2.0, 6.0])
    torch.testing.assert_close(leave_one_out_baseline(cost), torch.tensor([4.0, 3.5, 1.5]))
    # Q = softmax(theta) over 3 outcomes, cost c: d E_Q[c] / d theta = q * (c - E_Q c).
    theta = torch.tensor([0.3, -0.2, 0.5], requires_grad=True)
    q = torch.softmax(theta, 0)
    torch.manual_seed(0)
    x = torch.multinomial(q.detach(), 200_000, replacement=True)
    surrogate(cost[x], torch.log_softmax(theta, 0)[x]).backward()
    exact = q.detach() * (cost - (q.detach() * cost).sum())
    torch.testing.assert_close(theta.grad, exact, atol=0.02, rtol=0)


def test_schedules_follow_bengio_et_al():
    from gbench_plugins.objectives.scheduled_sampling import schedule_eps

    assert schedule_eps("constant", 999, 0.3, 0, 0, 0) == 0.3
    assert schedule_eps("linear", 100, 0, 1.0, 0.002, 0.1) == pytest.approx(0.8)
    assert schedule_eps("linear", 10_000, 0, 1.0, 0.002, 0.1) == 0.1
    assert schedule_eps("exponential", 10, 0, 0.9, 0, 0) == pytest.approx(0.9**10)
    assert schedule_eps("inverse_sigmoid", 50, 0, 10.0, 0, 0) == pytest.approx(
        10 / (10 + math.exp(5))
    )
    assert schedule_eps("exponential", 0, 0, 0, 0, 0) == 1.0  # k = 0: the default k


def test_misuse_is_refused_or_skipped_before_anything_runs():
    from helpers import grid

    reg = registry_with()
    with pytest.raises(UsageError, match="exponential schedule needs k < 1"):
        grid(reg, objectives="scheduled_sampling[schedule=exponential,k=1.5]", tasks="pairs")
    with pytest.raises(UsageError, match="jspi\\[pi\\]"):
        grid(reg, objectives="jspi[pi=1.0]", tasks="pairs", models="tabular")
    [cell] = grid(reg, objectives="scheduled_sampling", tasks="gaussian")
    assert cell.skip_reason == (
        "scheduled_sampling works on sequence tasks; gaussian is a vector task"
    )
    [cell] = grid(reg, objectives="jspi_exact", tasks="text", models="lstm")
    assert cell.skip_reason == "jspi_exact needs the task's enumerable sample space; text has none"


def test_scheduled_sampling_steps_with_a_schedule_and_argmax_feeding():
    from gbench_plugins.objectives.scheduled_sampling import ScheduledSampling

    from benchmark_core.contract.budgets import PROFILES

    torch.manual_seed(0)
    task = PairsTask(k=4, n_train=512)
    model = TabularModel(task)
    ss = ScheduledSampling(schedule="linear", c=0.1, eps_min=0.2, feed="argmax")
    ss.setup(model, task, PROFILES["smoke"])
    eps = []
    for i in range(12):
        loss = ss.step(task.train[:64], i)
        assert loss.requires_grad is False and torch.isfinite(loss)
        eps.append(ss.current_eps)
    assert eps[0] == 1.0 and eps[5] == pytest.approx(0.5) and eps[-1] == 0.2
    # At ε = 1 the loss is the teacher-forced NLL, whatever the feeding.
    one = ScheduledSampling(eps=1.0, feed="argmax")
    one.setup(model, task, PROFILES["smoke"])
    nll = -model.log_prob(task.train[:64]).mean()
    torch.testing.assert_close(one.loss(task.train[:64], 1.0), nll)


@pytest.mark.parametrize("cls", [TabularModel, LSTMModel])
def test_fed_log_probs_agree_with_teacher_forcing_and_with_stepping(cls):
    from benchmark_core import AutoregressiveModel

    torch.manual_seed(1)
    task = PairsTask(k=5)
    model = cls(task)
    x = task.test[:50]
    bos = model.initial_token(50)[:, None]
    forced = model.fed_log_probs(torch.cat([bos, x[:, :-1]], dim=1), x)
    torch.testing.assert_close(forced, model.token_log_probs(x), rtol=1e-5, atol=1e-5)
    other = torch.randint(0, 5, (50, 2))
    inputs = torch.cat([bos, other[:, :1]], dim=1)
    generic = AutoregressiveModel.fed_log_probs(model, inputs, x)
    torch.testing.assert_close(model.fed_log_probs(inputs, x), generic, rtol=1e-5, atol=1e-5)


def test_categorical_draws_follow_the_probabilities_and_skip_zero_mass():
    from benchmark_core.contract import categorical

    torch.manual_seed(0)
    probs = torch.tensor([[0.0, 0.2, 0.0, 0.8]]).repeat(40_000, 1)
    counts = torch.bincount(categorical(probs * 3), minlength=4).double() / 40_000
    assert counts[0] == 0 and counts[2] == 0
    assert abs(counts[1] - 0.2) < 0.01
