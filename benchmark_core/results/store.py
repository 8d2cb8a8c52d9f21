"""The result schema, atomic per-cell Parquet files, and reading a results folder.

Each cell's rows go to ``<out>/<cell_id>.parquet``, written to a hidden temporary file in the
same folder, flushed to disk and renamed over the final name, so a reader sees either the
whole file or none of it. Nothing is ever unpickled: Parquet holds plain columns, and the
metadata is JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmark_core.contract.errors import ResultsError

SCHEMA_VERSION = 1
METADATA_KEY = b"gbench"

STATUSES = ("ok", "skipped", "metric_error", "error", "diverged", "timeout", "interrupted")
FAILED = ("metric_error", "error", "diverged", "timeout", "interrupted")

_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("cell_id", pa.string()),
    ("task", pa.string()),
    ("task_label", pa.string()),
    ("model", pa.string()),
    ("model_label", pa.string()),
    ("objective", pa.string()),
    ("label", pa.string()),
    ("params", pa.string()),
    ("seed", pa.int64()),
    ("budget", pa.string()),
    ("step", pa.int64()),
    ("metric", pa.string()),
    ("metric_source", pa.string()),
    ("value", pa.float64()),
    ("stderr", pa.float64()),
    ("status", pa.string()),
    ("error", pa.string()),
    ("wall_time_s", pa.float64()),
    ("device", pa.string()),
    ("started_at", pa.string()),
    ("gbench_version", pa.string()),
    ("torch_version", pa.string()),
]
for _role in ("task", "model", "objective", "metric"):
    _COLUMNS += [(f"{_role}_plugin", pa.string()), (f"{_role}_plugin_version", pa.string())]

SCHEMA = pa.schema(_COLUMNS)
COLUMNS = [name for name, _ in _COLUMNS]


def write_cell(
    out_dir: Path, cell_id: str, rows: list[dict[str, Any]], meta: dict[str, Any]
) -> Path:
    """Write one cell's rows atomically to ``out_dir/<cell_id>.parquet``; return the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows], schema=SCHEMA)
    metadata = {"schema_version": SCHEMA_VERSION, **meta}
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata).encode()})
    final = out_dir / f"{cell_id}.parquet"
    fd, tmp = tempfile.mkstemp(prefix=f".{cell_id}.", suffix=".tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def result_files(folder: Path) -> list[Path]:
    """The result files of a folder: visible ``*.parquet`` files (temporaries are hidden)."""
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def _gbench_metadata(path: Path, schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ResultsError(f"{path}: a Parquet file, but not a gbench result (no gbench metadata)")
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise ResultsError(f"{path}: its gbench metadata is not valid JSON") from exc
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: result schema version {version}, but this gbench reads version "
            f"{SCHEMA_VERSION}; rerun the cell with --force or use a matching gbench"
        )
    missing = [c for c in COLUMNS if c not in schema.names]
    if missing:
        raise ResultsError(f"{path}: missing columns {', '.join(missing)}")
    return meta


def _unreadable(path: Path, exc: Exception) -> ResultsError:
    return ResultsError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})")


def read_file(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read one result file; raise ResultsError naming the file if it is not one."""
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    return table.to_pandas(), _gbench_metadata(path, table.schema)


def check_file(path: Path) -> None:
    """Check a result file's footer and metadata without reading its rows."""
    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    _gbench_metadata(path, schema)


@dataclass
class Results:
    """A results folder, read: the rows, the metric directions, and any unreadable files."""

    frame: pd.DataFrame
    directions: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_results(paths: Iterable[Path | str], strict: bool = False) -> Results:
    """Read every result file under ``paths`` (folders or files).

    Unreadable or foreign files are listed in ``problems`` by name (or raise ResultsError
    when ``strict``); they are never silently dropped.
    """
    frames, directions, problems = [], {}, []
    for path in map(Path, paths):
        if not path.exists():
            raise ResultsError(f"{path}: no such file or folder")
        for file in result_files(path) if path.is_dir() else [path]:
            try:
                frame, meta = read_file(file)
            except ResultsError as exc:
                if strict:
                    raise
                problems.append(str(exc))
                continue
            frames.append(frame)
            directions.update(meta.get("directions", {}))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return Results(frame, directions, problems)


def cell_state(out_dir: Path, cell_id: str) -> tuple[str | None, set[str], str | None]:
    """The status and metric sources recorded for a cell, or (None, ..., problem)."""
    path = out_dir / f"{cell_id}.parquet"
    if not path.exists():
        return None, set(), None
    try:
        frame, _ = read_file(path)
    except ResultsError as exc:
        return None, set(), str(exc)
    status = str(frame["status"].iloc[0]) if len(frame) else None
    return status, set(frame["metric_source"].dropna()), None
