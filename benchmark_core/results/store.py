"""The result schema, atomic per-cell Parquet files, and reading a results folder.

Each cell's rows go to ``<out>/<cell_id>.parquet``, written to a hidden temporary file in the
same folder, flushed to disk and renamed over the final name, so a reader sees either the
whole file or none of it. Nothing is ever unpickled: Parquet holds plain columns, and the
metadata is JSON.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

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
DIRECTIONS = ("min", "max", "none")


def write_cell(
    out_dir: Path, cell_id: str, rows: list[dict[str, Any]], meta: dict[str, Any]
) -> Path:
    """Write one cell's rows atomically to ``out_dir/<cell_id>.parquet``; return the path.

    The file gets the permissions of any file the user creates (their umask), and the folder
    is flushed after the rename so that the new name survives a power cut too.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows], schema=SCHEMA)
    metadata = {"schema_version": SCHEMA_VERSION, **meta}
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata).encode()})
    final = out_dir / f"{cell_id}.parquet"
    fd, tmp = tempfile.mkstemp(prefix=f".{cell_id}.", suffix=".tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), 0o666 & ~_umask())  # mkstemp made it 0600
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(out_dir)
    return final


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for a moment, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform that cannot open folders (Windows): the rename is what it is
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise  # a folder that cannot be flushed for real (EIO, ENOSPC) is a failed write
    finally:
        os.close(fd)


def result_files(folder: Path) -> list[Path]:
    """The result files of a folder: visible ``*.parquet`` files (temporaries are hidden)."""
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def _gbench_metadata(path: Path, schema: pa.Schema) -> dict[str, Any]:
    """The file's gbench metadata, checked; ResultsError saying what is wrong if it is not."""
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ResultsError(f"{path}: a Parquet file, but not a gbench result (no gbench metadata)")
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ResultsError(f"{path}: its gbench metadata is not valid JSON") from exc
    if not isinstance(meta, dict):
        raise ResultsError(
            f"{path}: its gbench metadata is {type(meta).__name__} JSON, not an object: "
            "not a gbench result"
        )
    version = meta.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:  # not True, not 1.0
        raise ResultsError(
            f"{path}: result schema version {_short(version)}, but this gbench reads version "
            f"{SCHEMA_VERSION}; rerun the cell with --force or use a matching gbench"
        )
    directions = meta.get("directions", {})
    if not isinstance(directions, dict) or not all(
        isinstance(k, str) and d in DIRECTIONS for k, d in directions.items()
    ):
        raise ResultsError(
            f"{path}: its metric directions {_short(directions)} are not a map of metric "
            f"names to {', '.join(DIRECTIONS)}: not a gbench result"
        )
    _check_columns(path, schema)
    return meta


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_columns(path: Path, schema: pa.Schema) -> None:
    missing = [c for c in COLUMNS if c not in schema.names]
    if missing:
        raise ResultsError(f"{path}: missing columns {', '.join(missing)}")
    twice = [c for c in COLUMNS if schema.names.count(c) > 1]
    if twice:
        raise ResultsError(f"{path}: columns named twice: {', '.join(twice)}")
    wrong = [
        f"{name} is {schema.field(name).type}, not {kind}"
        for name, kind in _COLUMNS
        if not _fits(schema.field(name).type, kind)
    ]
    if wrong:
        raise ResultsError(f"{path}: columns of the wrong type ({'; '.join(wrong)})")


def _fits(found: pa.DataType, wanted: pa.DataType) -> bool:
    """Whether a column of type ``found`` reads as ``wanted`` (an all-null column always does)."""
    if pa.types.is_null(found):
        return True
    if pa.types.is_dictionary(found):
        found = found.value_type
    if pa.types.is_string(wanted):
        return pa.types.is_string(found) or pa.types.is_large_string(found)
    if pa.types.is_floating(wanted):
        return pa.types.is_floating(found) or pa.types.is_integer(found)
    return pa.types.is_integer(found)


def _unreadable(path: Path, exc: Exception) -> ResultsError:
    return ResultsError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})")


def read_file(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read one result file; raise ResultsError naming the file if it is not one."""
    _check_regular(path)
    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    meta = _gbench_metadata(path, schema)  # before the rows: a foreign file is not read
    try:
        table = pq.read_table(path, columns=COLUMNS)
        frame = table.to_pandas()
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    unknown = set(frame["status"].fillna("<none>")) - set(STATUSES)
    if unknown:
        raise ResultsError(
            f"{path}: status {_short(sorted(map(str, unknown)))} is not one of "
            f"{', '.join(STATUSES)}: not a gbench result"
        )
    return frame, meta


def _check_regular(path: Path) -> None:
    """A FIFO or a device named ``*.parquet`` would hang or never end: refuse it by name."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    if not stat.S_ISREG(mode):
        raise ResultsError(f"{path}: not a regular file, so not a gbench result")


def check_file(path: Path) -> None:
    """Check a result file's footer and metadata without reading its rows."""
    _check_regular(path)
    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    _gbench_metadata(path, schema)


@dataclass
class Results:
    """A results folder, read: the rows, the metric directions, and any unreadable files.

    ``metric_versions`` maps each metric (by ``metric_source``) to the versions of its plugin
    that produced the rows; more than one means a table would mix them (see
    :meth:`mixed_metric_versions`).
    """

    frame: pd.DataFrame
    directions: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    metric_versions: dict[str, list[str]] = field(default_factory=dict)

    def mixed_metric_versions(self) -> dict[str, list[str]]:
        """The metrics whose rows come from more than one version of their plugin."""
        return {m: v for m, v in self.metric_versions.items() if len(v) > 1}


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
    return Results(frame, directions, problems, metric_versions(frame))


def metric_versions(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Each metric source's plugin versions among the rows, sorted."""
    if frame.empty:
        return {}
    pairs = frame[["metric_source", "metric_plugin_version"]].dropna().drop_duplicates()
    grouped = pairs.groupby("metric_source")["metric_plugin_version"]
    return {str(m): sorted(map(str, v)) for m, v in grouped}


class CellState(NamedTuple):
    """What a cell's file records: status, metric sources and their plugin versions."""

    status: str | None
    sources: set[str]
    versions: dict[str, set[str]]
    problem: str | None


def cell_state(out_dir: Path, cell_id: str) -> CellState:
    """What is recorded for a cell (status None when nothing, or ``problem`` when unreadable)."""
    path = out_dir / f"{cell_id}.parquet"
    if not path.exists():
        return CellState(None, set(), {}, None)
    try:
        frame, _ = read_file(path)
    except ResultsError as exc:
        return CellState(None, set(), {}, str(exc))
    status = str(frame["status"].iloc[0]) if len(frame) else None
    versions = {m: set(v) for m, v in metric_versions(frame).items()}
    return CellState(status, set(frame["metric_source"].dropna()), versions, None)
