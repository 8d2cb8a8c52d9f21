"""Warm starts: objective[init=source] selections, shared sources, waves, resume and failures."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
from checkpoint_helpers import cli, frame, meta, value, write_payload_pickle

from benchmark_core.contract.errors import UsageError
from benchmark_core.engine.grid import build_grid
from benchmark_core.engine.selection import expand, parse_seeds, parse_selection
from benchmark_core.engine.warm import check_warm_starts
from benchmark_core.engine.waves import run_waves
from benchmark_core.registry import Entry, PluginInfo, load_registry

SMOKE = ["--budget", "smoke", "--metrics", "nll_test"]


@pytest.fixture(scope="module")
def registry():
    return load_registry({"GBENCH_LOAD_PLUGINS": ""})


def _grid(registry, objectives, tasks="gaussian", models="gaussian", seeds="2"):
    return build_grid(
        registry,
        parse_selection(objectives),
        parse_selection(tasks),
        parse_selection(models),
        parse_selection("nll_test"),
        parse_seeds(seeds),
        "smoke",
    )


def test_each_source_is_one_ordinary_cell_shared_by_its_fine_tunes(registry):
    cells = _grid(registry, "ml,reverse_kl[init=ml],jspi_exact[pi=0.99,init=ml]")
    labels = [c.objective.label for c in cells]
    assert labels == ["ml"] * 2 + ["reverse_kl[init=ml]"] * 2 + ["jspi_exact[pi=0.99,init=ml]"] * 2
    ml = {c.seed: c for c in cells if c.init is None}
    for cell in cells[2:]:
        assert cell.init.cell_id == ml[cell.seed].cell_id
        assert cell.params["init"] == {"cell_id": ml[cell.seed].cell_id, "objective": "ml"}
        assert cell.checkpoints == "none"
    assert all(c.checkpoints == "final" for c in ml.values())  # a source keeps its model
    # Left out of the selection, the source is added, with the same id.
    alone = _grid(registry, "reverse_kl[init=ml],jspi_exact[pi=0.99,init=ml]")
    assert {c.cell_id for c in alone} == {c.cell_id for c in cells} and len(alone) == 6
    # A warm start is a different cell from the cold one, and its id follows its source's.
    cold = _grid(registry, "reverse_kl")
    other = _grid(registry, 'reverse_kl[init="ml[lr=0.01]"]')
    ids = [{c.cell_id for c in g if c.objective.name == "reverse_kl"} for g in (cells, cold, other)]
    assert len(ids[0] | ids[1] | ids[2]) == 6
    assert other[-1].objective.label == 'reverse_kl[init="ml[lr=0.01]"]'


def test_a_list_of_sources_sweeps_and_chains_resolve_sources_first(registry):
    cells = _grid(registry, 'reverse_kl[init=[ml,"ml[lr=0.01]"]]', seeds="1")
    assert [c.objective.label for c in cells] == [
        "ml",
        "reverse_kl[init=ml]",
        "ml[lr=0.01]",
        'reverse_kl[init="ml[lr=0.01]"]',
    ]
    assert cells[1].init.cell_id == cells[0].cell_id and cells[3].init.cell_id == cells[2].cell_id
    chain = _grid(registry, 'jspi_exact[init="reverse_kl[init=ml]"]', seeds="1")
    assert [c.objective.name for c in chain] == ["ml", "reverse_kl", "jspi_exact"]
    assert chain[2].init.cell_id == chain[1].cell_id and chain[1].init.cell_id == chain[0].cell_id


@pytest.mark.parametrize(
    ("objectives", "message"),
    [
        ("reverse_kl[init=mll]", "Did you mean 'ml'"),
        ("reverse_kl[init=3]", "init names the objective"),
        ("reverse_kl[init=all]", "name the objective to start from"),
        ('reverse_kl[init="ml[lr=-1]"]', "lr"),
    ],
)
def test_a_bad_source_is_a_usage_error_before_anything_runs(gbench, tmp_path, objectives, message):
    out = tmp_path / "res"
    got = gbench(
        "run", "--objectives", objectives, "--tasks", "gaussian", *SMOKE, "--out", str(out)
    )
    assert got.code == 2 and message in got.err, got.err
    assert "Traceback" not in got.err and not out.exists()


def test_a_source_with_another_model_is_a_usage_error(registry, tmp_path):
    cells = _grid(registry, "reverse_kl[init=ml]", seeds="1")
    (other,) = expand("model", parse_selection("isotropic_gaussian"), registry)
    bad = [cells[0], replace(cells[1], model=other)]
    with pytest.raises(UsageError, match="their models differ"):
        check_warm_starts(bad)
    with pytest.raises(UsageError, match="their models differ"):
        run_waves(bad, tmp_path / "res", torch.device("cpu"))
    assert not (tmp_path / "res").exists()


def test_a_source_that_cannot_run_skips_its_fine_tunes_and_dry_run_shows_why(
    registry, gbench, tmp_path
):
    source, fine = _grid(registry, "ml[init=scheduled_sampling]", seeds="1")
    assert source.skip_reason and fine.init.cell_id == source.cell_id
    assert fine.skip_reason == (
        f"its warm-start source scheduled_sampling is skipped: {source.skip_reason}"
    )
    args = ["run", "--objectives", "ml[init=scheduled_sampling]", "--tasks", "gaussian"]
    got = gbench(*args, "--models", "gaussian", *SMOKE, "--dry-run", "--out", str(tmp_path))
    assert got.code == 0
    assert f"{fine.cell_id} starts from {source.cell_id} (scheduled_sampling, seed 0)" in got.out


class _Broken:
    """An ml that fails at its first step (a source that ends ``error``)."""

    name = "broken_ml"

    def step(self, batch, step):
        raise RuntimeError("boom")


def test_a_failed_source_records_its_fine_tunes_skipped_with_the_reason(registry, tmp_path):
    ml = registry.get("objective", "ml").cls
    broken = type("BrokenML", (_Broken, ml), {"description": "fails"})
    info = PluginInfo("tests", "tests", "gbench-tests", "0.0", builtin=False)
    registry.components["objective"]["broken_ml"] = Entry("objective", broken, info)
    try:
        cells = _grid(registry, "reverse_kl[init=broken_ml]", seeds="1")
        report = run_waves(cells, tmp_path, torch.device("cpu"))
    finally:
        del registry.components["objective"]["broken_ml"]
    assert report.counts == {"error": 1, "skipped": 1}
    df = frame(tmp_path)
    dependent = df[df.cell_id == cells[1].cell_id]
    assert (dependent.status == "skipped").all()
    assert "its warm-start source cannot be used" in dependent.error.iloc[0]
    assert "ended error" in dependent.error.iloc[0]


def _starts_where_its_source_ended(df, cells_by_label):
    """Each fine-tune's step 0 is its own seed's source model at its last step."""
    ok = df[df.status == "ok"]
    sources = ok[ok.label == "ml"].groupby("seed").cell_id.first()
    final = int(ok[ok.label == "ml"].step.max())
    finals = {s: value(df, cid, "nll_test", final) for s, cid in sources.items()}
    assert len(set(finals.values())) == len(finals)  # the seeds' sources differ
    for label in cells_by_label:
        for row in ok[
            (ok.label == label) & (ok.metric == "nll_test") & (ok.step == 0)
        ].itertuples():
            assert row.value == finals[row.seed], (label, row.seed)


GRID = ["run", "--objectives", "ml,reverse_kl[init=ml],jspi_exact[pi=0.99,init=ml]"]
GRID += ["--tasks", "gaussian", "--models", "gaussian", "--seeds", "2", *SMOKE]


@pytest.mark.slow
def test_warm_starts_under_two_workers_train_each_source_once_and_match_one_worker(tmp_path):
    outs = {}
    for jobs in ("2", "1"):
        out = tmp_path / f"j{jobs}"
        got = cli(*GRID, "-j", jobs, "--replicas", "1", "--out", str(out))
        assert got.returncode == 0, got.stderr
        outs[jobs] = frame(out)
        files = sorted(out.glob("*.parquet"))
        assert len(files) == 6
        sources = {f.stem for f in files if "checkpoint" in meta(f)}
        assert {p.stem for p in (out / "checkpoints").iterdir()} == sources and len(sources) == 2
        df = outs[jobs]
        assert df[df.label == "ml"].cell_id.nunique() == 2  # ml once per seed
        _starts_where_its_source_ended(df, ["reverse_kl[init=ml]", "jspi_exact[pi=0.99,init=ml]"])
    key = ["cell_id", "step", "metric"]
    a, b = (outs[j].sort_values(key).reset_index(drop=True) for j in ("2", "1"))
    assert a[key].equals(b[key]) and a.value.equals(b.value)


@pytest.mark.slow
def test_warm_starts_train_as_replica_batches(gbench, tmp_path):
    out = tmp_path / "res"
    assert gbench(*GRID, "--out", str(out)).code == 0
    replicas = [meta(f).get("replicas") for f in sorted(out.glob("*.parquet"))]
    assert all(r is not None and len(r) == 2 for r in replicas)  # the seeds trained together
    _starts_where_its_source_ended(
        frame(out), ["reverse_kl[init=ml]", "jspi_exact[pi=0.99,init=ml]"]
    )


KILL_GRID = ["run", "--objectives", "ml,reverse_kl[init=ml]", "--tasks", "gaussian[a=[1,2,3]]"]
KILL_GRID += ["--models", "isotropic_gaussian", "--seeds", "2", "--replicas", "1", *SMOKE]


@pytest.mark.slow
def test_kill_mid_grid_then_rerun_trains_nothing_twice(tmp_path):
    out = tmp_path / "res"
    exe = [sys.executable, "-m", "benchmark_core.cli.main", *KILL_GRID, "--out", str(out)]
    proc = subprocess.Popen(exe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while len(list(out.glob("*.parquet"))) < 8 and time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("the grid finished before it could be killed; make it larger")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")}
    before_ckpt = {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("*")}
    assert 8 <= len(before) < 12

    again = cli(*KILL_GRID, "--out", str(out))
    assert again.returncode == 0, again.stderr
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")}
    assert len(after) == 12
    assert {k: after[k] for k in before} == before  # no finished cell was run or written again
    ckpts = {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("*")}
    assert len(ckpts) == 6 and {k: ckpts[k] for k in before_ckpt} == before_ckpt
    df = frame(out)
    assert (df.groupby("cell_id").status.first() == "ok").all()
    _starts_where_its_source_ended(df[df.task_label == "gaussian[a=2]"], ["reverse_kl[init=ml]"])


def test_a_bad_source_checkpoint_is_named_and_only_a_needed_source_reruns(gbench, tmp_path):
    out = tmp_path / "res"
    args = ["run", "--objectives", "reverse_kl[init=ml]", "--tasks", "gaussian", "--seeds", "2"]
    args += ["--models", "isotropic_gaussian", "--replicas", "1", *SMOKE, "--out", str(out)]
    assert gbench(*args).code == 0
    df = frame(out)
    source = {s: df[(df.label == "ml") & (df.seed == s)].cell_id.iloc[0] for s in (0, 1)}
    fine = {s: df[(df.label != "ml") & (df.seed == s)].cell_id.iloc[0] for s in (0, 1)}
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")}

    # Seed 0: its checkpoint is replaced by a pickle with a payload and its fine-tune is gone.
    marker = tmp_path / "executed"
    write_payload_pickle(out / "checkpoints" / f"{source[0]}.safetensors", marker)
    (out / f"{fine[0]}.parquet").unlink()
    # Seed 1: its checkpoint is gone, but its fine-tune is done, so nothing needs it.
    (out / "checkpoints" / f"{source[1]}.safetensors").unlink()

    got = gbench(*args)
    assert got.code == 0, got.err
    assert f"{source[0]}.safetensors: checkpoint corrupt or replaced" in got.err
    assert f"cell {source[0]}" in got.err and "is run again" in got.err
    assert source[1] not in got.err and not marker.exists()
    now = {p.name: p.stat().st_mtime_ns for p in out.glob("*.parquet")}
    assert now[f"{source[0]}.parquet"] != mtimes[f"{source[0]}.parquet"]  # rerun
    for cid in (source[1], fine[1]):
        assert now[f"{cid}.parquet"] == mtimes[f"{cid}.parquet"]  # untouched
    df = frame(out)
    assert (df.groupby("cell_id").status.first() == "ok").all()
    final = int(df.step.max())
    assert value(df, fine[0], "nll_test", 0) == value(df, source[0], "nll_test", final)


def test_a_task_declares_its_default_warm_starts_and_a_selection_overrides_them(registry):
    """Task.warm_starts: ``reverse_kl`` runs as ``reverse_kl[init=ml]`` on such a task, the
    ``ml`` source joins the grid once; ``init=none`` trains from scratch; an explicit init
    wins; other tasks are untouched."""
    from gbench_plugins.tasks.gaussian import GaussianTask

    class FineTuned(GaussianTask):
        name = "gaussian_finetuned"
        warm_starts = {"reverse_kl": "ml"}

    info = PluginInfo("tests", "tests", "gbench-tests", "0.0", builtin=False)
    reg = load_registry({"GBENCH_LOAD_PLUGINS": ""})
    reg.components["task"][FineTuned.name] = Entry("task", FineTuned, info)

    cells = _grid(reg, "reverse_kl,jspi_exact", tasks="gaussian_finetuned,gaussian", seeds="1")
    labels = sorted((c.task.name, c.objective.label) for c in cells)
    assert labels == [
        ("gaussian", "jspi_exact"),
        ("gaussian", "reverse_kl"),
        ("gaussian_finetuned", "jspi_exact"),
        ("gaussian_finetuned", "ml"),
        ("gaussian_finetuned", "reverse_kl[init=ml]"),
    ]
    fine = next(c for c in cells if c.objective.label == "reverse_kl[init=ml]")
    assert fine.init is not None and fine.init.objective.label == "ml"

    scratch = _grid(reg, "reverse_kl[init=none]", tasks="gaussian_finetuned", seeds="1")
    assert [(c.objective.label, c.init) for c in scratch] == [("reverse_kl", None)]
    plain = _grid(registry, "reverse_kl", seeds="1")
    assert scratch[0].cell_id != plain[0].cell_id  # the tasks differ, not the objective
    assert "init" not in scratch[0].objective.given

    chosen = _grid(reg, 'reverse_kl[init="ml[lr=0.01]"]', tasks="gaussian_finetuned", seeds="1")
    assert sorted(c.objective.label for c in chosen) == [
        "ml[lr=0.01]",
        'reverse_kl[init="ml[lr=0.01]"]',
    ]
