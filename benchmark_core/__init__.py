"""gbench's core harness: hook specs, component base classes, grid, runner and results."""

from importlib.metadata import PackageNotFoundError, version

import pluggy

try:
    __version__ = version("gbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

#: Decorator for plugin hook implementations: ``@hookimpl def register_tasks(register): ...``
hookimpl = pluggy.HookimplMarker("gbench")

__all__ = ["__version__", "hookimpl"]
