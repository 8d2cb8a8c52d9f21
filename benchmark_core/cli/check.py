"""``gbench check-plugin``: the conformance suite on the components of one package or plugin.

:mod:`benchmark_core.cli.main` adds it to its ``cli`` group with :func:`add_commands`.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table

from benchmark_core.results.safe_text import safe_text

_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


def escape(text: str) -> str:
    """``text`` safe to print through rich: no markup, no terminal control characters."""
    return markup_escape(safe_text(text, multiline=True))


@click.command("check-plugin")
@click.argument("packages", nargs=-1, required=True)
@click.option("-v", "--verbose", is_flag=True, help="Print each failure's full message.")
@click.pass_context
def check_plugin_command(ctx: click.Context, packages: tuple[str, ...], verbose: bool) -> None:
    """Check every component that PACKAGES register against its declarations.

    PACKAGES are distribution names (gbench-foo; gbench for the built-ins) or plugin
    (entry-point) names. Exit code 1 when a check fails, 2 for an unknown name.
    """
    from benchmark_core.conformance.suite import collect, run
    from benchmark_core.registry import get_registry

    registry = get_registry()
    for name, error in registry.failures:
        first = (error.strip().splitlines() or [""])[0]
        click.echo(
            f"warning: plugin '{safe_text(name)}' failed to load: {safe_text(first)}", err=True
        )
    results = run(collect(registry, packages))
    console = Console()
    console.print(_table(results, packages, console.width))
    failed = [r for r in results if r.status == "fail"]
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skip")}
    console.print(
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped",
        markup=False,
        highlight=False,
    )
    # Whole messages, never wrapped or cut by the terminal's width: the fix is in them.
    for r in failed:
        message = r.message if verbose else r.message.strip().split("\n")[0]
        click.echo(safe_text(f"FAIL {r.check.id}: {message}", multiline=verbose), err=True)
    if failed:
        ctx.exit(1)


def _table(results: list[Any], packages: tuple[str, ...], width: int) -> Table:
    """One row per check: its id (``kind:component:check``, never wrapped), the outcome and
    a note; a failure's note points below, where its whole message is printed. Narrow
    enough for 80 columns: the plugin is in the title and in each failure's message. An id
    wraps only when the terminal is too narrow for the longest one beside the other columns."""
    from benchmark_core.conformance.suite import result_table_rows

    table = Table(title=escape(f"gbench conformance: {', '.join(packages)}"), expand=False)
    rows = result_table_rows(results)
    longest = max((len(f"{r[0]}:{r[1]}:{r[3]}") for r in rows), default=0)
    # borders and padding of three columns take 10; result 6; a note at least 12
    fits = longest + 10 + 6 + 12 <= width
    table.add_column("check", overflow="fold", no_wrap=fits, min_width=longest if fits else None)
    table.add_column("result", no_wrap=True, min_width=6)
    table.add_column("note", overflow="fold", ratio=1, min_width=12)
    for kind, comp, _plugin, check, status, note in rows:
        shown = "see FAIL below" if status == "fail" else note
        table.add_row(
            escape(f"{kind}:{comp}:{check}"), f"[{_STYLE[status]}]{status}[/]", escape(shown)
        )
    return table


def add_commands(group: click.Group) -> None:
    """Add ``check-plugin`` to a click group (the ``gbench`` one)."""
    group.add_command(check_plugin_command)
