"""Helpers shared by the checkpoint, warm-start and evaluate tests."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from benchmark_core.results.store import read_results


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    """Run ``gbench ARGS`` in a fresh process."""
    exe = [sys.executable, "-m", "benchmark_core.cli.main", *args]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(exe, capture_output=True, text=True, env=env, **kw)


def frame(out: Path) -> pd.DataFrame:
    """Every row of a results folder (strict: a broken file fails the test)."""
    return read_results([out], strict=True).frame


def meta(path: Path) -> dict:
    """A result file's gbench metadata."""
    return json.loads(pq.read_schema(path).metadata[b"gbench"])


def value(df: pd.DataFrame, cell_id: str, metric: str, step: int) -> float:
    """One stored value."""
    rows = df[(df.cell_id == cell_id) & (df.metric == metric) & (df.step == step)]
    assert len(rows) == 1, (cell_id, metric, step, len(rows))
    return float(rows.value.iloc[0])


class _Payload:
    """Unpickling this creates ``marker``: proof that a loader executed code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_payload_pickle(path: Path, marker: Path) -> None:
    """A pickle that would create ``marker`` if anything unpickled it."""
    path.write_bytes(pickle.dumps({"m.loc": _Payload(marker)}))
