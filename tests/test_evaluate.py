"""``gbench evaluate``: metrics on stored checkpoints, equal to computing them while training."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch
from checkpoint_helpers import frame, meta, write_payload_pickle

from benchmark_core.results import checkpoints
from benchmark_core.results.store import read_file, write_cell

BASE = ["run", "--objectives", "ml,reverse_kl", "--tasks", "gaussian", "--seeds", "2"]
BASE += ["--models", "isotropic_gaussian,gaussian", "--budget", "smoke"]
ADDED = "nll_oracle,kl_reverse"
KEY = ["cell_id", "step", "metric"]


def _rows(df, metrics):
    keep = df[df.metric_source.isin(metrics.split(","))]
    return keep.sort_values(KEY).reset_index(drop=True)


@pytest.fixture(scope="module")
def from_the_start(tmp_path_factory):
    """The grid run with every metric from the start, keeping every checkpoint."""
    from benchmark_core.cli.main import main

    out = tmp_path_factory.mktemp("start") / "res"
    main([*BASE, "--metrics", f"nll_test,{ADDED}", "--checkpoints", "all", "--out", str(out)])
    return out


def _same(a, b, columns=("value", "stderr")):
    assert len(a) == len(b) and a[KEY].equals(b[KEY])
    for col in columns:
        assert a[col].equals(b[col]), col  # bit for bit (NaN stderr of exact values included)


def test_evaluate_adds_metrics_bit_for_bit_as_if_run_from_the_start(
    gbench, tmp_path, from_the_start
):
    out = tmp_path / "res"
    assert (
        gbench(*BASE, "--metrics", "nll_test", "--checkpoints", "all", "--out", str(out)).code == 0
    )
    trained = {f.name: f.stat().st_mtime_ns for f in out.glob("*.parquet")}
    got = gbench("evaluate", str(out), "--metrics", ADDED, "-j", "2")
    assert got.code == 0, got.err
    assert got.out.count("updated") == len(trained) + 1  # one line per cell, and the summary

    start, now = frame(from_the_start), frame(out)
    _same(_rows(now, ADDED), _rows(start, ADDED))
    _same(_rows(now, "objective,nll_test"), _rows(start, "objective,nll_test"))
    for f in out.glob("*.parquet"):  # the same training, so the same checkpoints
        mine = checkpoints.read(out, meta(f)["checkpoint"], f.stem).states
        record = meta(from_the_start / f.name)["checkpoint"]
        theirs = checkpoints.read(from_the_start, record, f.stem).states
        assert mine.keys() == theirs.keys() == {0, 150, 300}
        assert all(torch.equal(mine[s][k], theirs[s][k]) for s in mine for k in mine[s])
        assert set(meta(f)["directions"]) >= {"nll_oracle", "kl_reverse"}
    again = gbench("evaluate", str(out), "--metrics", ADDED)
    assert again.code == 0 and "current: 8" in again.out
    assert {f.name: f.stat().st_mtime_ns for f in out.glob("*.parquet")} != trained
    mtimes = {f.name: f.stat().st_mtime_ns for f in out.glob("*.parquet")}
    gbench("evaluate", str(out), "--metrics", ADDED)
    assert {f.name: f.stat().st_mtime_ns for f in out.glob("*.parquet")} == mtimes  # resumable


def test_with_final_checkpoints_the_metric_is_added_at_the_final_step(
    gbench, tmp_path, from_the_start
):
    out = tmp_path / "res"
    args = [*BASE, "--metrics", "nll_test", "--checkpoints", "final", "--out", str(out)]
    assert gbench(*args).code == 0
    assert gbench("evaluate", str(out), "--metrics", ADDED).code == 0
    start = _rows(frame(from_the_start), ADDED)
    _same(_rows(frame(out), ADDED), start[start.step == 300].reset_index(drop=True))


def _set_rows(path, change):
    frame_, meta_ = read_file(path)
    rows = [change(dict(r)) for r in frame_.to_dict("records")]
    for row in rows:
        for key in ("error", "metric_source", "metric_plugin", "metric_plugin_version"):
            if row[key] != row[key]:
                row[key] = None
    write_cell(
        path.parent, path.stem, rows, {k: v for k, v in meta_.items() if k != "schema_version"}
    )


def test_a_metric_version_bump_reevaluates_that_metric_only(gbench, tmp_path, from_the_start):
    out = tmp_path / "res"
    shutil.copytree(from_the_start, out)

    def bump(row):
        if row["metric_source"] == "nll_oracle":  # stored by an older version of its plugin
            row.update(metric_plugin_version="0.0.1", value=-1.0)
        elif row["metric_source"] == "nll_test":  # current: a sentinel shows it is not redone
            row.update(value=123.0)
        return row

    for path in out.glob("*.parquet"):
        _set_rows(path, bump)
    got = gbench("evaluate", str(out), "--metrics", "nll_test,nll_oracle,kl_reverse")
    assert got.code == 0, got.err
    updated = [line for line in got.out.splitlines() if line.strip().startswith("updated ")]
    assert len(updated) == 8 and all(line.endswith(": nll_oracle") for line in updated)

    now, start = frame(out), frame(from_the_start)
    _same(_rows(now, "nll_oracle"), _rows(start, "nll_oracle"))
    assert set(_rows(now, "nll_oracle").metric_plugin_version) == set(
        _rows(start, "nll_oracle").metric_plugin_version
    )
    assert (_rows(now, "nll_test").value == 123.0).all()
    _same(_rows(now, "kl_reverse"), _rows(start, "kl_reverse"))


def test_each_replica_checkpoint_reproduces_its_stored_values(gbench, tmp_path):
    out = tmp_path / "res"
    args = ["run", "--objectives", "reverse_kl", "--tasks", "gaussian", "--models", "gaussian"]
    args += ["--seeds", "3", "--budget", "smoke", "--metrics", "nll_test,nll_oracle"]
    assert gbench(*args, "--checkpoints", "all", "--out", str(out)).code == 0
    assert all(len(meta(f)["replicas"]) == 3 for f in out.glob("*.parquet"))
    before = _rows(frame(out), "nll_test,nll_oracle")
    got = gbench("evaluate", str(out), "--metrics", "nll_test,nll_oracle", "--force")
    assert got.code == 0 and "updated: 3" in got.out
    _same(_rows(frame(out), "nll_test,nll_oracle"), before)


@pytest.fixture
def one_cell(gbench, tmp_path):
    out = tmp_path / "res"
    args = ["run", "--objectives", "ml", "--tasks", "gaussian", "--models", "isotropic_gaussian"]
    args += ["--budget", "smoke", "--metrics", "nll_test", "--out", str(out)]
    assert gbench(*args, "--checkpoints", "final").code == 0
    (path,) = out.glob("*.parquet")
    return out, path


def _replace_checkpoint(path, data: bytes) -> None:
    """Hand over a folder whose checkpoint was swapped and its recorded hash updated to match."""
    frame_, meta_ = read_file(path)
    ckpt = path.parent / meta_["checkpoint"]["file"]
    ckpt.write_bytes(data)
    meta_["checkpoint"]["sha256"] = hashlib.sha256(data).hexdigest()
    meta_.pop("schema_version")
    rows = json.loads(frame_.to_json(orient="records"))
    write_cell(path.parent, path.stem, rows, meta_)


def test_a_tampered_or_missing_checkpoint_is_named_and_nothing_runs(gbench, tmp_path, one_cell):
    out, path = one_cell
    ckpt = out / meta(path)["checkpoint"]["file"]
    marker = tmp_path / "executed"
    payload = tmp_path / "payload.pkl"
    write_payload_pickle(payload, marker)
    _replace_checkpoint(path, payload.read_bytes())
    got = gbench("evaluate", str(out), "--metrics", "nll_oracle")
    assert got.code == 1 and f"{ckpt}: a pickle or torch.save archive" in got.err
    assert not marker.exists()

    wide = {"mu": torch.zeros(5), "log_s": torch.zeros(())}
    _replace_checkpoint(path, checkpoints.pack({300: wide}, path.stem))
    got = gbench("evaluate", str(out), "--metrics", "nll_oracle")
    assert got.code == 1 and f"{ckpt}: checkpoint does not fit the model" in got.err
    assert "mu is (5,), the model's (2,)" in got.err

    ckpt.unlink()
    got = gbench("evaluate", str(out), "--metrics", "nll_oracle")
    assert got.code == 1 and f"{ckpt}: checkpoint missing" in got.err
    assert "nll_oracle" not in set(frame(out).metric_source)


def test_a_cell_without_a_checkpoint_says_how_to_keep_one(gbench, tmp_path):
    out = tmp_path / "res"
    args = ["run", "--objectives", "ml", "--tasks", "gaussian", "--models", "isotropic_gaussian"]
    assert gbench(*args, "--budget", "smoke", "--metrics", "nll_test", "--out", str(out)).code == 0
    got = gbench("evaluate", str(out), "--metrics", "nll_test,nll_oracle")
    assert got.code == 1 and "no checkpoint kept; nll_oracle not computed" in got.err
    assert "--checkpoints final" in got.err
    assert gbench("evaluate", str(tmp_path / "nope")).code == 2
