"""Replicas: cells that differ only in seed or π train as one vectorised model."""

import itertools
import json
import math
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from gbench_plugins.models.gaussian import FullGaussian
from gbench_plugins.objectives.adversarial import AdversarialJSPi
from gbench_plugins.objectives.divergences import ExactJSPi
from gbench_plugins.objectives.ml import MaximumLikelihood
from gbench_plugins.tasks.gaussian import GaussianTask
from helpers import grid, registry_with

from benchmark_core import Model, ModelStack, per_replica
from benchmark_core.engine.executors import run_grid
from benchmark_core.engine.loop import build
from benchmark_core.engine.replicas import group_replicas
from benchmark_core.engine.runner import run_cell, run_work
from benchmark_core.engine.stack import ReplicaStack
from benchmark_core.results.store import read_results

CPU = torch.device("cpu")
KEY = ["step", "metric"]


def frame(outcome):
    return pd.DataFrame(outcome.rows).set_index(KEY).sort_index()


class NaNForSeedOne(MaximumLikelihood):
    """Maximum likelihood whose replica of seed 1 gets a NaN loss from step 10 on."""

    name = "nan_for_seed_one"

    def setup(self, model, task, budget):
        super().setup(model, task, budget)
        self.poison = torch.tensor([0.0, math.nan, 0.0])

    def step(self, batch, step):
        loss = super().step(batch, step)
        return loss + self.poison if step >= 10 else loss


class SeesWhatItGets(ExactJSPi):
    """jspi_exact that writes down what `setup` and `step` were handed."""

    name = "sees_what_it_gets"
    seen: list = []

    def setup(self, model, task, budget):
        super().setup(model, task, budget)
        pi = self.pi.tolist() if isinstance(self.pi, torch.Tensor) else self.pi
        stacked = isinstance(model, ModelStack)
        type(self).seen.append(("setup", stacked, isinstance(model, Model), pi))

    def step(self, batch, step):
        loss = super().step(batch, step)
        if step == 0:
            type(self).seen.append(("step", tuple(batch.shape), tuple(loss.shape)))
        return loss


def test_a_stack_calls_every_replica_and_writes_back():
    task = GaussianTask()
    torch.manual_seed(0)
    models = [FullGaussian(task) for _ in range(3)]
    stack = ReplicaStack(models)
    assert len(stack) == 3 and [p.shape[0] for p in stack.parameters()] == [3, 3, 3]
    assert isinstance(stack, ModelStack) and not isinstance(models[0], ModelStack)
    x = task.test[:50]
    together = stack.log_prob(torch.stack([x, x + 1, x - 1]))
    alone = torch.stack([m.log_prob(v) for m, v in zip(models, (x, x + 1, x - 1), strict=True)])
    torch.testing.assert_close(together, alone.detach())
    torch.testing.assert_close(
        stack.call("log_prob", torch.stack([x, x, x]))[1], models[1].log_prob(x).detach()
    )
    assert stack.rsample(7).shape == (3, 7, 2) and stack.sample(7).shape == (3, 7, 2)
    assert stack.rsample(7).requires_grad and not stack.sample(7).requires_grad
    torch.testing.assert_close(stack.mean(), torch.stack([m.mean() for m in models]).detach())
    # Auxiliary networks (a discriminator per replica) stack the same way.
    nets = [torch.nn.Linear(2, 1) for _ in range(3)]
    aux = stack.stack(nets)
    y = torch.randn(3, 5, 2)
    torch.testing.assert_close(aux(y), torch.stack([n(v) for n, v in zip(nets, y, strict=True)]))
    assert [p.shape[0] for p in aux.parameters()] == [3, 3]
    with pytest.raises(ValueError, match="one module per replica"):
        stack.stack(nets[:2])
    with torch.no_grad():
        for p in stack.parameters():
            p.add_(1.0)
    before = models[1].mu.detach().clone()
    stack.write_back()
    torch.testing.assert_close(models[1].mu.detach(), before + 1.0)
    with pytest.raises(ValueError, match="single class"):
        ReplicaStack([models[0], torch.nn.Linear(2, 2)])


def mlp_replicas(shape, activation, count=5, seed=0):
    """``count`` nn.Sequential MLPs of one architecture: ``shape`` lists the widths, an
    activation follows every hidden layer (``final`` also follows the output layer)."""
    torch.manual_seed(seed)
    nets = []
    for _ in range(count):
        layers = []
        for i, (k, o) in enumerate(itertools.pairwise(shape)):
            layers.append(torch.nn.Linear(k, o, bias=i != 1))  # one layer without a bias
            if i < len(shape) - 2:
                layers.append(activation())
        nets.append(torch.nn.Sequential(*layers))
    return nets


@pytest.mark.parametrize(
    ("shape", "activation", "extra"),
    [
        ((2, 16, 16, 1), torch.nn.SiLU, None),  # jspi's discriminator, smaller
        ((3, 8, 1), torch.nn.ReLU, torch.nn.Identity),
        ((2, 7, 5, 9, 3), torch.nn.Tanh, torch.nn.Sigmoid),  # a sigmoid after the output
        ((4, 1), torch.nn.SiLU, None),  # no hidden layer
    ],
)
@pytest.mark.parametrize("chunk", [None, 1, 2, 5])
def test_a_stack_of_mlps_gives_each_replicas_outputs_and_gradients(shape, activation, extra, chunk):
    nets = mlp_replicas(shape, activation)
    if extra is not None:
        for net in nets:
            net.append(extra())
    stack = ReplicaStack(nets)
    assert stack.plan is not None  # the stacked-MLP kernel, not vmap
    stack.chunk = chunk
    for rows in [(37,), (), (3, 4)]:  # inputs [R, n, d], [R, d] and [R, a, b, d]
        x = torch.randn(5, *rows, shape[0], requires_grad=True)
        weights = torch.randn(5, *rows, shape[-1])  # a loss that weighs every output
        out = stack(x)
        (out * weights).sum().backward()
        torch.testing.assert_close(out, stack.call("forward", x))  # the generic path
        names = dict(zip(stack.names, stack.stacked, strict=True))
        for r, net in enumerate(nets):
            alone = x[r].detach().requires_grad_()
            expected = net(alone)
            (expected * weights[r]).sum().backward()
            torch.testing.assert_close(out[r], expected)
            torch.testing.assert_close(x.grad[r], alone.grad)
            for name, p in net.named_parameters():
                torch.testing.assert_close(names[name].grad[r], p.grad)
                p.grad = None
        stack.zero_grad(set_to_none=True)
    # Without an input gradient (the discriminator's steps on data) the parameters get theirs.
    stack(torch.randn(5, 11, shape[0])).sum().backward()
    assert all(p.grad is not None for p in stack.parameters())


def test_a_stack_of_mlps_reuses_buffers_only_once_their_backward_is_done():
    nets = mlp_replicas((2, 16, 16, 1), torch.nn.SiLU, count=3)
    stack = ReplicaStack(nets)
    stack.chunk = 2
    xs = [torch.randn(3, 20, 2) for _ in range(3)]
    # Three graphs alive at once (jspi's real, fake and generator passes), then backward in
    # another order: each gets its own gradients, as from a fresh stack per call.
    outs = [stack(x) for x in xs]
    grads = []
    for i in (2, 0, 1):
        stack.zero_grad(set_to_none=True)
        outs[i].square().sum().backward()
        grads.append([p.grad.clone() for p in stack.parameters()])
    assert len(stack.pool.free) == 12  # 4 hidden buffers per call, handed back
    for i, got in zip((2, 0, 1), grads, strict=True):
        fresh = ReplicaStack(nets)
        fresh(xs[i]).square().sum().backward()
        for g, p in zip(got, fresh.parameters(), strict=True):
            torch.testing.assert_close(g, p.grad)
    # A graph kept for a second backward whose buffers a later call reused stops there.
    stack.pool.free.clear()
    out = stack(xs[0])
    out.sum().backward(retain_graph=True)
    stack(xs[1])
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_other_stacks_of_modules_keep_the_vmap_path():
    def with_norm():
        return torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.LayerNorm(4))

    def leading_activation():
        return torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(2, 4))

    def unknown_activation():
        return torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.LeakyReLU(0.1))

    for make in (with_norm, leading_activation, unknown_activation, lambda: torch.nn.Linear(2, 4)):
        nets = [make() for _ in range(3)]
        stack = ReplicaStack(nets)
        assert stack.plan is None
        x = torch.randn(3, 6, 2)
        expected = torch.stack([n(v) for n, v in zip(nets, x, strict=True)]).detach()
        torch.testing.assert_close(stack(x), expected)
        with pytest.raises(TypeError, match="nn.Sequential MLPs"):
            stack.mlp(x)


def test_replicas_of_ml_give_the_same_numbers_as_cells_run_alone():
    # ml draws no random numbers while training, so the batch must match bit for bit up to
    # float rounding: same initialisation, same data order, own metric streams.
    cells = grid(registry_with(), models="gaussian", seeds="3")
    start = time.monotonic()
    together = run_work(cells, CPU)
    total = time.monotonic() - start
    for cell, outcome in zip(cells, together, strict=True):
        alone = run_cell(cell, CPU)
        assert outcome.status == alone.status == "ok"
        a, b = frame(alone), frame(outcome)
        assert a.index.equals(b.index)
        assert list(a.columns) == list(b.columns)
        assert (a.cell_id == cell.cell_id).all() and (b.cell_id == cell.cell_id).all()
        pd.testing.assert_series_equal(a.value, b.value, rtol=1e-5, atol=1e-6)
        assert outcome.replicas == [c.cell_id for c in cells]
    # Each cell is charged its share of the batch's wall time: the shares add up to no more
    # than the batch took.
    assert sum(o.wall_time_s for o in together) <= total
    for outcome in together:
        assert outcome.wall_time_s > 0
        assert {r["wall_time_s"] for r in outcome.rows} == {outcome.wall_time_s}


def test_a_lone_cell_is_a_stack_of_one_with_the_model_itself():
    # run_work on one cell is run_cell: the objective gets the model and a [B, d] batch and
    # returns a 0-d loss; no replicas are recorded.
    [cell] = grid(registry_with(SeesWhatItGets), objectives="sees_what_it_gets[pi=0.1]")
    SeesWhatItGets.seen = []
    [alone] = run_work([cell], CPU)
    assert alone.status == "ok" and alone.replicas == []
    assert SeesWhatItGets.seen == [
        ("setup", False, True, 0.1),
        ("step", (cell.budget.batch_size, 2), ()),
    ]
    pd.testing.assert_frame_equal(
        frame(alone).drop(columns=["started_at", "wall_time_s"]),
        frame(run_cell(cell, CPU)).drop(columns=["started_at", "wall_time_s"]),
    )


def test_replica_params_reach_the_objective_as_one_value_per_replica():
    cells = grid(registry_with(SeesWhatItGets), objectives="sees_what_it_gets[pi=[0.1,0.5,0.99]]")
    [item] = group_replicas(cells, 32)
    SeesWhatItGets.seen = []
    outcomes = run_work(item, CPU)
    assert [o.status for o in outcomes] == ["ok"] * 3
    (_, stacked, is_model, pis), step = SeesWhatItGets.seen
    assert stacked and not is_model
    assert pis == pytest.approx([0.1, 0.5, 0.99])
    assert step == ("step", (3, item[0].budget.batch_size, 2), (3,))


def test_per_replica_shapes_a_stacked_parameter_and_leaves_a_plain_one():
    like = torch.zeros(3, 5, 1)
    assert per_replica(0.5, like) == 0.5
    pi = torch.tensor([0.1, 0.5, 0.99])
    assert per_replica(pi, like).shape == (3, 1, 1)
    assert per_replica(pi, torch.zeros(3, 5)).shape == (3, 1)


def test_jspi_replicas_train_one_discriminator_each():
    cells = grid(registry_with(), objectives="jspi[pi=[0.1,0.5]]", metrics="nll_test")
    task = GaussianTask()
    stack, models, objective = build(cells, task, CPU)
    assert isinstance(stack, ReplicaStack) and len(models) == 2
    assert isinstance(objective.disc, ReplicaStack) and len(objective.disc) == 2
    assert objective.disc.plan is not None  # the discriminators run as one stacked MLP
    assert objective.pi.tolist() == pytest.approx([0.1, 0.5])
    expected = [p * math.log(p) + (1 - p) * math.log1p(-p) for p in (0.1, 0.5)]
    assert objective.offset.tolist() == pytest.approx(expected)
    loss = objective.step(task.train[torch.randint(0, 1000, (2, 64))], 0)
    assert loss.shape == (2,) and torch.isfinite(loss).all()
    # alone, the same objective gets a plain discriminator and a float π
    model, _, lone = build(cells[:1], task, CPU)
    assert isinstance(model, Model) and isinstance(lone, AdversarialJSPi) and lone.pi == 0.1
    assert not isinstance(lone.disc, ReplicaStack) and isinstance(lone.offset, float)
    assert lone.step(task.train[:64], 0).shape == ()


def test_seeds_and_pi_group_but_other_parameters_and_incapable_cells_do_not():
    reg = registry_with()
    cells = grid(reg, objectives="jspi[pi=[0.1,0.5]],jspi[lr=0.02]", seeds="3")
    items = group_replicas(cells, 32)
    sizes = sorted(len(item) for item in items)
    assert sizes == [3, 6]  # the lr=0.02 cells cannot join the π sweep
    assert [len(i) for i in group_replicas(cells, 4)] == [4, 2, 3]
    assert all(len(i) == 1 for i in group_replicas(cells, 1))
    # scheduled sampling has no replica support; a mixture model does not provide vmap.
    other = grid(reg, objectives="ml", tasks="mixture", models="gaussian_mixture", seeds="3")
    assert all(len(i) == 1 for i in group_replicas(other, 32))
    skipped = grid(reg, objectives="scheduled_sampling", seeds="3")
    assert all(len(i) == 1 for i in group_replicas(skipped, 32))


def test_a_pi_sweep_trains_as_one_and_writes_one_file_per_cell(tmp_path):
    cells = grid(registry_with(), objectives="jspi[pi=[0.1,0.5,0.99]]", metrics="nll_oracle")
    report = run_grid(cells, tmp_path, CPU, replicas=32)
    assert report.counts["ok"] == 3
    files = sorted(tmp_path.glob("*.parquet"))
    assert {f.stem for f in files} == {c.cell_id for c in cells}
    meta = json.loads(pq.read_schema(files[0]).metadata[b"gbench"])
    assert sorted(meta["replicas"]) == sorted(c.cell_id for c in cells)
    rows = read_results([tmp_path], strict=True).frame
    alone = pd.DataFrame(run_cell(cells[0], CPU).rows)
    mine = rows[rows.cell_id == cells[0].cell_id]
    assert set(mine.metric) == set(alone.metric)
    assert sorted(mine.step.unique()) == sorted(alone.step.unique())
    # Each replica trains with its own π: its final nll_oracle is near the same cell run
    # alone (π = 0.1, 0.5, 0.99 end near 5.4, 4.0 and 2.7 at this budget; the random draws
    # differ, so not bit for bit).
    end = rows[rows.step == rows.step.max()].query("metric == 'nll_oracle'")
    batched = end.set_index("cell_id").value
    for cell in cells:
        alone = pd.DataFrame(run_cell(cell, CPU).rows).query("metric == 'nll_oracle'")
        assert abs(alone.value.iloc[-1] - batched[cell.cell_id]) < 0.4, cell.describe()


def test_a_replica_that_diverges_ends_alone():
    cells = grid(registry_with(NaNForSeedOne), objectives="nan_for_seed_one", seeds="3")
    outcomes = run_work(cells, CPU)
    assert [o.status for o in outcomes] == ["ok", "diverged", "ok"]
    assert "training loss became nan" in outcomes[1].error
    steps = pd.DataFrame(outcomes[1].rows).step
    assert steps.max() < cells[0].budget.steps  # it stopped recording when it diverged


def test_replicas_run_in_worker_processes_too(tmp_path):
    cells = grid(registry_with(), models="gaussian", seeds="4")
    report = run_grid(cells, tmp_path / "pool", CPU, jobs=2, replicas=2)
    inline = run_grid(cells, tmp_path / "inline", CPU, replicas=2)
    assert report.counts["ok"] == inline.counts["ok"] == 4
    cols = ["cell_id", "step", "metric", "value"]
    a, b = (
        read_results([tmp_path / d], strict=True).frame[cols].sort_values(cols[:3])
        for d in ("pool", "inline")
    )
    assert a.reset_index(drop=True).equals(b.reset_index(drop=True))


def test_the_cli_batches_by_default_and_replicas_1_runs_cells_alone(gbench, tmp_path):
    args = ["run", "--objectives", "ml", "--tasks", "gaussian", "--models", "gaussian"]
    args += ["--metrics", "nll_test", "--seeds", "2", "--budget", "smoke"]
    assert gbench(*args, "--out", str(tmp_path / "a")).code == 0
    assert gbench(*args, "--out", str(tmp_path / "b"), "--replicas", "1").code == 0
    for folder, batched in (("a", True), ("b", False)):
        for path in (tmp_path / folder).glob("*.parquet"):
            meta = json.loads(pq.read_schema(path).metadata[b"gbench"])
            assert ("replicas" in meta) is batched
    bad = gbench(*args, "--out", str(tmp_path / "c"), "--replicas", "0")
    assert bad.code == 2 and "--replicas" in bad.err
