"""Likelihood metrics: ``nll_test`` (−E_P log Q, coverage), ``nll_oracle`` (−E_Q log P,
quality), ``nll_div`` (−E_Q log Q, Q's entropy: diversity) and ``entropy_p`` (P's entropy).

On sequence tasks every value is per sequence (nats), with a ``_per_token`` twin, and the
sampling metrics take ``temperatures=[...]``: each extra temperature T adds values named
``<value>@T=<T>`` computed on samples of Q_T (each conditional softmax(logits / T)), from
which the quality–diversity frontier is drawn. ``nll_test`` takes temperatures too: its
``nll_test@T=<T>`` is −E_P log Q_T on the held-out set, exact for an autoregressive model
(log Q_T(x) = Σ_n log softmax(logits_n / T)[x_n]), so that each temperature of one model is
one point (coverage, quality) of its curve. The sampling metrics of one evaluation share
one batch of samples per temperature (`draw`), so adding one costs no extra sampling.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from benchmark_core import (
    AutoregressiveModel,
    Estimate,
    EvalContext,
    Metric,
    Model,
    Param,
    SampleOutput,
    Task,
    hookimpl,
)

TEMPERATURES = Param(
    [], "extra sampling temperatures (sequence tasks): values named name@T=t", type=list
)


def mean_estimate(values: torch.Tensor) -> Estimate:
    """The mean of i.i.d. terms and its standard error."""
    values = values.double()
    n = values.numel()
    stderr = values.std().item() / math.sqrt(n) if n > 1 else math.nan
    return Estimate(values.mean().item(), stderr)


def draw(model: Model, ctx: EvalContext, n: int, temperature: float = 1.0) -> SampleOutput:
    """``model.sample_with_log_prob(n, temperature)``, shared by the metrics of one evaluation.

    Every metric starts from the same seeded RNG state (the runner reseeds before each), so
    the first draw of each would be identical anyway: it is made once, in the evaluation's
    shared store (`EvalContext.shared`), keyed by temperature, size and seed.
    """
    key = ("draw", float(temperature), n, torch.initial_seed())
    return ctx.shared(key, lambda: model.sample_with_log_prob(n, temperature))


def draw_task_log_probs(
    model: Model, task: Task, ctx: EvalContext, n: int, temperature: float = 1.0
) -> torch.Tensor:
    """log P of `draw`'s samples, shared like them (``nll_oracle`` and ``kl_reverse`` both
    score the same samples under the task: a pass over n x length softmaxes of P)."""
    key = ("draw_log_p", float(temperature), n, torch.initial_seed())
    return ctx.shared(key, lambda: task.log_prob(draw(model, ctx, n, temperature).tokens))


def test_log_probs(model: Model, task: Task, ctx: EvalContext) -> torch.Tensor:
    """log Q of P's held-out test set, computed once per evaluation (shared like `draw`'s)."""
    return ctx.shared("test_log_q", lambda: model.log_prob(task.test))


def check_temperatures(name: str, params: dict[str, Any]) -> None:
    """Refuse temperatures that are not numbers >= 0."""
    for t in params["temperatures"]:
        if isinstance(t, bool) or not isinstance(t, int | float) or not t >= 0:
            raise ValueError(f"temperatures must be numbers >= 0, got {t!r}")


def tagged(name: str, temperature: float) -> str:
    """``name`` at temperature 1, else ``name@T=<temperature>``."""
    return name if temperature == 1.0 else f"{name}@T={temperature:g}"


def with_per_token(out: dict[str, Estimate], task: Task) -> dict[str, Estimate]:
    """Add a ``<name>_per_token`` twin of each per-sequence value (name@T=t keeps its tag)."""
    if task.kind != "sequence":
        return out
    extra = {}
    for key, est in out.items():
        base, _, tag = key.partition("@")
        twin = f"{base}_per_token" + (f"@{tag}" if tag else "")
        extra[twin] = Estimate(est.value / task.length, est.stderr / task.length)
    return {**out, **extra}


class _Sampling(Metric):
    """A metric on samples of Q, at temperature 1 and each of ``temperatures``."""

    param_spec = {"temperatures": TEMPERATURES}

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        check_temperatures(cls.name, params)

    def temps(self, task: Task) -> list[float]:
        extra = [float(t) for t in self.temperatures if float(t) != 1.0]
        return [1.0, *dict.fromkeys(extra)] if task.kind == "sequence" else [1.0]


def tempered_log_prob(model: Model, x: torch.Tensor, temperature: float) -> torch.Tensor:
    """log Q_T(x) of an autoregressive model: its own ``tempered_log_prob`` when it has one
    (a full-sequence pass), else the contract's step-by-step version."""
    own = getattr(model, "tempered_log_prob", None)
    if callable(own):
        return own(x, temperature)
    return AutoregressiveModel.tempered_log_prob(model, x, temperature)  # type: ignore[arg-type]


class NLLTest(Metric):
    """Negative log-likelihood of the held-out test set under Q: the likelihood view.

    On sequence tasks, each of ``temperatures`` (T > 0) adds ``nll_test@T=<T>``, −E_P log Q_T
    with Q_T the distribution Q samples from at temperature T: the coverage of that sampler,
    paired with ``nll_oracle@T=<T>`` (its quality) on the temperature curve. The tempered
    values score the first ``n_eval`` held-out sequences (the budget's sample size, as
    ``nll_oracle`` draws), the untempered one all of them: each extra temperature then costs
    what one ``nll_oracle`` temperature does, not a pass over the whole set. Models without
    the ``autoregressive`` interface get the untempered value only.
    """

    name = "nll_test"
    description = "−E_P log Q(x) on P's held-out test set (nats per sample; coverage)"
    model_requires = frozenset({"log_prob"})
    direction = "min"
    param_spec = {
        "temperatures": Param(
            [],
            "extra temperatures T > 0 (sequence tasks): nll_test@T=t is −E_P log Q_T",
            type=list,
        )
    }

    @classmethod
    def check(cls, params: dict[str, Any]) -> None:
        check_temperatures(cls.name, params)
        if any(float(t) == 0.0 for t in params["temperatures"]):
            raise ValueError(
                "temperature 0 (greedy decoding) puts all mass on one sequence, which has no "
                "likelihood to score: nll_test takes temperatures > 0 (nll_oracle takes 0)"
            )

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        out = {"nll_test": mean_estimate(-test_log_probs(model, task, ctx))}
        if task.kind == "sequence" and "autoregressive" in model.provides:
            extra = [float(t) for t in self.temperatures if float(t) != 1.0]
            held_out = task.test[: ctx.budget.n_eval]
            for t in dict.fromkeys(extra):
                out[tagged("nll_test", t)] = mean_estimate(-tempered_log_prob(model, held_out, t))
        return with_per_token(out, task)


class NLLOracle(_Sampling):
    """Negative log-likelihood of Q's samples under the true P: the paper's eq. 9."""

    name = "nll_oracle"
    description = "−E_Q log P(x) over Q's samples (nats per sample; the paper's eq. 9, quality)"
    # On sequences the samples come with their log Q from sample_with_log_prob (shared with
    # nll_div and kl_reverse), which is the autoregressive interface's.
    model_requires = {
        "vector": frozenset({"sample"}),
        "sequence": frozenset({"sample", "autoregressive"}),
    }
    task_requires = frozenset({"log_prob"})
    direction = "min"
    frontier = {"nll_oracle": "nll_test"}

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        if task.kind != "sequence":
            x = model.sample(ctx.budget.n_eval)
            return {"nll_oracle": mean_estimate(-task.log_prob(x))}
        out = {}
        for t in self.temps(task):
            log_p = draw_task_log_probs(model, task, ctx, ctx.budget.n_eval, t)
            out[tagged("nll_oracle", t)] = mean_estimate(-log_p)
        return with_per_token(out, task)


class NLLDiv(_Sampling):
    """Q's own entropy −E_Q log Q (on sequences at temperature T: the entropy of Q_T)."""

    name = "nll_div"
    description = "−E_Q log Q(x), Q's entropy (nats per sample; diversity)"
    # Sequence tasks for now: on vectors it would add rows to every existing gaussian result.
    kinds = frozenset({"sequence"})
    model_requires = frozenset({"autoregressive", "log_prob"})
    direction = "none"

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        out = {}
        for t in self.temps(task):
            if t == 0.0:  # greedy decoding is deterministic: Q_0 has no entropy
                out[tagged("nll_div", t)] = Estimate(0.0)
                continue
            sample = draw(model, ctx, ctx.budget.n_eval, t)
            out[tagged("nll_div", t)] = mean_estimate(-sample.tempered_log_prob)
        return with_per_token(out, task)


class EntropyP(Metric):
    """P's entropy −E_P log P: exact on enumerable tasks, else from the held-out set's
    log P (`Task.test_log_prob`), with a standard error."""

    name = "entropy_p"
    description = "P's entropy −E_P log P (entropy_p; entropy_rate_p per token on sequences)"
    kinds = frozenset({"sequence"})
    task_requires = frozenset({"log_prob"})
    direction = "none"

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        if "enumerable" in task.provides:
            lp = task.log_prob(task.enumerate()).double()
            p = lp.exp()
            est = Estimate(float(-(torch.where(p > 0, p * lp, torch.zeros_like(p))).sum()))
        else:
            est = mean_estimate(-task.test_log_prob())
        out = {"entropy_p": est}
        if task.kind == "sequence":
            out["entropy_rate_p"] = Estimate(est.value / task.length, est.stderr / task.length)
        return out


@hookimpl
def register_metrics(register):
    register(NLLTest)
    register(NLLOracle)
    register(NLLDiv)
    register(EntropyP)
