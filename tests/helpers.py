"""Helpers shared by the test modules (and tests/benchmarks): import them with ``import helpers``.

pytest puts ``tests/`` on ``sys.path`` (rootdir ``conftest.py`` in the default "prepend"
import mode), so this module imports by name; worker processes inherit that path, which is
how they find ``faulty``. Fixtures and hooks stay in ``conftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: The repository root.
REPO = Path(__file__).resolve().parents[1]

#: The cheap metrics: enough for tests of the harness. ``all`` adds the classifier two-sample
#: test and friends, ~1 s per evaluation; tests that mean every metric ask for "all".
HARNESS_METRICS = "nll_test,nll_oracle,moments"


def run_gbench(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """Run the ``gbench`` console script in a fresh process."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    exe = Path(sys.executable).with_name("gbench")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=full_env, **kw)


def registry_with(*classes):
    """The built-in registry plus test-only components (kind inferred from the base class)."""
    from benchmark_core.registry import KINDS, Entry, PluginInfo, load_registry

    registry = load_registry({"GBENCH_LOAD_PLUGINS": ""})
    info = PluginInfo("tests", "tests", "gbench-tests", "0.0", builtin=False)
    registry.plugins.append(info)
    for cls in classes:
        kind = next(k for k, (_, base) in KINDS.items() if issubclass(cls, base))
        registry.components[kind][cls.name] = Entry(kind, cls, info)
    return registry


def grid(
    registry,
    objectives="ml",
    tasks="gaussian",
    models="isotropic_gaussian",
    metrics=HARNESS_METRICS,
    seeds="1",
    budget="smoke",
):
    """Build a grid from selection strings, as the CLI does."""
    from benchmark_core.engine.grid import build_grid
    from benchmark_core.engine.selection import parse_seeds, parse_selection

    return build_grid(
        registry,
        parse_selection(objectives),
        parse_selection(tasks),
        None if models is None else parse_selection(models),
        parse_selection(metrics),
        parse_seeds(seeds),
        budget,
    )
