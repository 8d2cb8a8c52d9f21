"""gbench's core harness.

The public contract (``Task``, ``Model``, ``Objective``, ``Metric``, ``Param``, ``Estimate``,
``hookimpl``, ...) is importable from here; it lives in `benchmark_core.contract` and loads on
first use, so that ``gbench --version`` does not import torch.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("gbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

_CONTRACT = (
    "Autoregressive",
    "AutoregressiveModel",
    "Budget",
    "CAPABILITIES",
    "Claim",
    "ClaimGrid",
    "ClaimResults",
    "Component",
    "Estimate",
    "EvalContext",
    "Evidence",
    "Interval",
    "KINDS",
    "Metric",
    "Model",
    "ModelStack",
    "Objective",
    "Param",
    "PluginError",
    "ResultsError",
    "SampleOutput",
    "Task",
    "UsageError",
    "Verdict",
    "hookimpl",
    "per_replica",
    "positive",
    "probability",
    "validate_params",
)

__all__ = ["__version__", *_CONTRACT]


def __getattr__(name: str) -> Any:
    if name in _CONTRACT:
        from benchmark_core import contract

        return getattr(contract, name)
    raise AttributeError(f"module 'benchmark_core' has no attribute {name!r}")
