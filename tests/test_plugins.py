import sys

import pytest
import torch
from helpers import grid
from plugin_helpers import TOY_OBJECTIVE, make_dist

from benchmark_core.engine.runner import run_cell
from benchmark_core.registry import BUILTIN_PLUGINS, load_registry


@pytest.fixture
def site(tmp_path, monkeypatch):
    added = []

    def add(module, source, **kw):
        added.append(module)
        kw.setdefault("dist", f"gbench-{module.replace('_', '-')}")
        monkeypatch.syspath_prepend(str(make_dist(tmp_path / module, module, source, **kw)))

    yield add
    for module in added:
        sys.modules.pop(module, None)


def test_builtins_load_through_the_plugin_manager():
    registry = load_registry({"GBENCH_LOAD_PLUGINS": ""})
    assert [p.name for p in registry.plugins] == list(BUILTIN_PLUGINS)
    assert {"gaussian"} <= set(registry.of_kind("task"))
    assert {"isotropic_gaussian", "gaussian"} <= set(registry.of_kind("model"))
    assert "ml" in registry.of_kind("objective")
    assert {"nll_test", "nll_oracle", "moments"} <= set(registry.of_kind("metric"))
    assert registry.failures == []
    ml = registry.get("objective", "ml")
    assert ml.plugin.distribution == "gbench" and ml.plugin.builtin


def test_entry_point_plugin_registers_and_allow_list_restricts(site):
    site("toy_plugin", TOY_OBJECTIVE, dist="gbench-toy", version="0.3.1")
    registry = load_registry({})
    entry = registry.get("objective", "toy_moment_match")
    assert (entry.plugin.name, entry.plugin.distribution, entry.plugin.version) == (
        "toy_plugin",
        "gbench-toy",
        "0.3.1",
    )
    assert entry.plugin.hooks == ["register_objectives"]
    assert "toy_moment_match" in load_registry({"GBENCH_LOAD_PLUGINS": "toy_plugin"}).of_kind(
        "objective"
    )
    for allow in ("", "something_else"):
        assert "toy_moment_match" not in load_registry({"GBENCH_LOAD_PLUGINS": allow}).of_kind(
            "objective"
        )


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_load(site):
    site("broken_plugin", "raise RuntimeError('no such backend')\n")
    site("toy_plugin", TOY_OBJECTIVE)
    # The allow-list keeps plugins installed in the developer's environment out of the count.
    registry = load_registry({"GBENCH_LOAD_PLUGINS": "broken_plugin,toy_plugin"})
    assert registry.failures == [("broken_plugin", "RuntimeError: no such backend")]
    assert [p.name for p in registry.plugins] == [*BUILTIN_PLUGINS, "toy_plugin"]
    # The plugins that loaded work: a cell of the third-party objective and one of ml run.
    cells = grid(registry, objectives="toy_moment_match,ml", metrics="moments")
    assert [run_cell(cell, torch.device("cpu")).status for cell in cells] == ["ok", "ok"]


def test_a_hook_that_raises_is_reported(site):
    site(
        "raising_plugin",
        """
        from benchmark_core import hookimpl

        @hookimpl
        def register_metrics(register):
            raise ValueError("bad metric setup")
    """,
    )
    registry = load_registry({})
    [(name, error)] = registry.failures
    assert name == "raising_plugin" and "ValueError: bad metric setup" in error


def test_two_components_with_one_name_is_an_error_naming_both_plugins(site):
    site("dup_plugin", TOY_OBJECTIVE.replace('"toy_moment_match"', '"ml"'), dist="gbench-dup")
    registry = load_registry({})
    [(name, message)] = registry.failures
    assert name == "dup_plugin" and "two objectives are named 'ml'" in message
    assert "gbench_plugins.objectives.ml" in message and "gbench-dup" in message
    # The first keeps the name; the rest of the plugins load.
    assert registry.get("objective", "ml").plugin.name == "gbench_plugins.objectives.ml"
    assert "nll_test" in registry.of_kind("metric")


def test_registering_something_that_is_not_a_component_is_an_error(site):
    site(
        "wrong_plugin",
        """
        from benchmark_core import hookimpl

        @hookimpl
        def register_tasks(register):
            register(dict)
    """,
    )
    registry = load_registry({})
    [(name, message)] = registry.failures
    assert name == "wrong_plugin" and "not a Task" in message
    assert "gaussian" in registry.of_kind("task")


BAD_METRICS = """
from benchmark_core import hookimpl
from benchmark_core.contract import Metric
from benchmark_core.contract.params import Param


class Lower(Metric):
    name = "lower_metric"
    direction = "lower"

    def compute(self, model, task, ctx):
        return {"lower_metric": 0.0}


class NotAParam(Metric):
    name = "not_a_param"
    param_spec = {"k": 3}

    def compute(self, model, task, ctx):
        return {"not_a_param": 0.0}


class ListSpec(Metric):
    name = "list_spec"
    param_spec = ["k"]

    def compute(self, model, task, ctx):
        return {"list_spec": 0.0}


class Good(Metric):
    name = "good_metric"

    def compute(self, model, task, ctx):
        return {"good_metric": 0.0}


@hookimpl
def register_metrics(register):
    for cls in (Lower, NotAParam, ListSpec, Good):
        register(cls)
"""


def test_a_bad_declaration_is_reported_by_name_with_what_is_valid_and_the_rest_load(site):
    site("bad_metrics", BAD_METRICS)
    registry = load_registry({})
    problems = dict.fromkeys(m for n, m in registry.failures if n == "bad_metrics")
    text = "\n".join(problems)
    assert len(problems) == 3, text
    assert "metric 'lower_metric' has direction 'lower'; choose one of 'min', 'max', 'none'" in text
    assert "metric 'not_a_param' parameter 'k' is int, not a Param(...)" in text
    assert "metric 'list_spec' has param_spec list" in text
    # The good metric of the same plugin and every other plugin load.
    assert "good_metric" in registry.of_kind("metric")
    assert not {"lower_metric", "not_a_param", "list_spec"} & set(registry.of_kind("metric"))
    assert "ml" in registry.of_kind("objective")


def test_gbench_plugins_still_works_and_shows_the_broken_plugin(site, gbench):
    site("bad_metrics", BAD_METRICS)
    res = gbench("plugins")
    assert res.code == 0, res.err
    assert "bad_metrics" in res.out
    assert "plugin 'bad_metrics'" in res.err and "direction 'lower'" in res.err
    listing = gbench("list", "metrics")
    assert listing.code == 0 and "good_metric" in listing.out


def test_a_plugin_that_exits_while_importing_is_reported_and_the_rest_load(site):
    site("exits_plugin", "import sys\nsys.exit('no GPU here')\n")
    registry = load_registry({})
    assert ("exits_plugin", "SystemExit: no GPU here") in registry.failures
    assert "ml" in registry.of_kind("objective")
