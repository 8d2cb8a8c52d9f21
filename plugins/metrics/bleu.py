"""Metrics ``bleu`` (quality) and ``self_bleu`` (diversity) on token sequences.

Fixed sizes, so that numbers are comparable across runs: ``bleu`` is the corpus BLEU-4 of the
first ``n_candidates`` (500) of Q's samples against the first ``n_references`` (2000)
sequences of P's held-out test set (never the training set); ``self_bleu`` is the corpus
self-BLEU-4 of the first ``n_candidates`` (500) of Q's samples, each against the others.
Both use Chen & Cherry's smoothing 1 (see `gbench_plugins.common.bleu`). With ``temperatures`` they
also score samples of Q_T (values ``bleu@T=0.8``...): the quality–diversity frontier.
"""

from __future__ import annotations

from gbench_plugins.common.bleu import corpus_bleu, self_bleu
from gbench_plugins.metrics.likelihood import _Sampling, draw, tagged

from benchmark_core import Estimate, EvalContext, Model, Param, Task, hookimpl

_MAX_N = Param(4, "highest n-gram order (BLEU-n)", low=1)
_N_CAND = Param(500, "samples of Q scored", low=2)


class BLEU(_Sampling):
    """Corpus BLEU of Q's samples against P's held-out test set (higher: more P-like)."""

    name = "bleu"
    description = "corpus BLEU-4 of 500 samples of Q against 2000 held-out P sequences"
    kinds = frozenset({"sequence"})
    model_requires = frozenset({"autoregressive"})
    direction = "max"
    frontier = {"bleu": "self_bleu"}
    param_spec = {
        **_Sampling.param_spec,
        "max_n": _MAX_N,
        "n_candidates": _N_CAND,
        "n_references": Param(2000, "held-out P sequences used as references", low=1),
    }

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        refs = task.test[: self.n_references].cpu()
        out = {}
        for t in self.temps(task):
            cands = draw(model, ctx, max(ctx.budget.n_eval, self.n_candidates), t).tokens
            out[tagged("bleu", t)] = Estimate(
                corpus_bleu(cands[: self.n_candidates].cpu(), refs, max_n=self.max_n)
            )
        return out


class SelfBLEU(_Sampling):
    """Self-BLEU of Q's samples (each against the others; lower: more diverse)."""

    name = "self_bleu"
    description = "corpus self-BLEU-4 of 500 samples of Q (lower is more diverse)"
    kinds = frozenset({"sequence"})
    model_requires = frozenset({"autoregressive"})
    direction = "min"
    param_spec = {**_Sampling.param_spec, "max_n": _MAX_N, "n_candidates": _N_CAND}

    def compute(self, model: Model, task: Task, ctx: EvalContext) -> dict[str, Estimate]:
        out = {}
        for t in self.temps(task):
            cands = draw(model, ctx, max(ctx.budget.n_eval, self.n_candidates), t).tokens
            out[tagged("self_bleu", t)] = Estimate(
                self_bleu(cands[: self.n_candidates].cpu(), max_n=self.max_n)
            )
        return out


@hookimpl
def register_metrics(register):
    register(BLEU)
    register(SelfBLEU)
