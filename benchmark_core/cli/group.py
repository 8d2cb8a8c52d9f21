"""The ``gbench`` click group: commands that load only what they use.

Built-in commands resolve without plugins (each loads them itself if it needs them), so
``gbench --version``, ``gbench --help`` and ``gbench run --help`` import neither torch nor a
plugin. Plugins load when a command name is not a built-in one (it may be a plugin's, added
through ``register_commands``), and for ``gbench --help`` only when a third-party plugin is
installed: the built-in plugins add no commands (``test_cli.py`` checks that they do not).
"""

from __future__ import annotations

import importlib
import os

import click

#: Built-in commands that live in their own modules, imported only when used: name ->
#: (module, short help). The short help is repeated here so that ``gbench --help`` imports
#: neither module; ``test_cli.py`` checks that it matches each command's own.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "check-plugin": (
        "benchmark_core.cli.check",
        "Check every component that PACKAGES register against its declarations.",
    ),
    "claims": (
        "benchmark_core.cli.claims",
        "Check each claim of the paper (or of a plugin): reproduced, not reproduced or "
        "inconclusive, with the figures and 95% intervals behind it.",
    ),
    "evaluate": (
        "benchmark_core.cli.evaluate",
        "Compute METRICS on the checkpoints in RESULTS without training, adding their rows.",
    ),
    "leaderboard": (
        "benchmark_core.cli.reports",
        "Per task, mean ± 95% interval over seeds of each metric at the final step, and ranks.",
    ),
    "new-plugin": (
        "benchmark_core.cli.new_plugin",
        "Write a plugin package NAME that passes check-plugin and its own tests as generated.",
    ),
    "plot": (
        "benchmark_core.cli.reports",
        "Draw a figure from results as PNG and SVG and print the paths.",
    ),
    "report": (
        "benchmark_core.cli.reports",
        "Write one self-contained HTML page: figures, leaderboards, environment, problem cells.",
    ),
}


class Gbench(click.Group):
    """The ``gbench`` group: built-ins load lazily, plugins only for a plugin's command.

    ``builtin`` holds the names of the built-in commands, which no plugin may replace.
    """

    builtin: frozenset[str] = frozenset()

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name: the built-ins, and those plugins have added so far."""
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing its module or loading plugins as needed."""
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            importlib.import_module(LAZY_COMMANDS[cmd_name][0]).add_commands(self)
        if cmd_name == "plot":  # plugins' plot kinds are choices of `gbench plot`
            from benchmark_core.cli.reports import install_plot_kinds
            from benchmark_core.registry import get_registry

            install_plot_kinds(get_registry())
        if cmd_name not in self.commands and cmd_name not in LAZY_COMMANDS:
            _add_plugin_commands(self)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands with their short help, importing no built-in command's module."""
        if ctx.parent is None and _third_party_plugins():
            _add_plugin_commands(self)
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=LAZY_COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _third_party_plugins() -> bool:
    """Whether an installed ``gbench`` entry point would load (the registry's own filter)."""
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="gbench")}
    allow = os.environ.get("GBENCH_LOAD_PLUGINS")
    if allow is not None:
        names &= {name.strip() for name in allow.split(",")}
    return bool(names)


def _add_plugin_commands(group: click.Group) -> None:
    """Let each plugin add its commands (``register_commands``); none may replace a built-in."""
    from benchmark_core.registry import get_registry

    registry = get_registry()
    builtin = {name: group.commands.get(name) for name in getattr(group, "builtin", frozenset())}
    for impl in registry.manager.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=group)
        except Exception as exc:  # one broken plugin must not break the CLI
            registry.failures.append((impl.plugin_name, f"register_commands raised {exc!r}"))
        for name, command in builtin.items():
            if group.commands.get(name) is not command:
                registry.failures.append(
                    (impl.plugin_name, f"register_commands tried to replace `gbench {name}`")
                )
                if command is None:
                    group.commands.pop(name, None)
                else:
                    group.commands[name] = command
