"""The Parquet schema, atomic writes, and reading a folder that holds bad files."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from helpers import grid, registry_with

from benchmark_core.contract.errors import ResultsError
from benchmark_core.engine.runner import run_cell
from benchmark_core.results.store import COLUMNS, SCHEMA_VERSION, read_results, write_cell


@pytest.fixture(scope="module")
def outcome_and_cell():
    [cell] = grid(registry_with(), tasks="gaussian[a=2]", models="gaussian")
    return cell, run_cell(cell, torch.device("cpu"))


def test_written_cell_reads_back_tidy_with_schema_and_directions(tmp_path, outcome_and_cell):
    cell, out = outcome_and_cell
    path = write_cell(tmp_path, cell.cell_id, out.rows, {"directions": out.directions})
    assert path.name == f"{cell.cell_id}.parquet"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind
    meta = json.loads(pq.read_schema(path).metadata[b"gbench"])
    assert meta["schema_version"] == SCHEMA_VERSION
    assert meta["directions"]["nll_test"] == "min" and meta["directions"]["mean_0"] == "none"
    res = read_results([tmp_path])
    assert res.problems == [] and list(res.frame.columns) == COLUMNS
    df = res.frame
    assert set(df.cell_id) == {cell.cell_id} and (df.status == "ok").all()
    row = df.query("metric == 'nll_test' and step == 300").iloc[0]
    assert row.task == "gaussian" and row.task_label == "gaussian[a=2]" and row.model == "gaussian"
    assert row.objective == "ml" and row.label == "ml" and row.budget == "smoke" and row.seed == 0
    assert json.loads(row.params)["task"]["a"] == 2.0
    assert row.metric_source == "nll_test" and row.stderr > 0
    assert row.metric_plugin == "gbench" and row.task_plugin == "gbench"
    assert row.device == "cpu" and row.torch_version == torch.__version__
    # pandas reads the folder directly too
    assert len(pd.read_parquet(tmp_path)) == len(df)


def test_corrupt_and_foreign_files_are_reported_by_name(tmp_path, outcome_and_cell):
    cell, out = outcome_and_cell
    write_cell(tmp_path, cell.cell_id, out.rows, {"directions": out.directions})
    (tmp_path / "truncated.parquet").write_bytes(b"PAR1 not really")
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "foreign.parquet")
    (tmp_path / ".abc.parquet.tmp").write_bytes(b"half written")  # a temporary is never read
    res = read_results([tmp_path])
    assert len(res.problems) == 2
    assert any(
        "truncated.parquet" in p and "not a readable Parquet file" in p for p in res.problems
    )
    assert any("foreign.parquet" in p and "not a gbench result" in p for p in res.problems)
    assert set(res.frame.cell_id) == {cell.cell_id}
    with pytest.raises(ResultsError, match="foreign.parquet|truncated.parquet"):
        read_results([tmp_path], strict=True)


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch, outcome_and_cell):
    cell, out = outcome_and_cell

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError):
        write_cell(tmp_path, cell.cell_id, out.rows, {})
    assert list(tmp_path.iterdir()) == []


def _with_meta(path, table, meta_bytes):
    pq.write_table(table.replace_schema_metadata({b"gbench": meta_bytes}), path)


def _deep(depth):
    return ("[" * depth + "]" * depth).encode()


#: Malformed gbench metadata or columns: each file is foreign, named and left out.
HOSTILE_META = {
    "a list": (b"[1]", None, "not an object"),
    "null": (b"null", None, "not an object"),
    "a string": (b'"gbench"', None, "not an object"),
    "directions a list": (b'{"schema_version": 1, "directions": ["min"]}', None, "directions"),
    "directions null": (b'{"schema_version": 1, "directions": null}', None, "directions"),
    "direction evil": (
        b'{"schema_version": 1, "directions": {"nll_test": "evil"}}',
        None,
        "directions",
    ),
    "direction a number": (b'{"schema_version": 1, "directions": {"x": 1}}', None, "directions"),
    "schema version a dict": (b'{"schema_version": {"a": 1}}', None, "schema version"),
    "deep JSON": (_deep(100_000), None, "not valid JSON"),
    "bad UTF-8": (b'{"schema_version": 1, "x": "\xff"}', None, "not valid JSON"),
    "value a string": (b'{"schema_version": 1}', ("value", pa.string()), "wrong type"),
    "seed a float": (b'{"schema_version": 1}', ("seed", pa.float64()), "wrong type"),
    "status evil": (b'{"schema_version": 1}', ("status", "evil"), "status"),
}


@pytest.mark.parametrize("case", list(HOSTILE_META))
def test_a_file_with_malformed_gbench_metadata_is_foreign_named_and_left_out(
    tmp_path, outcome_and_cell, case
):
    cell, out = outcome_and_cell
    write_cell(tmp_path, cell.cell_id, out.rows, {"directions": out.directions})
    good = pq.read_table(tmp_path / f"{cell.cell_id}.parquet")
    meta, column, words = HOSTILE_META[case]
    table = good
    if column is not None:
        name, kind = column
        i = table.schema.get_field_index(name)
        if kind == "evil":
            table = table.set_column(i, name, pa.array(["evil"] * len(table)))
        else:
            table = table.set_column(i, name, table.column(name).cast(kind))
    _with_meta(tmp_path / "hostile.parquet", table, meta)
    res = read_results([tmp_path])
    [problem] = res.problems
    assert "hostile.parquet" in problem and words in problem, problem
    assert set(res.frame.cell_id) == {cell.cell_id} and len(res.frame) == len(out.rows)
    assert res.directions["nll_test"] == "min"


def test_things_that_are_not_files_are_named_and_never_opened(tmp_path, outcome_and_cell):
    import os

    cell, out = outcome_and_cell
    write_cell(tmp_path, cell.cell_id, out.rows, {"directions": out.directions})
    os.mkfifo(tmp_path / "fifo.parquet")  # reading it would wait forever for a writer
    (tmp_path / "folder.parquet").mkdir()
    res = read_results([tmp_path])
    assert sorted(p.split(":")[0].rsplit("/", 1)[-1] for p in res.problems) == [
        "fifo.parquet",
        "folder.parquet",
    ]
    assert all("not a regular file" in p for p in res.problems)
    assert set(res.frame.cell_id) == {cell.cell_id}


def test_gbench_run_and_leaderboard_name_a_hostile_file_and_go_on(tmp_path, gbench):
    out = tmp_path / "r"
    args = ["--objectives", "ml", "--tasks", "gaussian", "--models", "isotropic_gaussian"]
    first = gbench("run", *args, "--budget", "smoke", "--metrics", "nll_test", "--out", str(out))
    assert first.code == 0, first.err
    _with_meta(out / "evil.parquet", pa.table({"x": [1]}), b"[1]")
    again = gbench("run", *args, "--budget", "smoke", "--metrics", "nll_test", "--out", str(out))
    assert again.code == 0, again.err
    assert "evil.parquet" in again.err and "Traceback" not in again.err
    board = gbench("leaderboard", str(out))
    assert board.code == 0, board.err
    assert "evil.parquet" in board.err and "isotropic_gaussian" in board.out


def test_result_files_get_the_users_umask_and_the_folder_is_flushed(
    tmp_path, monkeypatch, outcome_and_cell
):
    import os
    import stat

    cell, out = outcome_and_cell
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    for mask, mode in ((0o022, 0o644), (0o027, 0o640), (0o077, 0o600)):
        old = os.umask(mask)
        try:
            path = write_cell(tmp_path / oct(mask), cell.cell_id, out.rows, {})
        finally:
            os.umask(old)
        assert stat.S_IMODE(path.stat().st_mode) == mode
    assert synced == [False, True] * 3  # the file, then its folder after the rename


def test_pyarrow_is_required_past_the_version_with_cve_2023_47248():
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    [arrow] = [Requirement(d) for d in deps if Requirement(d).name == "pyarrow"]
    assert "14.0.0" not in arrow.specifier and "14.0.1" in arrow.specifier


def test_reading_says_which_metrics_mix_plugin_versions(tmp_path, outcome_and_cell):
    cell, out = outcome_and_cell
    write_cell(tmp_path, cell.cell_id, out.rows, {"directions": out.directions})
    assert read_results([tmp_path]).mixed_metric_versions() == {}
    newer = [
        {**r, "cell_id": "newer", "metric_plugin_version": "9.9"}
        if r["metric_source"] == "nll_test"
        else {**r, "cell_id": "newer"}
        for r in out.rows
    ]
    write_cell(tmp_path, "newer", newer, {"directions": out.directions})
    res = read_results([tmp_path])
    assert res.mixed_metric_versions() == {
        "nll_test": sorted([out.rows[0]["gbench_version"], "9.9"])
    }
