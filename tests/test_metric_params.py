"""Task.metric_params: a task's default metric parameters, under what the user gives."""

from __future__ import annotations

import pytest
import torch
from gbench_plugins.tasks.text import SWEEP, TextTask
from helpers import grid, registry_with

from benchmark_core.contract import Task
from benchmark_core.contract.errors import UsageError


def _metric(cell, name):
    return next(m for m in cell.metrics if m.name == name)


def test_text_cells_sweep_temperatures_by_default_and_the_user_wins():
    reg = registry_with()
    cell = grid(reg, tasks="text", models="lstm", metrics="nll_test,nll_oracle,nll_div")[0]
    assert _metric(cell, "nll_test").params["temperatures"] == list(SWEEP)
    assert _metric(cell, "nll_oracle").params["temperatures"] == list(SWEEP)
    assert _metric(cell, "nll_div").params["temperatures"] == []  # not declared: its own default
    # `all` metrics too
    cell = grid(reg, tasks="text", models="lstm", metrics="all")[0]
    assert _metric(cell, "nll_test").params["temperatures"] == list(SWEEP)
    # a value the user gives replaces the task's
    cell = grid(reg, tasks="text", models="lstm", metrics="nll_test[temperatures=[0.5]]")[0]
    assert _metric(cell, "nll_test").params["temperatures"] == [0.5]
    # another task keeps the metric's own default
    cell = grid(reg, tasks="gaussian", metrics="nll_test")[0]
    assert _metric(cell, "nll_test").params["temperatures"] == []
    assert TextTask.frontier_reference == "ml" and TextTask.frontier_select_by == "nll_test"


class BadParam(Task):
    name = "bad_param_task"
    metric_params = {"nll_test": {"temperature": [0.5]}}  # a typo: the parameter is plural

    def setup(self):
        self.train = self.test = torch.zeros(4, 2)
        self.dim = 2


class BadValue(BadParam):
    name = "bad_value_task"
    metric_params = {"nll_test": {"temperatures": [0]}}


def test_a_bad_declaration_is_refused_naming_the_task():
    reg = registry_with(BadParam, BadValue)
    with pytest.raises(UsageError, match="task bad_param_task sets metric_params .*temperature"):
        grid(reg, tasks="bad_param_task", models="isotropic_gaussian", metrics="nll_test")
    with pytest.raises(UsageError, match="task bad_value_task's metric_params for nll_test"):
        grid(reg, tasks="bad_value_task", models="isotropic_gaussian", metrics="nll_test")
