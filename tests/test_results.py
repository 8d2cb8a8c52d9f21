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
