"""The standard plot kinds of ``gbench plot``: ``sweep``, ``curves`` and ``frontier``.

They register through the same ``register_plots`` hook as any plugin's figure; the drawing
functions are the reporting library's (:mod:`benchmark_core.reports.plot_kinds`).
"""

from __future__ import annotations

from benchmark_core import hookimpl
from benchmark_core.reports.plot_kinds import STANDARD_KINDS


@hookimpl
def register_plots(register):
    for name, (draw, help_text, options) in STANDARD_KINDS.items():
        register(name, draw, help_text, options=options)
