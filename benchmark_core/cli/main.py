"""The ``gbench`` command line: parses options and delegates; nothing else lives here.

Exit codes: 0 when every cell is ok or skipped, 1 when any cell failed (error, diverged,
timeout, metric_error: it trained but a metric raised) or a plugin or results file is broken,
2 for a usage error (nothing was run), and 130 when interrupted by Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import io
import math
import os
import sys
from pathlib import Path
from typing import Any

import click

from benchmark_core.cli.common import Jobs, workers_line
from benchmark_core.cli.common import check_writable as _check_writable
from benchmark_core.cli.common import report_plugin_failures as _report_plugin_failures
from benchmark_core.cli.group import LAZY_COMMANDS, Gbench
from benchmark_core.contract.errors import GbenchError, PluginError, UsageError
from benchmark_core.results.safe_text import safe_text

KIND_NAMES = ("tasks", "models", "objectives", "metrics")
#: The most replicas trained together: no more than the most seeds of a run (the selection's
#: ``MAX_SEEDS``, repeated here so that starting the CLI does not import the engine).
MAX_SEEDS = 10_000


@click.group(cls=Gbench, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    None, "--version", package_name="gbench", prog_name="gbench", message="%(prog)s %(version)s"
)
def cli() -> None:
    """gbench: benchmark the training objectives of generative models."""


class Seconds(click.FloatRange):
    """A time limit in seconds: a finite number above 0 (``nan`` would turn the limit off)."""

    name = "seconds"

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The number of seconds, or a usage error."""
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(
                f"{seconds} is not a number of seconds: give a finite time above 0, or leave "
                f"the option out for no limit.",
                param,
                ctx,
            )
        return seconds


#: The options of ``gbench run`` (a config file's keys are their names).
_RUN_OPTIONS = [
    click.option(
        "--objectives",
        default="all",
        show_default=True,
        help="'all' or name[param=value,...] list; [a,b] sweeps.",
    ),
    click.option("--tasks", default="all", show_default=True, help="'all' or a list of tasks."),
    click.option("--models", default=None, help="Models; default: each task's default models."),
    click.option("--metrics", default="all", show_default=True, help="'all' or a list of metrics."),
    click.option(
        "--seeds",
        default="1",
        show_default=True,
        help="A count (3 = seeds 0,1,2) or a list (0,4,7).",
    ),
    click.option(
        "--budget",
        default="quick",
        show_default=True,
        type=click.Choice(["smoke", "quick", "paper"]),
    ),
    click.option(
        "--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."
    ),
    click.option(
        "--out",
        default="results",
        show_default=True,
        type=click.Path(file_okay=False),
        help="Results folder.",
    ),
    click.option("--timeout", default=None, type=Seconds(), help="Seconds per cell."),
    click.option(
        "-j",
        "--jobs",
        default="auto",
        show_default=True,
        envvar="GBENCH_JOBS",
        type=Jobs(),
        help="Cells run at once: auto = one per usable core (per GPU on CUDA); 1 = one at a "
        "time in this process; with --executor ray, tasks in flight. Default from GBENCH_JOBS.",
    ),
    click.option(
        "--executor",
        default="local",
        show_default=True,
        type=click.Choice(["local", "ray"]),
        help="Where cells run: this machine, or Ray tasks (one CPU, or one GPU on CUDA, per cell).",
    ),
    click.option(
        "--address",
        default=None,
        help="Ray cluster address for --executor ray; default RAY_ADDRESS.",
    ),
    click.option(
        "--replicas",
        default=32,
        show_default=True,
        type=click.IntRange(min=1, max=MAX_SEEDS),
        help="Most cells that differ only in seed (or π...) to train as one vectorised model; "
        "1 runs every cell alone.",
    ),
    click.option(
        "--checkpoints",
        default="none",
        show_default=True,
        type=click.Choice(["none", "final", "all"]),
        help="Model states to keep in OUT/checkpoints: none, the final one, or one per "
        "evaluation (warm-start sources always keep their final state).",
    ),
    click.option("--force", is_flag=True, help="Rerun cells that already have results."),
    click.option(
        "--deterministic",
        is_flag=True,
        help="Use only deterministic kernels (bit-for-bit on CUDA too; slower). CPU is already.",
    ),
    click.option("--dry-run", is_flag=True, help="Print the grid with skip reasons; run nothing."),
    click.option(
        "--config", "config_path", default=None, help="A TOML file holding any of these options."
    ),
]


def _with_run_options(function: Any) -> Any:
    for option in reversed(_RUN_OPTIONS):
        function = option(function)
    return function


@cli.command()
@_with_run_options
@click.pass_context
def run(ctx: click.Context, config_path: str | None, dry_run: bool, **options: Any) -> None:
    """Train and evaluate every compatible (task, model, objective, seed) cell."""
    from benchmark_core.cli.console import summary_table
    from benchmark_core.engine.runner import resolve_device

    if config_path:
        from benchmark_core.cli.config import load_config

        for key, value in load_config(config_path, ctx).items():
            if ctx.get_parameter_source(key) is click.core.ParameterSource.DEFAULT:
                options[key] = value
    _check_executor(options)
    cells = _build_cells(options)
    device = resolve_device(str(options["device"]), here=options["executor"] == "local")
    if options["deterministic"]:
        from benchmark_core.engine.runner import enable_determinism

        enable_determinism()
    out = Path(options["out"])
    if dry_run:
        _print_plan(cells, out, bool(options["force"]))
        return
    _check_writable(out)
    report = _run_cells(cells, out, device, options)
    for problem in report.problems:
        _warn(problem)
    _console().print(summary_table(report))
    if line := workers_line(report):
        click.echo(line)
    _console().print(f"results in {safe_text(out)}", markup=False, highlight=False, soft_wrap=True)
    if report.interrupted:
        click.echo(
            "interrupted: finished cells are saved; run the same command to resume.", err=True
        )
        ctx.exit(130)
    if report.failed:
        ctx.exit(1)


def _console() -> Any:
    from rich.console import Console

    return Console()


def _warn(text: str) -> None:
    click.echo(f"warning: {safe_text(text)}", err=True)


def _check_executor(options: dict[str, Any]) -> None:
    if options["address"] is not None and options["executor"] != "ray":
        raise UsageError(
            "--address is a Ray cluster's address: add --executor ray to run the grid there."
        )
    if options["executor"] == "ray":
        from benchmark_core.engine.ray_executor import import_ray

        import_ray()  # before anything runs: say how to install Ray if it is missing


def _build_cells(options: dict[str, Any]) -> list[Any]:
    """The grid the options select: seeds and selections parsed before any plugin loads."""
    from benchmark_core.engine.grid import build_grid
    from benchmark_core.engine.selection import parse_seeds, parse_selection
    from benchmark_core.registry import get_registry

    seeds = parse_seeds(options["seeds"])
    specs = {k: parse_selection(str(options[k]), k) for k in ("objectives", "tasks", "metrics")}
    models = options["models"]
    models = None if models is None else parse_selection(str(models), "models")
    registry = get_registry()
    _report_plugin_failures(registry)
    from benchmark_core.engine.warm import with_checkpoints

    cells = build_grid(
        registry,
        specs["objectives"],
        specs["tasks"],
        models,
        specs["metrics"],
        seeds,
        options["budget"],
    )
    return with_checkpoints(cells, str(options["checkpoints"]))


def _print_plan(cells: list[Any], out: Path, force: bool) -> None:
    from benchmark_core.cli.console import metric_notes, plan_table
    from benchmark_core.engine.executors import plan
    from benchmark_core.engine.warm import dependency_notes

    actions, problems = plan(cells, out, force)
    console = _console()
    console.print(plan_table(actions))
    for line in metric_notes(cells) + dependency_notes(cells):
        console.print(line, markup=False, highlight=False)
    for problem in problems:
        _warn(problem)


def _run_cells(cells: list[Any], out: Path, device: Any, options: dict[str, Any]) -> Any:
    """Run the grid under a progress display; SIGTERM stops it as Ctrl-C does."""
    from benchmark_core.cli.common import run_with_progress

    return run_with_progress(cells, out, device, options, _console())


@cli.command("list")
@click.argument(
    "kind", required=False, type=click.Choice(KIND_NAMES + tuple(k[:-1] for k in KIND_NAMES))
)
def list_components(kind: str | None) -> None:
    """Show each component: parameters with defaults, requirements and a description."""
    from benchmark_core.cli.console import component_table
    from benchmark_core.registry import get_registry

    registry = get_registry()
    _report_plugin_failures(registry)
    kinds = [kind.rstrip("s")] if kind else [k[:-1] for k in KIND_NAMES]
    console = _console()
    for k in kinds:
        console.print(component_table(registry, k))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List every loaded plugin: name, version, hooks and components."""
    import json

    from benchmark_core.cli.console import plugins_table
    from benchmark_core.registry import get_registry

    registry = get_registry()
    if as_json:
        data = [vars(info) for info in registry.plugins]
        failed = [{"name": n, "error": e} for n, e in registry.failures]
        click.echo(json.dumps({"plugins": data, "failed": failed}, indent=2))
        return
    _console().print(plugins_table(registry))
    _report_plugin_failures(registry)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``gbench`` console script."""
    try:
        code = cli.main(args=argv, prog_name="gbench", standalone_mode=False)
        if isinstance(code, int) and code:  # click returns ctx.exit's code in this mode
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        shown = io.StringIO()
        exc.show(file=shown)  # click quotes the user's input raw; keep it off the terminal
        click.echo(safe_text(shown.getvalue(), multiline=True), err=True, nl=False)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted.", err=True)
        sys.exit(130)
    except UsageError as exc:
        click.echo(f"Error: {safe_text(exc, multiline=True)}", err=True)
        sys.exit(2)
    except (PluginError, GbenchError) as exc:
        click.echo(f"Error: {safe_text(exc, multiline=True)}", err=True)
        sys.exit(1)


cli.builtin = frozenset(cli.commands) | frozenset(LAZY_COMMANDS)  # plugins may not replace these


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
