"""The public contract: hook specs, component and claim base classes, parameters, budgets, errors.

Everything a plugin needs is importable from here (or from ``benchmark_core``); this package
imports nothing else of gbench.
"""

from benchmark_core.contract.autoregressive import (
    AUTOREGRESSIVE_METHODS,
    Autoregressive,
    AutoregressiveModel,
    SampleOutput,
    categorical,
)
from benchmark_core.contract.budgets import Budget
from benchmark_core.contract.claim import (
    Claim,
    ClaimGrid,
    ClaimResults,
    Evidence,
    Interval,
    Verdict,
)
from benchmark_core.contract.component import (
    CAPABILITIES,
    KINDS,
    MODEL_CAPABILITIES,
    OBJECTIVE_CAPABILITIES,
    TASK_CAPABILITIES,
    Component,
)
from benchmark_core.contract.errors import GbenchError, PluginError, ResultsError, UsageError
from benchmark_core.contract.hookspecs import hookimpl
from benchmark_core.contract.metric import Estimate, EvalContext, Metric
from benchmark_core.contract.model import Model
from benchmark_core.contract.needs import Requirements, incompatibility, model_incompatibility
from benchmark_core.contract.objective import Objective
from benchmark_core.contract.params import Param, positive, probability, validate_params
from benchmark_core.contract.stack import ModelStack, per_replica
from benchmark_core.contract.task import Task

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
    "hookimpl",
    "incompatibility",
    "model_incompatibility",
    "per_replica",
    "positive",
    "probability",
    "validate_params",
]
