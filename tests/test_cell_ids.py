"""What decides that a cell is current: the content of the files it reads, and the versions of
the metrics that computed its values."""

import json

import pytest
import torch

from benchmark_core.engine.executors import plan, run_grid
from benchmark_core.engine.grid import build_grid
from benchmark_core.engine.selection import parse_seeds, parse_selection
from benchmark_core.registry import Entry, PluginInfo, load_registry


@pytest.fixture(scope="module")
def registry():
    return load_registry({"GBENCH_LOAD_PLUGINS": ""})


def cells(registry, task, metrics="nll_test", model="isotropic_gaussian", objective="ml"):
    return build_grid(
        registry,
        parse_selection(objective),
        parse_selection(task),
        parse_selection(model),
        parse_selection(metrics),
        parse_seeds("1"),
        "smoke",
    )


def test_a_cell_that_reads_a_file_is_named_by_the_files_content_not_its_path(registry, tmp_path):
    table = tmp_path / "table.json"
    write = lambda rows: table.write_text(json.dumps(rows))  # noqa: E731
    write([[0.5, 0.1], [0.1, 0.3]])
    models = "tabular"
    first = cells(registry, f"pairs[table={table}]", model=models)[0].cell_id
    again = cells(registry, f"pairs[table={table}]", model=models)[0].cell_id
    assert first == again  # the same file: the same cell
    write([[0.25, 0.25], [0.25, 0.25]])
    changed = cells(registry, f"pairs[table={table}]", model=models)[0].cell_id
    assert changed != first  # new content: a new cell, never "done earlier"
    write([[0.5, 0.1], [0.1, 0.3]])
    assert cells(registry, f"pairs[table={table}]", model=models)[0].cell_id == first


def test_cells_that_read_no_file_keep_their_ids(registry):
    # The id of a cell with no file parameter is the hash it always was (results stay current).
    [cell] = cells(registry, "gaussian")
    assert cell.cell_id == cells(registry, "gaussian")[0].cell_id
    assert registry.get("task", "pairs").cls.param_spec["table"].file


def test_a_metric_whose_plugin_version_changed_is_named_by_the_run(registry, tmp_path):
    [cell] = cells(registry, "gaussian", metrics="nll_test,moments")
    report = run_grid([cell], tmp_path, torch.device("cpu"))
    assert report.counts["ok"] == 1
    _, notes = plan([cell], tmp_path, force=False)
    assert notes == []
    bumped = load_registry({"GBENCH_LOAD_PLUGINS": ""})
    old = bumped.of_kind("metric")["nll_test"]
    newer = PluginInfo(old.plugin.name, old.plugin.module, "gbench", "99.0", builtin=True)
    bumped.components["metric"]["nll_test"] = Entry("metric", old.cls, newer)
    [again] = cells(bumped, "gaussian", metrics="nll_test,moments")
    assert again.cell_id == cell.cell_id  # the metric is not in the id: the cell is done...
    actions, notes = plan([again], tmp_path, force=False)
    assert actions == [(again, "done")]
    [note] = notes  # ...but the run says that its nll_test values are from the old version
    assert "metric 'nll_test'" in note and "version 99.0 is installed" in note
    assert cell.cell_id in note and "--force" in note
