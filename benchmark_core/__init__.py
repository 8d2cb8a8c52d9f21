"""gbench's core harness.

The public contract (``Task``, ``Model``, ``Objective``, ``Metric``, ``Param``, ``Estimate``,
``hookimpl``, ...) is importable from here; it lives in `benchmark_core.contract` and loads on
first use, so that ``gbench --version`` does not import torch.
"""

from typing import Any

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


def _version() -> str:
    # importlib.metadata costs half of the command line's start-up: read it on first use.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gbench")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()["__version__"] = value = _version()
        return value
    if name in _CONTRACT:
        from benchmark_core import contract

        return getattr(contract, name)
    raise AttributeError(f"module 'benchmark_core' has no attribute {name!r}")
