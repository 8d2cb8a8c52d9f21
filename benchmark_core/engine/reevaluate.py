"""Metrics on stored checkpoints, without training (``gbench evaluate``).

For each cell of a results folder, a requested metric is *current* when the cell's rows hold
it from the installed version of the metric's plugin (``metric_plugin_version``); otherwise
it is computed on each model state the cell's checkpoint holds (every evaluation step with
``--checkpoints all``, the final one with ``final``) and its rows replace any older ones, in
the same cell's file, rewritten atomically. A cell is rebuilt as the training loop builds it
(seeded task, model, objective set up, metrics), the checkpoint is loaded, and each metric
draws from the stream the loop gives it (seeded ``seed * 1_000_003 + step``), so on a CPU the
values are bit for bit those a run with the metric from the start records. A metric that
reads the objective's training-time state (an ε schedule's current value) sees the
objective as set up, not as trained.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmark_core import __version__
from benchmark_core.contract import Estimate, EvalContext, incompatibility, model_incompatibility
from benchmark_core.contract.budgets import Budget
from benchmark_core.contract.errors import GbenchError, ResultsError
from benchmark_core.engine.runner import TaskCache, seed_everything
from benchmark_core.engine.selection import Configured, Spec, expand, with_task_defaults
from benchmark_core.registry import Registry
from benchmark_core.results import checkpoints
from benchmark_core.results.cell_claims import claim, release
from benchmark_core.results.store import SCHEMA, read_file, result_files, write_cell

#: The rows a metric adds, and the directions of its values.
Computed = tuple[list[dict[str, Any]], dict[str, str]]


@dataclass
class EvalReport:
    """What ``gbench evaluate`` did, cell by cell."""

    counts: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    wall_time_s: float = 0.0
    interrupted: bool = False


@dataclass(frozen=True)
class Job:
    """One cell to bring up to date: what to rebuild, which metrics, from which checkpoint."""

    path: Path
    cell_id: str
    task: Configured
    model: Configured
    objective: Configured
    metrics: tuple[Configured, ...]
    seed: int
    budget: Budget
    #: The checkpoint as the result file records it (file, sha256, steps).
    checkpoint: dict[str, Any]


def _configured(registry: Registry, kind: str, name: str, params: dict[str, Any]) -> Configured:
    entry = registry.get(kind, name)
    return Configured(entry, entry.cls.validate(params), params)


def _stale(frame: Any, metric: Configured) -> bool:
    """Whether the cell lacks ``metric`` from the installed version of its plugin."""
    rows = frame[frame["metric_source"] == metric.name]
    plugin = metric.entry.plugin
    versions = set(zip(rows["metric_plugin"], rows["metric_plugin_version"], strict=True))
    return versions != {(plugin.distribution, plugin.version)}


def plan_cell(
    path: Path, metrics: list[Configured], registry: Registry, force: bool
) -> tuple[str, Job | None, str | None]:
    """Decide one file: (``current`` | ``not ok`` | ``no checkpoint`` | ``todo``, job, problem).

    Raises ResultsError naming the file when it cannot be read or its checkpoint is unusable.
    """
    frame, meta = read_file(path)
    cell_id = path.stem
    if not len(frame) or frame["status"].iloc[0] != "ok":
        return "not ok", None, None
    first = frame.iloc[0]
    params = json.loads(first["params"])
    try:
        task = _configured(registry, "task", first["task"], params["task"])
        model = _configured(registry, "model", first["model"], params["model"])
        objective = _configured(registry, "objective", first["objective"], params["objective"])
    except GbenchError as exc:
        raise ResultsError(f"{path}: cannot rebuild the cell ({exc})") from None
    usable = [
        m
        for m in with_task_defaults(metrics, task.cls)
        if model_incompatibility(model.cls, task.cls) is None
        and incompatibility(m.cls, task.cls, model.cls) is None
    ]
    todo = tuple(m for m in usable if force or _stale(frame, m))
    if not todo:
        return "current", None, None
    if "checkpoint" not in meta:
        why = f"{path}: no checkpoint kept; {', '.join(m.name for m in todo)} not computed"
        return "no checkpoint", None, why + " (rerun the cell with --checkpoints final or all)"
    budget = Budget(**meta["budget"])
    seed = int(first["seed"])
    job = Job(path, cell_id, task, model, objective, todo, seed, budget, meta["checkpoint"])
    return "todo", job, None


def compute(job: Job, device: torch.device, cache: TaskCache | None = None) -> Computed:
    """The metrics' rows (value columns only) at every step the checkpoint holds.

    Builds the cell exactly as the training loop does, so that each metric object sees the
    same global random state and draws from the same seeded stream at each step.
    """
    threads, limit = torch.get_num_threads(), job.task.cls.max_threads
    if limit is not None:  # the task's thread cap, as the training loop applies it
        torch.set_num_threads(max(1, min(threads, limit)))
    try:
        return _compute(job, device, cache)
    finally:
        torch.set_num_threads(threads)


def _compute(job: Job, device: torch.device, cache: TaskCache | None) -> Computed:
    stored = checkpoints.read(job.path.parent, job.checkpoint, job.cell_id)
    states, name = stored.states, str(stored.path)
    seed_everything(job.seed)
    task = (cache or TaskCache()).get(job.task, device)
    model = job.model.cls(task, **job.model.params).to(device)
    objective = job.objective.cls(**job.objective.params)
    objective.setup(model, task, job.budget)
    metrics = [(m, m.cls(**m.params)) for m in job.metrics]
    rows: list[dict[str, Any]] = []
    directions: dict[str, str] = {}
    devices = [device] if device.type == "cuda" else []
    for step in sorted(states):
        checkpoints.load_into(model, states[step], name)
        ctx = EvalContext(job.budget, device, step, objective)
        with torch.random.fork_rng(devices=devices):
            model.eval()
            for conf, metric in metrics:
                torch.manual_seed(job.seed * 1_000_003 + step)  # as the training loop seeds it
                with torch.no_grad():
                    values = metric.compute(model, task, ctx)
                for value_name, value in values.items():
                    est = _as_estimate(value)
                    directions[value_name] = metric.direction_of(value_name)
                    rows.append(_row(step, value_name, conf, est))
    return rows, directions


def _as_estimate(value: Any) -> Estimate:
    if isinstance(value, Estimate):
        return Estimate(float(value.value), float(value.stderr))
    if isinstance(value, tuple) and len(value) == 2:
        return Estimate(float(value[0]), float(value[1]))
    return Estimate(float(value))


def _row(step: int, name: str, conf: Configured, est: Estimate) -> dict[str, Any]:
    note = None
    if not math.isfinite(est.value):
        note = f"{name} returned {'NaN' if math.isnan(est.value) else est.value}"
    return {
        "step": step,
        "metric": name,
        "metric_source": conf.name,
        "value": est.value,
        "stderr": est.stderr,
        "error": note,
        "metric_plugin": conf.entry.plugin.distribution,
        "metric_plugin_version": conf.entry.plugin.version,
    }


def merge(job: Job, computed: Computed, device: torch.device) -> Path:
    """Replace the job's metrics' rows in its cell's file with ``computed``; write atomically."""
    frame, meta = read_file(job.path)
    rows, directions = computed
    replaced = {m.name for m in job.metrics}
    kept = frame[~frame["metric_source"].isin(replaced)]
    clash = set(kept["metric"]) & {r["metric"] for r in rows}
    if clash:
        raise ResultsError(
            f"{job.path}: values {sorted(clash)} already come from another metric of the cell"
        )
    strings = {f.name for f in SCHEMA if f.type == "string"}

    def plain(record: dict[str, Any]) -> dict[str, Any]:  # pandas reads a null string as NaN
        return {k: (None if k in strings and v != v else v) for k, v in record.items()}

    old = [plain(r) for r in kept.to_dict("records")]
    template = plain(frame.iloc[0].to_dict())
    template.update(device=str(device), gbench_version=__version__, torch_version=torch.__version__)
    new = [{**template, **row} for row in rows]
    meta = {k: v for k, v in meta.items() if k != "schema_version"}
    meta["directions"] = {**meta.get("directions", {}), **directions}
    return write_cell(job.path.parent, job.cell_id, old + new, meta)


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


_WORKER_TASKS: list[TaskCache] = []  # a worker's tasks, built once


def _compute_in_worker(job: Job, device: str) -> Computed:
    if not _WORKER_TASKS:
        _WORKER_TASKS.append(TaskCache())
    return compute(job, torch.device(device), _WORKER_TASKS[0])


def evaluate_folder(
    out_dir: Path,
    metric_specs: list[Spec] | None,
    registry: Registry,
    device: torch.device,
    *,
    force: bool = False,
    jobs: int = 1,
    echo: Callable[[str, str], None] | None = None,
) -> EvalReport:
    """Bring every cell of ``out_dir`` up to date with the metrics asked for.

    ``echo(status, text)`` is told of each cell as it is decided or rewritten. Resumable: a
    cell rewritten before an interruption is current the next time.
    """
    echo = echo or (lambda status, text: None)
    metrics = expand("metric", metric_specs, registry, allow_sweeps=False)
    report, start = EvalReport(), time.monotonic()
    todo: list[Job] = []
    for path in result_files(out_dir):
        try:
            status, job, problem = plan_cell(path, metrics, registry, force)
        except ResultsError as exc:
            status, job, problem = "failed", None, str(exc)
        if job is not None:
            todo.append(job)
            continue
        report.counts[status] += 1
        if problem:
            report.problems.append(problem)
    try:
        for job, computed in _computed(todo, device, jobs):
            if isinstance(computed, BaseException):
                report.counts["failed"] += 1
                report.problems.append(f"{job.path}: {computed}")
                echo("failed", f"{job.cell_id}: {computed}")
                continue
            held = claim(out_dir, job.cell_id)
            if held is None:
                report.counts["running elsewhere"] += 1
                continue
            try:
                merge(job, computed, device)
            finally:
                release(held)
            report.counts["updated"] += 1
            echo("updated", f"{job.cell_id}: {', '.join(m.name for m in job.metrics)}")
    except KeyboardInterrupt:
        report.interrupted = True
    report.wall_time_s = time.monotonic() - start
    return report


def _computed(
    todo: list[Job], device: torch.device, jobs: int
) -> Iterator[tuple[Job, Computed | BaseException]]:
    """(job, rows or the exception it raised), in-process or in ``jobs`` worker processes."""
    if jobs <= 1 or len(todo) <= 1:
        cache = TaskCache()
        for job in todo:
            try:
                yield job, compute(job, device, cache)
            except Exception as exc:  # one bad checkpoint must not stop the others
                yield job, exc
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // jobs)
    ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(threads,))
    with pool:
        futures = {pool.submit(_compute_in_worker, job, str(device)): job for job in todo}
        for future in as_completed(futures):
            exc = future.exception()
            yield futures[future], exc if exc is not None else future.result()
