"""One test per hook in hookspecs, each through a real entry-point plugin (see test_meta.py)."""

import sys

import pytest
from plugin_helpers import make_dist

from benchmark_core.registry import load_registry

#: A plugin that implements every hook once.
EVERY_HOOK = '''
import click
import torch
from benchmark_core import hookimpl
from benchmark_core.contract import (
    Claim, ClaimGrid, Estimate, Evidence, Metric, Model, Objective, Task, Verdict,
)


class ToyTask(Task):
    """Standard normal in 1-D."""

    name = "hook_task"
    description = "1-D standard normal"
    kind = "vector"
    provides = frozenset({"sample"})
    dim = 1

    def setup(self):
        g = torch.Generator().manual_seed(0)
        self.train, self.test = torch.randn(64, 1, generator=g), torch.randn(64, 1, generator=g)

    def sample(self, n):
        return torch.randn(n, 1)


class ToyModel(Model):
    """A point mass at a learnable location (samples only)."""

    name = "hook_model"
    description = "a learnable point mass"
    provides = frozenset({"sample", "rsample"})

    def build(self, task):
        self.loc = torch.nn.Parameter(torch.zeros(task.train.shape[1]))

    def rsample(self, n):
        return self.loc.expand(n, -1)


class ToyObjective(Objective):
    """Mean squared error of the location to the batch."""

    name = "hook_objective"
    description = "squared distance of Q's samples to the batch mean"
    kinds = frozenset({"vector"})
    model_requires = frozenset({"rsample"})

    def setup(self, model, task, budget):
        self.model, self.opt = model, torch.optim.SGD(model.parameters(), lr=0.1)

    def step(self, batch, step):
        loss = ((self.model.rsample(1)[0] - batch.mean(0)) ** 2).sum()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.detach()


class ToyMetric(Metric):
    """Distance of Q's mean to the training mean."""

    name = "hook_metric"
    description = "distance of Q's sample mean to the training mean"
    kinds = frozenset({"vector"})
    model_requires = frozenset({"sample"})

    def compute(self, model, task, ctx):
        return {"hook_metric": Estimate((model.sample(8).mean(0) - task.train.mean(0)).norm().item())}


@hookimpl
def register_tasks(register):
    register(ToyTask)


@hookimpl
def register_models(register):
    register(ToyModel)


@hookimpl
def register_objectives(register):
    register(ToyObjective)


@hookimpl
def register_metrics(register):
    register(ToyMetric)


class ToyClaim(Claim):
    """SGD puts the point mass on the data mean."""

    name = "hook_claim"
    description = "the toy objective fits the mean"
    statement = "hook_objective ends within 0.05 of the training mean."
    source = "tests/test_hooks.py"
    grids = (ClaimGrid("hook_objective", "hook_task", "hook_model", "hook_metric", "3"),)

    def check(self, results):
        interval = results.interval("hook_metric", "hook_objective", "hook_task")
        return Verdict.of([Evidence.below("distance to the mean", interval, 0.05)])


@hookimpl
def register_claims(register):
    register(ToyClaim)


def draw(df, directions, request):
    raise NotImplementedError


@hookimpl
def register_plots(register):
    register("hook_plot", draw, "a plot kind from a plugin", options=("metrics",))


@hookimpl
def register_commands(cli):
    @cli.command("hook-hello")
    def hello():
        """Say hello from a plugin."""
        click.echo("hello from a plugin")
'''


@pytest.fixture
def every_hook(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(
        str(make_dist(tmp_path, "every_hook", EVERY_HOOK, dist="gbench-every-hook"))
    )
    yield load_registry({"GBENCH_LOAD_PLUGINS": "every_hook"})
    sys.modules.pop("every_hook", None)


def _entry(registry, kind, name):
    entry = registry.get(kind, name)
    assert (entry.plugin.name, entry.plugin.distribution) == ("every_hook", "gbench-every-hook")
    return entry


def test_hook_register_tasks(every_hook):
    task = _entry(every_hook, "task", "hook_task").cls()
    assert task.train.shape == (64, 1)


def test_hook_register_models(every_hook):
    task = _entry(every_hook, "task", "hook_task").cls()
    model = _entry(every_hook, "model", "hook_model").cls(task)
    assert model.sample(3).shape == (3, 1)


def test_hook_register_objectives(every_hook, gbench, tmp_path):
    _entry(every_hook, "objective", "hook_objective")
    ran = gbench(
        "run",
        "--objectives",
        "hook_objective",
        "--tasks",
        "hook_task",
        "--models",
        "hook_model",
        "--metrics",
        "hook_metric",
        "--budget",
        "smoke",
        "--out",
        str(tmp_path / "r"),
    )
    assert ran.code == 0, ran.out + ran.err
    from benchmark_core.results.store import read_results

    frame = read_results([tmp_path / "r"], strict=True).frame
    assert set(frame.status) == {"ok"} and "hook_metric" in set(frame.metric)
    final = frame[(frame.metric == "hook_metric") & (frame.step == frame.step.max())]
    assert final.value.iloc[0] < 0.05  # SGD moved the point mass onto the data mean


def test_hook_register_metrics(every_hook):
    metric = _entry(every_hook, "metric", "hook_metric").cls
    assert metric.direction == "min" and metric().direction_of("hook_metric") == "min"


def test_hook_register_claims(every_hook, gbench, tmp_path):
    claim = _entry(every_hook, "claim", "hook_claim").cls
    assert claim.grids[0].seeds == "3"
    out = tmp_path / "r"
    ran = gbench("claims", "hook_claim", "--budget", "smoke", "--out", str(out), "--format", "json")
    assert ran.code == 0, ran.out + ran.err
    import json

    [verdict] = json.loads(ran.out)["claims"]
    assert verdict["outcome"] == "reproduced" and verdict["plugin"].startswith("every_hook")
    [figure] = verdict["evidence"]
    assert figure["n"] == 3 and figure["high"] < 0.05
    assert len(list(out.glob("*.parquet"))) == 3


def test_hook_register_plots(every_hook):
    draw, help_text, options, info = every_hook.plots["hook_plot"]
    assert info.name == "every_hook" and options == frozenset({"metrics"})
    assert help_text == "a plot kind from a plugin"
    assert draw is sys.modules["every_hook"].draw  # the plugin's own function, not a wrapper


def test_hook_register_commands(every_hook, gbench):
    from benchmark_core.cli.main import cli

    try:
        said = gbench("hook-hello")
        assert said.code == 0 and said.out.strip() == "hello from a plugin"
    finally:
        cli.commands.pop("hook-hello", None)
