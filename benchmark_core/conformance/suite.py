"""The conformance suite: every component a package registers, checked against its declarations.

A component *declares* its parameters, the task kinds it works on, what it provides and what
it needs, and (for a metric) which direction is better. The harness trusts those declarations
to build the grid, so a wrong one breaks a user's run far from its cause. This suite turns
each declaration into a check that runs in a second on the CPU:

- ``declarations``: names, descriptions, kinds, capabilities and budgets are well formed, and
  every numeric parameter declares its valid range;
- ``params``: every default is valid, and bad values derived from each ``Param`` (outside its
  bounds, not one of its choices, of the wrong type) and unknown names are refused;
- ``data`` (tasks): fixed, seeded train/test sets of the declared kind, independent of the
  global RNG;
- ``capabilities[KIND]``: each declared capability works (shapes, dtypes, finite values,
  gradients through ``rsample``, moments that match the samples);
- ``density[KIND]``: log_prob agrees with the samples (see :mod:`.conformance_density`);
- ``smoke_cell[KIND]``: the objective trains a compatible (task, model) pair for a few steps
  through the real runner on the CPU, and lowers the loss it logs (see :mod:`.behaviour`;
  ``loss_descends = False`` opts out a game value);
- ``default_models`` (tasks): each model the task names builds and trains in a smoke cell;
- ``replicas[KIND]`` (objectives with ``replica_kinds``): three seeds train as one stack
  through the objective's one ``step``, which must return one loss per replica;
- ``requirements[KIND]``: run against proxies that expose only the declared capabilities,
  the objective or metric never calls an undeclared one;
- ``values[KIND]``: a metric returns finite-or-NaN values under stable names, each with a
  declared direction;
- ``stderr[KIND]``: a metric's standard errors are not far below the spread of repeats.

Use it from pytest (``@pytest.mark.gbench_conformance("my-dist")`` on a test taking
``gbench_check``; see :mod:`.pytest_plugin`), from the command line (``gbench check-plugin
my-dist``), or from Python (:func:`collect` then :func:`run`).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable

from benchmark_core.conformance.base import (
    SMOKE_STEPS,
    Check,
    ConformanceError,
    NotApplicable,
    Result,
    Workbench,
    build_model,
    fail,
    short,
    smoke_budget,
    where,
)
from benchmark_core.conformance.checks import checks_for
from benchmark_core.conformance.claims import claim_checks
from benchmark_core.contract.errors import UsageError, did_you_mean
from benchmark_core.registry import PluginInfo, Registry

__all__ = [
    "SMOKE_STEPS",
    "Check",
    "ConformanceError",
    "NotApplicable",
    "Result",
    "Workbench",
    "build_model",
    "collect",
    "fail",
    "result_table_rows",
    "run",
    "select_plugins",
    "smoke_budget",
    "where",
]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def select_plugins(registry: Registry, names: Iterable[str]) -> list[PluginInfo]:
    """The loaded plugins matching each name: a distribution (``gbench-foo``; ``gbench`` for
    the built-ins), an entry-point name or a plugin module. UsageError for an unknown one."""
    chosen: list[PluginInfo] = []
    for name in names:
        hits = [
            p
            for p in registry.plugins
            if _norm(name) in (_norm(p.distribution), _norm(p.name), _norm(p.module))
        ]
        if not hits:
            failed = [e for n, e in registry.failures if _norm(n) == _norm(name)]
            if failed:
                first = failed[0].strip().splitlines()[0]
                raise UsageError(f"plugin '{name}' is installed but failed to load: {first}")
            known = sorted(
                {p.distribution for p in registry.plugins} | {p.name for p in registry.plugins}
            )
            raise UsageError(
                f"no loaded plugin or distribution is named '{name}'.{did_you_mean(name, known)} "
                f"Loaded: {', '.join(known)}."
            )
        chosen += [p for p in hits if p not in chosen]
    return chosen


def collect(registry: Registry, packages: Iterable[str]) -> list[Check]:
    """Every check of every component that the named packages or plugins register."""
    plugins = {p.name for p in select_plugins(registry, packages)}
    bench = Workbench(registry)
    checks: list[Check] = []
    for kind in ("task", "model", "objective", "metric"):
        for _, entry in sorted(registry.of_kind(kind).items()):
            if entry.plugin.name in plugins:
                checks += checks_for(entry, bench)
    for _, entry in sorted(registry.of_kind("claim").items()):
        if entry.plugin.name in plugins:
            checks += claim_checks(entry, bench)
    return checks


def run(checks: Iterable[Check]) -> list[Result]:
    """Run checks, turning each outcome into a Result (an unexpected exception is a fail)."""
    results = []
    for check in checks:
        try:
            check()
        except NotApplicable as exc:
            results.append(Result(check, "skip", str(exc)))
        except ConformanceError as exc:
            results.append(Result(check, "fail", str(exc)))
        except Exception as exc:
            tb = traceback.format_exc(limit=-2)
            message = f"{where(check.entry)}: check '{check.name}' raised {short(exc, 400)}\n{tb}"
            results.append(Result(check, "fail", message))
        else:
            results.append(Result(check, "pass"))
    return results


def result_table_rows(results: list[Result]) -> list[tuple[str, str, str, str, str, str]]:
    """(kind, component, plugin, check, status, first line of the message) per result."""
    rows = []
    for r in results:
        e = r.check.entry
        first = r.message.strip().splitlines()[0] if r.message else ""
        rows.append((e.kind, e.name, e.plugin.name, r.check.name, r.status, first))
    return rows
