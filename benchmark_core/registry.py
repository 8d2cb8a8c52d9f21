"""The plugin manager: built-in plugins first, then the ``gbench`` entry points.

Built-ins are loaded through the same path as third-party plugins. ``GBENCH_LOAD_PLUGINS``
(a comma list of entry-point names) restricts which third-party plugins load; set it to the
empty string to load the built-ins alone.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from benchmark_core import __version__
from benchmark_core.contract import Claim, Metric, Model, Objective, Task, hookspecs
from benchmark_core.contract.errors import PluginError, UsageError, did_you_mean
from benchmark_core.contract.params import Param

#: What a metric's ``direction`` may be.
DIRECTIONS = ("min", "max", "none")

BUILTIN_PLUGINS: tuple[str, ...] = (
    "gbench_plugins.tasks.gaussian",
    "gbench_plugins.tasks.mixture",
    "gbench_plugins.tasks.pairs",
    "gbench_plugins.tasks.text",
    "gbench_plugins.models.gaussian",
    "gbench_plugins.models.mixture",
    "gbench_plugins.models.flow",
    "gbench_plugins.models.generator",
    "gbench_plugins.models.sequence",
    "gbench_plugins.objectives.ml",
    "gbench_plugins.objectives.divergences",
    "gbench_plugins.objectives.adversarial",
    "gbench_plugins.objectives.scheduled_sampling",
    "gbench_plugins.metrics.likelihood",
    "gbench_plugins.metrics.moments",
    "gbench_plugins.metrics.divergences",
    "gbench_plugins.metrics.two_sample",
    "gbench_plugins.metrics.pairs",
    "gbench_plugins.metrics.bleu",
    "gbench_plugins.figures.standard",
    "gbench_plugins.figures.figure1",
    "gbench_plugins.claims.gaussian",
    "gbench_plugins.claims.sequences",
)

ENTRY_POINT_GROUP = "gbench"

#: kind -> (hook name, base class)
KINDS: dict[str, tuple[str, type]] = {
    "task": ("register_tasks", Task),
    "model": ("register_models", Model),
    "objective": ("register_objectives", Objective),
    "metric": ("register_metrics", Metric),
    "claim": ("register_claims", Claim),
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass
class PluginInfo:
    """A loaded plugin: where it comes from and what it registered."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Entry:
    """One registered component and the plugin that registered it."""

    kind: str
    cls: Any
    plugin: PluginInfo

    @property
    def name(self) -> str:
        """The component's name."""
        return self.cls.name


@dataclass
class Registry:
    """Every component that the loaded plugins registered, by kind and name."""

    components: dict[str, dict[str, Entry]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )
    plugins: list[PluginInfo] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    plots: dict[str, tuple[Callable[..., Any], str, frozenset[str], PluginInfo]] = field(
        default_factory=dict
    )
    manager: pluggy.PluginManager | None = None

    def of_kind(self, kind: str) -> dict[str, Entry]:
        """Components of one kind (``task``, ``model``, ``objective``, ``metric``, ``claim``)."""
        return self.components[kind]

    def get(self, kind: str, name: str) -> Entry:
        """The component ``name`` of ``kind``, or a UsageError listing the valid names."""
        table = self.components[kind]
        if name not in table:
            raise UsageError(
                f"unknown {kind} '{name}'.{did_you_mean(name, table)} "
                f"Valid {kind}s: {', '.join(sorted(table)) or 'none installed'}."
            )
        return table[name]


def _check_component(kind: str, cls: Any, plugin: PluginInfo) -> None:
    """Refuse a component whose declaration gbench cannot use, saying what is valid."""
    base = KINDS[kind][1]
    where = f"plugin '{plugin.name}'"
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise PluginError(
            f"{where} registered {cls!r} as a {kind}, but it is not a {base.__name__}"
        )
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(
            f"{where}: {cls.__name__}.name is {name!r}; it must be a name like 'my_{kind}' "
            "(letters, digits, _ and -, not starting with a digit)"
        )
    spec = getattr(cls, "param_spec", None)
    if not isinstance(spec, dict):
        raise PluginError(
            f"{where}: {kind} '{name}' has param_spec {type(spec).__name__}; it must be a dict "
            "of parameter names to Param(...)"
        )
    for pname, param in spec.items():
        if not isinstance(pname, str) or not pname.isidentifier() or hasattr(base, pname):
            raise PluginError(
                f"{where}: {kind} '{name}' has a parameter {pname!r} that is not an "
                f"identifier or shadows an attribute of {base.__name__}"
            )
        if not isinstance(param, Param):
            raise PluginError(
                f"{where}: {kind} '{name}' parameter '{pname}' is {type(param).__name__}, "
                "not a Param(...)"
            )
        try:
            param.kind  # noqa: B018  (raises when the type cannot be inferred)
        except TypeError as exc:
            raise PluginError(f"{where}: {kind} '{name}' parameter '{pname}': {exc}") from exc
    if kind == "metric" and getattr(cls, "direction", None) not in DIRECTIONS:
        raise PluginError(
            f"{where}: metric '{name}' has direction {getattr(cls, 'direction', None)!r}; "
            f"choose one of {', '.join(map(repr, DIRECTIONS))} ('min': lower is better, "
            "'max': higher is better, 'none': neither)"
        )


def _register_callback(registry: Registry, kind: str, plugin: PluginInfo) -> Callable[[Any], Any]:
    """The ``register`` a plugin's hook gets: a bad component is reported, the rest load."""

    def register(cls: Any) -> Any:
        try:
            _check_component(kind, cls, plugin)
            table = registry.components[kind]
            if cls.name in table:
                other = table[cls.name].plugin
                raise PluginError(
                    f"two {kind}s are named '{cls.name}': one from plugin '{other.name}' "
                    f"({other.distribution}), one from plugin '{plugin.name}' "
                    f"({plugin.distribution}); the one from '{other.name}' is kept. Uninstall "
                    "one, or restrict the plugins that load with GBENCH_LOAD_PLUGINS."
                )
        except PluginError as exc:
            registry.failures.append((plugin.name, str(exc)))
            return cls
        table[cls.name] = Entry(kind, cls, plugin)
        plugin.components.append(f"{kind}:{cls.name}")
        return cls

    return register


def _selected_entry_points(env: dict[str, str]) -> list[md.EntryPoint]:
    eps = list(md.entry_points(group=ENTRY_POINT_GROUP))
    allow = env.get("GBENCH_LOAD_PLUGINS")
    if allow is None:
        return eps
    wanted = {name.strip() for name in allow.split(",") if name.strip()}
    return [ep for ep in eps if ep.name in wanted]


def load_registry(env: dict[str, str] | None = None) -> Registry:
    """Load the built-in and installed plugins and collect their components."""
    env = dict(os.environ if env is None else env)
    pm = pluggy.PluginManager("gbench")
    pm.add_hookspecs(hookspecs)
    registry = Registry(manager=pm)
    infos: dict[str, PluginInfo] = {}

    modules: list[tuple[PluginInfo, Callable[[], ModuleType]]] = []
    for modname in BUILTIN_PLUGINS:
        info = PluginInfo(modname, modname, "gbench", __version__, builtin=True)
        modules.append((info, lambda m=modname: importlib.import_module(m)))
    for ep in _selected_entry_points(env):
        dist = ep.dist.name if ep.dist else "unknown"
        version = ep.dist.version if ep.dist else "unknown"
        info = PluginInfo(ep.name, ep.value, dist, version, builtin=False)
        modules.append((info, ep.load))

    for info, load in modules:
        try:
            module = load()
            pm.register(module, name=info.name)
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the others down
            registry.failures.append((info.name, f"{type(exc).__name__}: {exc}"))
            continue
        info.hooks = sorted(impl.name for impl in pm.get_hookcallers(module) or [])
        infos[info.name] = info
        registry.plugins.append(info)

    for kind, (hook_name, _) in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            info = infos[impl.plugin_name]
            register = _register_callback(registry, kind, info)
            try:
                impl.function(**({"register": register} if impl.argnames else {}))
            except (Exception, SystemExit) as exc:
                registry.failures.append(
                    (
                        info.name,
                        f"{hook_name} raised {type(exc).__name__}: {exc}\n"
                        + traceback.format_exc(limit=-3),
                    )
                )
    _collect_plots(registry, pm, infos)
    return registry


def _collect_plots(
    registry: Registry, pm: pluggy.PluginManager, infos: dict[str, PluginInfo]
) -> None:
    for impl in pm.hook.register_plots.get_hookimpls():
        info = infos[impl.plugin_name]

        def register(
            name: str,
            draw: Callable[..., Any],
            help: str,
            options: Any = (),
            info: PluginInfo = info,
        ) -> None:
            if name in registry.plots:
                other = registry.plots[name][3]
                registry.failures.append(
                    (
                        info.name,
                        f"two plot kinds are named '{name}': from plugins '{other.name}' and "
                        f"'{info.name}'; the one from '{other.name}' is kept",
                    )
                )
                return
            registry.plots[name] = (draw, help, frozenset(options), info)

        try:
            impl.function(register=register)
        except (Exception, SystemExit) as exc:
            registry.failures.append(
                (info.name, f"register_plots raised {type(exc).__name__}: {exc}")
            )


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = load_registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the loaded registry (tests that install or remove plugins use this)."""
    global _REGISTRY
    _REGISTRY = None
