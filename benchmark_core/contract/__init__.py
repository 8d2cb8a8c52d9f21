"""The public contract: hook specs, component and claim base classes, parameters, budgets, errors.

Everything a plugin needs is importable from here (or from ``benchmark_core``); this package
imports nothing else of gbench.
"""

from importlib import import_module
from typing import Any

# Each public name and the module that defines it. Loaded on first use: the base classes import
# torch, and the command line needs only the errors to start (``gbench --version``).
_WHERE = {
    "Budget": "budgets",
    "CAPABILITIES": "component",
    "KINDS": "component",
    "Component": "component",
    "GbenchError": "errors",
    "PluginError": "errors",
    "ResultsError": "errors",
    "UsageError": "errors",
    "hookimpl": "hookspecs",
    "Estimate": "metric",
    "EvalContext": "metric",
    "Metric": "metric",
    "Model": "model",
    "Requirements": "needs",
    "incompatibility": "needs",
    "model_incompatibility": "needs",
    "Objective": "objective",
    "Param": "params",
    "positive": "params",
    "probability": "params",
    "validate_params": "params",
    "Task": "task",
    "AUTOREGRESSIVE_METHODS": "autoregressive",
    "Autoregressive": "autoregressive",
    "AutoregressiveModel": "autoregressive",
    "SampleOutput": "autoregressive",
    "categorical": "autoregressive",
    "check_density_temperature": "autoregressive",
    "stepwise_tempered_log_prob": "autoregressive",
    "MODEL_CAPABILITIES": "component",
    "OBJECTIVE_CAPABILITIES": "component",
    "TASK_CAPABILITIES": "component",
    "ModelStack": "stack",
    "per_replica": "stack",
    "Claim": "claim",
    "ClaimGrid": "claim",
    "ClaimResults": "claim",
    "Evidence": "claim",
    "Interval": "claim",
    "Verdict": "claim",
}

__all__ = [
    "AUTOREGRESSIVE_METHODS",
    "CAPABILITIES",
    "KINDS",
    "MODEL_CAPABILITIES",
    "OBJECTIVE_CAPABILITIES",
    "TASK_CAPABILITIES",
    "Autoregressive",
    "AutoregressiveModel",
    "Budget",
    "Claim",
    "ClaimGrid",
    "ClaimResults",
    "Component",
    "Estimate",
    "EvalContext",
    "Evidence",
    "GbenchError",
    "Interval",
    "Metric",
    "Model",
    "ModelStack",
    "Objective",
    "Param",
    "PluginError",
    "Requirements",
    "ResultsError",
    "SampleOutput",
    "Task",
    "UsageError",
    "Verdict",
    "categorical",
    "check_density_temperature",
    "hookimpl",
    "incompatibility",
    "model_incompatibility",
    "per_replica",
    "positive",
    "probability",
    "stepwise_tempered_log_prob",
    "validate_params",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(f"benchmark_core.contract.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'benchmark_core.contract' has no attribute {name!r}")
