"""The paper's claims on sequences: scheduled sampling's inconsistency (§4.1) and the quality-
coverage trade-off on text (§5). See docs/science.md §6.4-6.5."""

from __future__ import annotations

from functools import cache

from gbench_plugins.common.pairs import (
    dirichlet_table,
    joint_from_conditional,
    marginals,
    mutual_information,
    ss_fixed_point,
)

from benchmark_core import Claim, ClaimGrid, ClaimResults, Evidence, Interval, Verdict, hookimpl

DEPENDENCES = (0.5, 0.9)
SS_EPS = 0.5
#: Nats. The mutual information of a table estimated from the task's 100,000 training pairs
#: has a standard error of about 0.003 nats (its plug-in bias, (K − 1)²/2N, is 8e-5): three of
#: them, rounded up.
MI_TOL = 0.01
#: P(x1)-weighted total variation. A conditional table estimated from 100,000 pairs over 5
#: symbols is ≈ 0.006 from its population in TV (½ Σ |error|, each entry's sd
#: √(p(1 − p)/n_row)): three of them, rounded up.
TV_TOL = 0.02


@cache
def fixed_point_mi(dependence: float, eps: float) -> float:
    """I(x1; x2) of the scheduled-sampling fixed point for ``pairs[dependence=...]`` with the
    task's other defaults (K = 5, seed 0, concentration 1, noise 0.1)."""
    joint = dirichlet_table(5, 0, 1.0, dependence, 0.1)
    p1, _ = marginals(joint)
    return mutual_information(joint_from_conditional(p1, ss_fixed_point(joint, eps)))


class ScheduledSamplingInconsistent(Claim):
    """Scheduled sampling does not converge to P."""

    name = "scheduled_sampling_inconsistent"
    description = "scheduled sampling is inconsistent (pairs)"
    statement = (
        "On length-2 sequences, scheduled sampling with ε = 0 learns x1 and x2 as independent "
        "(mutual information near 0) however dependent P is, and with 0 < ε < 1 it converges "
        "to the fixed point Q(x2|x1) = εP(x2|x1) + (1 − ε)P(x2), not to P, while maximum "
        "likelihood recovers P's dependence."
    )
    source = "Huszár (2015), §4.1 (eqs. 6-8)"
    science = "docs/science.md §6.4"
    tolerances = (
        f"mutual information within {MI_TOL} nats (3 standard errors of a table estimated "
        f"from 100,000 pairs, rounded up); distance to the fixed point under {TV_TOL} in "
        "P(x1)-weighted total variation (3 times what the finite training set alone leaves); "
        "the fixed point's own mutual information is computed exactly from P's table."
    )
    grids = (
        ClaimGrid(
            f"ml,scheduled_sampling[eps=[0.0,{SS_EPS}]]",
            f"pairs[dependence=[{','.join(map(str, DEPENDENCES))}]]",
            "tabular",
            "mutual_info,ss_fixed_point_tv",
        ),
    )

    def check(self, results: ClaimResults) -> Verdict:
        evidence = []
        ss0, ss = "scheduled_sampling[eps=0]", f"scheduled_sampling[eps={SS_EPS:g}]"
        for dep in DEPENDENCES:
            task = f"pairs[dependence={dep:g}]"
            mi_p = results.interval("mi_p", "ml", task)
            evidence += [
                Evidence.above(f"mi_p of {task} (P is dependent)", mi_p, 0.1),
                Evidence.below(
                    f"mi_q of {ss0} on {task}", results.interval("mi_q", ss0, task), MI_TOL
                ),
                Evidence.below(
                    f"ss_fixed_point_tv of {ss} on {task}",
                    results.interval("ss_fixed_point_tv", ss, task),
                    TV_TOL,
                ),
                Evidence.near(
                    f"mi_q of {ss} on {task} (the fixed point's)",
                    results.interval("mi_q", ss, task),
                    fixed_point_mi(dep, SS_EPS),
                    MI_TOL,
                ),
                Evidence.above(
                    f"mi_p − mi_q of {ss} on {task} (not P)",
                    Interval.difference(
                        results.values("mi_p", ss, task), results.values("mi_q", ss, task)
                    ),
                    MI_TOL,
                ),
                Evidence.near(
                    f"mi_q − mi_p of ml on {task} (ML recovers P)",
                    Interval.difference(
                        results.values("mi_q", "ml", task), results.values("mi_p", "ml", task)
                    ),
                    0.0,
                    MI_TOL,
                ),
            ]
        return Verdict.of(evidence, results.missing_notes())


#: Reverse KL started from the same seed's maximum-likelihood model (a warm start).
FINE_TUNE = "reverse_kl[init=ml]"
#: Nats per token: SeqGAN's gain over its ML start on the same oracle protocol (9.04 → 8.74).
QUALITY_GAIN = 0.3


class TextQualityCoverage(Claim):
    """On text, the objective closer to KL[Q‖P] buys quality with coverage."""

    name = "text_quality_coverage"
    description = "on text, reverse KL trades coverage for quality"
    statement = (
        "On the oracle-LSTM text task, fine-tuning a maximum-likelihood model towards KL[Q‖P] "
        "(reverse KL, started from the ML model) gives samples that P finds more likely "
        "(nll_oracle at least 0.3 nats per token lower, SeqGAN's published gain over its ML "
        "start on this oracle) at the price of coverage (higher nll_test)."
    )
    source = "Huszár (2015), §5 (eq. 9: sample log-likelihood under P as a model of quality)"
    science = "docs/science.md §6.5"
    tolerances = (
        "an ordering on each axis, by the 95% interval of the per-token difference paired by "
        "seed (each fine-tune against the ML model it started from; each value a Monte Carlo "
        "mean, whose error the seeds' spread includes): "
        "the quality gain's interval above 0.3 nats per token, the coverage loss's above 0."
    )
    grids = (ClaimGrid(f"ml,{FINE_TUNE}", "text", "lstm", "nll_oracle,nll_test"),)

    def check(self, results: ClaimResults) -> Verdict:
        def diff(metric: str, a: str, b: str) -> Interval:
            # Paired by seed: each fine-tune against the ML model it started from.
            return Interval.paired(
                results.by_seed(metric, a, "text"), results.by_seed(metric, b, "text")
            )

        evidence = [
            Evidence.above(
                f"nll_oracle_per_token: ml − {FINE_TUNE} (quality)",
                diff("nll_oracle_per_token", "ml", FINE_TUNE),
                QUALITY_GAIN,
            ),
            Evidence.above(
                f"nll_test_per_token: {FINE_TUNE} − ml (coverage)",
                diff("nll_test_per_token", FINE_TUNE, "ml"),
            ),
        ]
        return Verdict.of(evidence, results.missing_notes())


@hookimpl
def register_claims(register):
    register(ScheduledSamplingInconsistent)
    register(TextQualityCoverage)
