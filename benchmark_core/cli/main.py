"""The ``gbench`` command line: parses options and delegates; nothing else lives here.

Exit codes: 0 when every cell is ok or skipped, 1 when any cell failed (error, diverged,
timeout, metric_error: it trained but a metric raised) or a plugin or results file is broken,
2 for a usage error (nothing was run), and 130 when interrupted by Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from benchmark_core import __version__
from benchmark_core.contract.errors import GbenchError, PluginError, UsageError, did_you_mean

KIND_NAMES = ("tasks", "models", "objectives", "metrics")
CONFIG_KEYS = (
    "objectives",
    "tasks",
    "models",
    "metrics",
    "seeds",
    "budget",
    "device",
    "out",
    "timeout",
    "force",
    "deterministic",
    "jobs",
    "replicas",
    "executor",
    "address",
)

console = Console(stderr=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="gbench", message="%(prog)s %(version)s")
def cli() -> None:
    """gbench: benchmark the training objectives of generative models."""


def _load_config(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}.") from None
    data = data.get("run", data)
    for key in data:
        if key not in CONFIG_KEYS:
            raise UsageError(
                f"config file {path}: unknown key '{key}'.{did_you_mean(key, CONFIG_KEYS)} "
                f"Valid keys: {', '.join(CONFIG_KEYS)}."
            )
    for key in ("jobs", "replicas"):  # a file's values bypass the options' own checks
        value = data.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"config file {path}: {key} = {value!r} must be a whole number ≥ 1.")
    for key, value in list(data.items()):
        if isinstance(value, list) and key in (*KIND_NAMES, "seeds"):
            data[key] = ",".join(map(str, value))
    return data


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot write results to {out}: {exc.strerror}. Choose another folder with --out."
        ) from None


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@cli.command()
@click.option(
    "--objectives",
    default="all",
    show_default=True,
    help="'all' or name[param=value,...] list; [a,b] sweeps.",
)
@click.option("--tasks", default="all", show_default=True, help="'all' or a list of tasks.")
@click.option("--models", default=None, help="Models; default: each task's default models.")
@click.option("--metrics", default="all", show_default=True, help="'all' or a list of metrics.")
@click.option(
    "--seeds", default="1", show_default=True, help="A count (3 = seeds 0,1,2) or a list (0,4,7)."
)
@click.option(
    "--budget", default="quick", show_default=True, type=click.Choice(["smoke", "quick", "paper"])
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option(
    "--out",
    default="results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Results folder.",
)
@click.option(
    "--timeout", default=None, type=click.FloatRange(min=0, min_open=True), help="Seconds per cell."
)
@click.option(
    "-j",
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes (GPUs shared round-robin); with --executor ray, tasks in flight.",
)
@click.option(
    "--executor",
    default="local",
    show_default=True,
    type=click.Choice(["local", "ray"]),
    help="Where cells run: this machine, or Ray tasks (one CPU, or one GPU on CUDA, per cell).",
)
@click.option(
    "--address", default=None, help="Ray cluster address for --executor ray; default RAY_ADDRESS."
)
@click.option(
    "--replicas",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most cells that differ only in seed (or π...) to train as one vectorised model; "
    "1 runs every cell alone.",
)
@click.option("--force", is_flag=True, help="Rerun cells that already have results.")
@click.option(
    "--deterministic",
    is_flag=True,
    help="Use only deterministic kernels (bit-for-bit on CUDA too; slower). CPU is already.",
)
@click.option("--dry-run", is_flag=True, help="Print the grid with skip reasons; run nothing.")
@click.option(
    "--config", "config_path", default=None, help="A TOML file holding any of these options."
)
@click.pass_context
def run(ctx: click.Context, config_path: str | None, dry_run: bool, **options: Any) -> None:
    """Train and evaluate every compatible (task, model, objective, seed) cell."""
    from benchmark_core.engine.executors import plan, run_grid
    from benchmark_core.engine.grid import build_grid
    from benchmark_core.engine.runner import resolve_device
    from benchmark_core.engine.selection import parse_seeds, parse_selection
    from benchmark_core.registry import get_registry

    if config_path:
        for key, value in _load_config(config_path).items():
            if ctx.get_parameter_source(key) is click.core.ParameterSource.DEFAULT:
                options[key] = value
    if options["executor"] not in ("local", "ray"):
        raise UsageError(f"executor {options['executor']!r}: choose local or ray.")
    if options["address"] is not None and options["executor"] != "ray":
        raise UsageError(
            "--address is a Ray cluster's address: add --executor ray to run the grid there."
        )
    if options["executor"] == "ray":
        from benchmark_core.engine.ray_executor import import_ray

        import_ray()  # before anything runs: say how to install Ray if it is missing
    registry = get_registry()
    _report_plugin_failures(registry)
    specs = {k: parse_selection(str(options[k]), k) for k in ("objectives", "tasks", "metrics")}
    models = (
        None if options["models"] is None else parse_selection(str(options["models"]), "models")
    )
    if options["budget"] not in ("smoke", "quick", "paper"):
        raise UsageError(f"budget {options['budget']!r}: choose smoke, quick or paper.")
    cells = build_grid(
        registry,
        specs["objectives"],
        specs["tasks"],
        models,
        specs["metrics"],
        parse_seeds(options["seeds"]),
        options["budget"],
    )
    device = resolve_device(str(options["device"]), here=options["executor"] == "local")
    if options["deterministic"]:
        from benchmark_core.engine.runner import enable_determinism

        enable_determinism()
    out = Path(options["out"])
    timeout = None if options["timeout"] is None else float(options["timeout"])

    from benchmark_core.cli.console import RichGridUI, metric_notes, plan_table, summary_table

    if dry_run:
        actions, problems = plan(cells, out, bool(options["force"]))
        console.print(plan_table(actions))
        for line in metric_notes(cells):
            console.print(line, markup=False, highlight=False)
        for problem in problems:
            click.echo(f"warning: {problem}", err=True)
        return
    _check_writable(out)
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        with RichGridUI(console, len(cells)) as ui:
            report = run_grid(
                cells,
                out,
                device,
                force=bool(options["force"]),
                timeout=timeout,
                ui=ui,
                jobs=int(options["jobs"]),
                replicas=int(options["replicas"]),
                executor=str(options["executor"]),
                address=options["address"],
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
    for problem in report.problems:
        click.echo(f"warning: {problem}", err=True)
    console.print(summary_table(report))
    console.print(f"results in {out}", markup=False, highlight=False, soft_wrap=True)
    if report.interrupted:
        click.echo(
            "interrupted: finished cells are saved; run the same command to resume.", err=True
        )
        ctx.exit(130)
    if report.failed:
        ctx.exit(1)


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
    for k in kinds:
        console.print(component_table(registry, k))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List every loaded plugin: name, version, hooks and components."""
    from benchmark_core.cli.console import plugins_table
    from benchmark_core.registry import get_registry

    registry = get_registry()
    if as_json:
        data = [vars(info) for info in registry.plugins]
        failed = [{"name": n, "error": e} for n, e in registry.failures]
        click.echo(json.dumps({"plugins": data, "failed": failed}, indent=2))
        return
    console.print(plugins_table(registry))
    _report_plugin_failures(registry)


def _report_plugin_failures(registry: Any) -> None:
    for name, error in registry.failures:
        first = error.strip().splitlines()[0]
        click.echo(f"warning: plugin '{name}' failed to load: {first}", err=True)


def _add_plugin_commands() -> None:
    from benchmark_core.cli.reports import install_plot_kinds
    from benchmark_core.registry import get_registry

    registry = get_registry()
    install_plot_kinds(registry)
    for impl in registry.manager.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as exc:  # one broken plugin must not break the CLI
            registry.failures.append((impl.plugin_name, f"register_commands raised {exc!r}"))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``gbench`` console script."""
    try:
        _add_plugin_commands()
        code = cli.main(args=argv, prog_name="gbench", standalone_mode=False)
        if isinstance(code, int) and code:  # click returns ctx.exit's code in this mode
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted.", err=True)
        sys.exit(130)
    except UsageError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except (PluginError, GbenchError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


# The reporting commands (leaderboard, plot, report) and check-plugin live in their own
# modules. Added here, before the __main__ guard, so that `python -m benchmark_core.cli.main` has
# them too.
from benchmark_core.cli.check import add_commands as _add_check_commands  # noqa: E402
from benchmark_core.cli.claims import add_commands as _add_claims_commands  # noqa: E402
from benchmark_core.cli.reports import add_commands as _add_report_commands  # noqa: E402

_add_report_commands(cli)
_add_check_commands(cli)
_add_claims_commands(cli)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
