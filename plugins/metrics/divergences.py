"""Metrics ``kl_forward`` (KL[P‖Q]), ``kl_reverse`` (KL[Q‖P]) and ``jspi`` (JS_π[P‖Q] at several π).

Exact by 2-D Gauss–Legendre quadrature when the task is 2-D and both densities are known;
Monte Carlo with a standard error otherwise. The quadrature box comes from what the task and
the model declare (:mod:`gbench_plugins.common.densities`):

- both declare Gaussian components (gaussian, mixture tasks; Gaussian and Gaussian-mixture
  models): the box and the float64 densities come from the components; accuracy ~1e-9
  (measured in tests/test_cont_quadrature.py and tests/test_mixture_metrics.py); stderr NaN.
- otherwise (a flow, say) the box is built from 2,000 samples (see densities.py) and has to
  prove itself: the samples must look Gaussian-tailed (none beyond 5.4 Mahalanobis sds: the
  box reaches 10, and KL[Q‖P] weights any mass left outside by −log P, which is unbounded),
  both densities must integrate to 1 within 1e-4 over it (no peak missed), and the integrals
  at orders 10 and 6 must agree within 1e-4 + 1e-3·|value|. Then the value is exact (stderr
  NaN); when a check fails, or the rule would need more than ``max_nodes`` points, it is the
  Monte Carlo estimate with its standard error. (A flow with samples 20-40 sds out passed the
  mass check and was 0.8 nats off in KL[Q‖P]: hence the tail check.)

Monte Carlo: KL[P‖Q] = E_P[log p − log q] over up to ``n_eval`` points of P's held-out test
set; KL[Q‖P] = E_Q[log q − log p] over ``n_eval`` samples of Q; JS_π from both (unbiased,
:func:`gbench_plugins.common.estimators.mc_jspi`). A finite stderr therefore also says which way a
value was computed.
"""

from __future__ import annotations

from typing import Any

import torch
from gbench_plugins.common.densities import (
    Terms,
    gaussian_components,
    gaussian_tailed,
    log_density,
    model_quadrature_terms,
    n_nodes,
    quadrature_box,
)
from gbench_plugins.common.estimators import mc_jspi, mc_kl
from gbench_plugins.common.quadrature import jspi_integrand, kl_integrand
from gbench_plugins.metrics.sequence_divergences import sequence_kl_forward, sequence_kl_reverse

from benchmark_core import (
    Estimate,
    EvalContext,
    Metric,
    Model,
    Param,
    Task,
    UsageError,
    hookimpl,
    validate_params,
)

#: Samples per side used to place a quadrature box for a density without components.
BOX_SAMPLES = 2000
#: Checks of a sample-based box: |mass − 1| <= ATOL and |I_10 − I_6| <= ATOL + RTOL·|I_10|.
ATOL, RTOL = 1e-4, 1e-3

_MAX_NODES = Param(1_000_000, "largest quadrature rule; beyond it, Monte Carlo", low=1)


def held_out(task: Task, n: int) -> torch.Tensor:
    """Up to ``n`` rows of P's held-out test set (a random subset when it is larger)."""
    test = task.test
    if len(test) <= n:
        return test
    idx = torch.randperm(len(test))[:n]
    return test[idx.to(test.device)]


class _Divergence(Metric):
    kinds = frozenset({"vector"})
    task_requires = frozenset({"log_prob"})
    model_requires = frozenset({"log_prob", "sample"})
    direction = "min"
    param_spec = {"max_nodes": _MAX_NODES}
    #: Which sample sets the Monte Carlo estimate needs.
    uses_p_samples: bool = True
    uses_q_samples: bool = True

    def integrals(self, terms: Terms) -> dict[str, float]:
        """The values by quadrature, from both log densities at the nodes."""
        raise NotImplementedError

    def monte_carlo(
        self, lp_p: torch.Tensor, lq_p: torch.Tensor, lp_q: torch.Tensor, lq_q: torch.Tensor
    ) -> dict[str, Estimate]:
        """The values by Monte Carlo, from both log densities at P's and at Q's samples (None
        for a sample set the metric does not use)."""
        raise NotImplementedError

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        logp, logq = log_density(task), log_density(model)
        if task.kind == "vector" and task.test.shape[-1] == 2:
            exact = self._by_quadrature(model, task, ctx.device)
            if exact is not None:
                return exact
        n = ctx.budget.n_eval
        x = held_out(task, n) if self.uses_p_samples else None
        y = model.sample(n) if self.uses_q_samples else None

        def at(f: Any, z: torch.Tensor | None) -> torch.Tensor | None:
            return None if z is None else f(z)

        return self.monte_carlo(at(logp, x), at(logq, x), at(logp, y), at(logq, y))

    def _by_quadrature(
        self, model: Model, task: Task, device: torch.device
    ) -> dict[str, Estimate] | None:
        sides = []
        for obj, draw in (
            (task, lambda: held_out(task, BOX_SAMPLES)),
            (model, lambda: model.sample(BOX_SAMPLES) if "sample" in model.provides else None),
        ):
            comps = gaussian_components(obj)
            samples = None if comps is not None else draw()
            if samples is not None and not gaussian_tailed(samples):
                return None  # a box from these samples would cut off a heavy tail
            if comps is not None or samples is not None:
                sides.append((comps, samples))
        box, exact = quadrature_box(sides)
        orders = (10,) if exact else (10, 6)
        if sum(n_nodes(box, o) for o in orders) > self.max_nodes:
            return None
        terms = model_quadrature_terms(task, model, box, 10, device)
        values = self.integrals(terms)
        if not exact:
            # A box from samples must show that it holds both densities (mass 1: no peak
            # unresolved) and that the rule has converged (orders 10 and 6 agree).
            for density in (lambda lp, lq: lp.exp(), lambda lp, lq: lq.exp()):
                if not abs(terms.integrate(density) - 1) <= ATOL:  # NaN fails too
                    return None
            coarse = self.integrals(model_quadrature_terms(task, model, box, 6, device))
            for key, value in values.items():
                if not abs(value - coarse[key]) <= ATOL + RTOL * abs(value):
                    return None
        return {key: Estimate(value) for key, value in values.items()}


class KLForward(_Divergence):
    """KL[P‖Q] = E_P[log p − log q]: what maximum likelihood minimises (coverage).

    On sequence tasks: exact when the task is enumerable, else Monte Carlo over P's test set,
    per sequence and per token (see :mod:`gbench_plugins.metrics.sequence_divergences`).
    """

    name = "kl_forward"
    description = (
        "KL[P‖Q]: exact by 2-D quadrature or by enumeration, else Monte Carlo on P's test set"
    )
    kinds = frozenset({"vector", "sequence"})
    task_requires = {"vector": frozenset({"log_prob"}), "sequence": frozenset({"log_prob"})}
    model_requires = {"vector": frozenset({"log_prob"}), "sequence": frozenset({"log_prob"})}
    uses_q_samples = False

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        if task.kind == "sequence":
            return sequence_kl_forward(model, task, ctx)
        return super().compute(model, task, ctx)

    def integrals(self, terms: Terms) -> dict[str, float]:
        return {"kl_forward": terms.integrate(kl_integrand)}

    def monte_carlo(self, lp_p, lq_p, lp_q, lq_q):
        return {"kl_forward": Estimate(*mc_kl(lp_p, lq_p))}


class KLReverse(_Divergence):
    """KL[Q‖P] = E_Q[log q − log p]: what reverse-KL training minimises (quality).

    On sequence tasks: exact when the task is enumerable, else Monte Carlo over Q's samples,
    per sequence and per token.
    """

    name = "kl_reverse"
    description = (
        "KL[Q‖P]: exact by 2-D quadrature or by enumeration, else Monte Carlo on Q's samples"
    )
    kinds = frozenset({"vector", "sequence"})
    task_requires = {"vector": frozenset({"log_prob"}), "sequence": frozenset({"log_prob"})}
    model_requires = {
        "vector": frozenset({"log_prob", "sample"}),
        "sequence": frozenset({"log_prob", "autoregressive"}),
    }
    uses_p_samples = False

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        if task.kind == "sequence":
            return sequence_kl_reverse(model, task, ctx)
        return super().compute(model, task, ctx)

    def integrals(self, terms: Terms) -> dict[str, float]:
        return {"kl_reverse": terms.integrate(lambda lp, lq: kl_integrand(lq, lp))}

    def monte_carlo(self, lp_p, lq_p, lp_q, lq_q):
        return {"kl_reverse": Estimate(*mc_kl(lq_q, lp_q))}


class JSPi(_Divergence):
    """JS_π[P‖Q] = π KL[P‖M] + (1 − π) KL[Q‖M], M = πP + (1 − π)Q, at each π of ``pis``."""

    name = "jspi"
    description = "generalised JS_π[P‖Q] at each π in pis (values jspi[pi=…]); quadrature or MC"
    param_spec = {
        "pis": Param([0.1, 0.5, 0.99], "the values of π, each in (0, 1)", list),
        "max_nodes": _MAX_NODES,
    }

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        full = validate_params(cls.name, cls.param_spec, params)
        pis = full["pis"]
        bad = [
            p for p in pis if isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p < 1
        ]
        if bad or not pis:
            raise UsageError(
                f"jspi[pis={pis!r}]: give a non-empty list of numbers strictly between 0 and 1."
            )
        return full

    def __init__(self, **params: Any) -> None:
        super().__init__(**self.validate(params))

    @staticmethod
    def key(pi: float) -> str:
        """The value's name, e.g. ``jspi[pi=0.5]``."""
        return f"jspi[pi={float(pi):g}]"

    def integrals(self, terms: Terms) -> dict[str, float]:
        return {
            self.key(pi): terms.integrate(lambda lp, lq, pi=pi: jspi_integrand(lp, lq, pi))
            for pi in self.pis
        }

    def monte_carlo(self, lp_p, lq_p, lp_q, lq_q):
        return {self.key(pi): Estimate(*mc_jspi(lp_p, lq_p, lp_q, lq_q, pi)) for pi in self.pis}


@hookimpl
def register_metrics(register):
    register(KLForward)
    register(KLReverse)
    register(JSPi)
