"""Claims on synthetic results tables: the statistics, the verdict rule and each built-in
claim's check (fast; the real runs are in test_claims_cli.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from claim_helpers import ReverseKLCoversBothModes
from gbench_plugins.claims.gaussian import (
    FIGURE1_TOL,
    PIS,
    TWO_MODES,
    AdversarialTracksJSPi,
    JSPiInterpolates,
    OverUnderGeneralisation,
    exact_s2,
)
from gbench_plugins.claims.sequences import (
    ScheduledSamplingInconsistent,
    TextQualityCoverage,
    fixed_point_mi,
)
from gbench_plugins.common.pairs import dirichlet_table, mutual_information
from scipy import stats

from benchmark_core import Claim, ClaimResults, Evidence, Interval, Verdict
from benchmark_core.contract.claim import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED

# --- the statistics ------------------------------------------------------------------------


def test_interval_is_students_t_over_seeds():
    xs = [2.1, 2.3, 1.9, 2.2]
    got = Interval.of(xs)
    lo, hi = stats.t.interval(0.95, len(xs) - 1, loc=np.mean(xs), scale=stats.sem(xs))
    assert (got.mean, got.n) == (pytest.approx(2.125), 4)
    assert got.low == pytest.approx(lo) and got.high == pytest.approx(hi)


def test_one_seed_has_no_interval_and_none_has_no_value():
    one, none = Interval.of([3.0]), Interval.of([math.nan])
    assert (one.mean, one.low, one.high, one.n) == (3.0, -math.inf, math.inf, 1)
    assert none.n == 0 and math.isnan(none.mean)


def test_difference_is_welchs_interval():
    a, b = [5.0, 5.4, 5.2], [1.0, 1.1, 0.7, 0.9]
    got = Interval.difference(a, b)
    res = stats.ttest_ind(a, b, equal_var=False)
    lo, hi = res.confidence_interval(0.95)
    assert got.mean == pytest.approx(np.mean(a) - np.mean(b))
    assert (got.low, got.high) == (pytest.approx(lo), pytest.approx(hi))


def test_exact_values_give_a_point_interval():
    got = Interval.difference([0.7, 0.7], [0.2, 0.2])
    assert (got.low, got.mean, got.high) == (pytest.approx(0.5),) * 3


@pytest.mark.parametrize(
    ("values", "outcome"),
    [
        ([1.00, 1.01, 0.99], REPRODUCED),  # interval inside 1 ± 0.1
        ([1.50, 1.51, 1.49], NOT_REPRODUCED),  # wholly outside
        ([1.00, 1.30, 0.70], INCONCLUSIVE),  # straddles the band's edges
        ([1.00], INCONCLUSIVE),  # one seed: no interval
        ([], INCONCLUSIVE),  # nothing measured
    ],
)
def test_evidence_outcome_follows_the_interval_and_the_band(values, outcome):
    assert Evidence.near("x", Interval.of(values), 1.0, 0.1).outcome == outcome


def test_a_verdict_is_never_a_pass_by_default():
    ok = Evidence.above("d", Interval.of([1.0, 1.1, 1.2]))
    bad = Evidence.below("d", Interval.of([1.0, 1.1, 1.2]))
    vague = Evidence.above("d", Interval.of([-1.0, 1.0, 0.5]))
    assert Verdict.of([]).outcome == INCONCLUSIVE
    assert Verdict.of([ok]).outcome == REPRODUCED
    assert Verdict.of([ok, vague]).outcome == INCONCLUSIVE
    assert Verdict.of([ok, vague, bad]).outcome == NOT_REPRODUCED
    with pytest.raises(ValueError, match="not one of"):
        Verdict("passed")


def test_evidence_as_json_writes_infinite_bounds_as_null():
    d = Evidence.above("d", Interval.of([1.0, 1.1, 1.2])).as_dict()
    assert d["band"] == [0.0, None] and d["outcome"] == REPRODUCED and d["n"] == 3


# --- synthetic results tables ----------------------------------------------------------------

RNG = np.random.default_rng(0)


def rows(objective, task, metric, value, model="isotropic_gaussian", seeds=3, spread=0.002):
    """One row per seed: ``value`` plus a small seed-to-seed spread (relative)."""
    noise = RNG.normal(0, spread, seeds)
    return [
        {
            "task": task,
            "model": model,
            "objective": objective,
            "seed": s,
            "metric": metric,
            "value": value * (1 + noise[s]) if value else noise[s],
        }
        for s in range(seeds)
    ]


def figure1_rows(s2: dict[str, float], **kw) -> list[dict]:
    return [r for label, v in s2.items() for r in rows(label, "gaussian", "cov_eig_0", v, **kw)]


def mixture_rows(ml_mean, ml_s2, rkl_mean, rkl_s2):
    out = rows("ml", TWO_MODES, "mean_0", ml_mean) + rows("ml", TWO_MODES, "cov_eig_0", ml_s2)
    out += rows("reverse_kl", TWO_MODES, "mean_0", rkl_mean)
    return out + rows("reverse_kl", TWO_MODES, "cov_eig_0", rkl_s2)


def verdict_of(claim: type[Claim], table: list[dict], missing=()) -> Verdict:
    return claim().check(ClaimResults.from_rows(table, missing))


def test_over_under_generalisation_reproduced_on_the_exact_optima():
    table = figure1_rows({"ml": 2.125, "reverse_kl": 0.4706}) + mixture_rows(0.01, 2.25, -2, 0.25)
    for r in table[-6:-3]:  # each seed sits on one mode or the other
        r["value"] *= (-1) ** r["seed"]
    v = verdict_of(OverUnderGeneralisation, table)
    assert v.outcome == REPRODUCED, v
    assert len(v.evidence) == 7 and {e.outcome for e in v.evidence} == {REPRODUCED}


def test_over_under_generalisation_refuted_when_reverse_kl_covers_both_modes():
    table = figure1_rows({"ml": 2.125, "reverse_kl": 0.4706}) + mixture_rows(0.0, 2.25, 0.0, 2.2)
    v = verdict_of(OverUnderGeneralisation, table)
    assert v.outcome == NOT_REPRODUCED
    refuting = {e.what for e in v.evidence if e.outcome == NOT_REPRODUCED}
    assert refuting == {
        f"|mean_0| of reverse_kl on {TWO_MODES} (on a mode)",
        f"s² of reverse_kl on {TWO_MODES}",
    }


def test_a_false_claim_is_not_reproduced_with_the_figure_that_refutes_it():
    table = mixture_rows(0.0, 2.25, 2.0, 0.25)
    for r in table[-6:-3]:  # seeds land on either mode
        r["value"] *= (-1) ** r["seed"]
    v = verdict_of(ReverseKLCoversBothModes, table)
    assert v.outcome == NOT_REPRODUCED
    [e] = v.evidence
    assert e.measured.mean == pytest.approx(2.0, abs=0.02) and e.measured.low > 0.5
    assert e.expected == "0 ± 0.5"


def jspi_rows(shift=0.0, pis=PIS):
    exact = {f"jspi_exact[pi={pi:g}]": exact_s2(pi) + shift for pi in pis}
    return figure1_rows({"ml": 2.14, **exact, "reverse_kl": 0.4706})


def test_jspi_interpolates_reproduced_on_the_quadrature_optima():
    v = verdict_of(JSPiInterpolates, jspi_rows())
    assert v.outcome == REPRODUCED, [e for e in v.evidence if e.outcome != REPRODUCED]
    assert len(v.evidence) == len(PIS) + len(PIS) + 1  # each π, then each neighbouring pair


def test_jspi_interpolates_refuted_when_the_order_flips():
    s2 = {f"jspi_exact[pi={pi:g}]": exact_s2(pi) for pi in PIS}
    s2["jspi_exact[pi=0.01]"] = 2.16  # within its tolerance, but above ML's 2.14
    v = verdict_of(JSPiInterpolates, figure1_rows({"ml": 2.14, **s2, "reverse_kl": 0.4706}))
    assert v.outcome == NOT_REPRODUCED
    [e] = [e for e in v.evidence if e.outcome == NOT_REPRODUCED]
    assert e.what == "s²(ml) − s²(jspi_exact[pi=0.01]) on gaussian"


def test_jspi_interpolates_refuted_by_ml_value_at_small_pi():
    """The caption's reading (π = 0.1 at ML's value) is what the claim's numbers refute."""
    table = jspi_rows()
    for r in table:
        if r["objective"] == "jspi_exact[pi=0.1]":
            r["value"] = 2.125 * (1 + RNG.normal(0, 0.002))
    v = verdict_of(JSPiInterpolates, table)
    assert v.outcome == NOT_REPRODUCED
    assert pytest.approx(3 * math.sqrt((32 + 0.125) / 40_000) / 2.125 + 0.02) == FIGURE1_TOL


def test_adversarial_tracks_jspi_decides_by_the_pairwise_interval():
    exact = {f"jspi_exact[pi={pi:g}]": exact_s2(pi) for pi in (0.1, 0.5, 0.99)}
    game = {k.replace("jspi_exact", "jspi"): v for k, v in exact.items()}
    assert verdict_of(AdversarialTracksJSPi, figure1_rows({**exact, **game})).outcome == REPRODUCED
    game["jspi[pi=0.5]"] = 0.8  # 20% off
    v = verdict_of(AdversarialTracksJSPi, figure1_rows({**exact, **game}))
    assert v.outcome == NOT_REPRODUCED
    noisy = figure1_rows(exact) + figure1_rows(game, spread=0.2)  # seeds disagree wildly
    assert verdict_of(AdversarialTracksJSPi, noisy).outcome == INCONCLUSIVE


def pairs_rows(dep, ss0_mi, ss_mi, tv, ml_mi=None, seeds=3):
    task = f"pairs[dependence={dep:g}]"
    mi_p = mutual_information(dirichlet_table(5, 0, 1.0, dep, 0.1))
    out = []
    for label, mi_q in (
        ("ml", mi_p if ml_mi is None else ml_mi),
        ("scheduled_sampling[eps=0]", ss0_mi),
        ("scheduled_sampling[eps=0.5]", ss_mi),
    ):
        out += rows(label, task, "mi_q", mi_q, "tabular", seeds)
        out += rows(label, task, "mi_p", mi_p, "tabular", seeds, spread=0)
    return out + rows("scheduled_sampling[eps=0.5]", task, "ss_fixed_point_tv", tv, "tabular")


def test_fixed_point_mutual_information_lies_between_independence_and_p():
    for dep in (0.5, 0.9):
        mi_p = mutual_information(dirichlet_table(5, 0, 1.0, dep, 0.1))
        assert pytest.approx(fixed_point_mi(dep, 0.0), abs=1e-12) == 0
        assert fixed_point_mi(dep, 1.0) == pytest.approx(mi_p)
        assert 0 < fixed_point_mi(dep, 0.5) < mi_p


def test_scheduled_sampling_claim_on_the_fixed_point_and_on_p():
    at_fixed_point = [
        r for dep in (0.5, 0.9) for r in pairs_rows(dep, 1e-4, fixed_point_mi(dep, 0.5), 0.004)
    ]
    assert verdict_of(ScheduledSamplingInconsistent, at_fixed_point).outcome == REPRODUCED
    # A consistent scheduled sampling (ε = 0 keeping P's dependence) refutes it.
    consistent = []
    for dep in (0.5, 0.9):
        mi_p = mutual_information(dirichlet_table(5, 0, 1.0, dep, 0.1))
        consistent += pairs_rows(dep, mi_p, mi_p, 0.2)
    v = verdict_of(ScheduledSamplingInconsistent, consistent)
    assert v.outcome == NOT_REPRODUCED
    assert sum(e.outcome == NOT_REPRODUCED for e in v.evidence) == 8  # 4 figures per P


def test_text_claim_reads_the_order_on_both_axes():
    rkl = "reverse_kl[init=ml]"

    def table(oracle_ml, oracle_rkl, test_ml, test_rkl, spread=0.01):
        out = rows("ml", "text", "nll_oracle_per_token", oracle_ml, "lstm", spread=spread)
        out += rows(rkl, "text", "nll_oracle_per_token", oracle_rkl, "lstm", spread=spread)
        out += rows("ml", "text", "nll_test_per_token", test_ml, "lstm", spread=spread)
        return out + rows(rkl, "text", "nll_test_per_token", test_rkl, "lstm", spread=spread)

    assert verdict_of(TextQualityCoverage, table(9.5, 8.0, 7.6, 8.3)).outcome == REPRODUCED
    # From scratch at the quick budget reverse KL was worse on both axes.
    v = verdict_of(TextQualityCoverage, table(9.47, 10.44, 7.60, 8.29))
    assert v.outcome == NOT_REPRODUCED
    assert [e.outcome for e in v.evidence] == [NOT_REPRODUCED, REPRODUCED]
    # Better quality, but by less than the 0.3 nats per token the claim asks for.
    v = verdict_of(TextQualityCoverage, table(9.47, 9.40, 7.60, 8.29, spread=0.001))
    assert [e.outcome for e in v.evidence] == [NOT_REPRODUCED, REPRODUCED]


def test_missing_cells_leave_a_claim_inconclusive_and_say_which():
    table = figure1_rows({"ml": 2.125})  # reverse_kl never ran
    v = verdict_of(OverUnderGeneralisation, table, missing=["gaussian · reverse_kl (error)"])
    assert v.outcome == INCONCLUSIVE
    assert v.notes == ("no result from gaussian · reverse_kl (error)",)
    assert verdict_of(TextQualityCoverage, []).outcome == INCONCLUSIVE


def test_claim_results_need_the_documented_columns():
    with pytest.raises(ValueError, match="need the columns"):
        import pandas as pd

        ClaimResults(pd.DataFrame({"task": ["gaussian"]}))


def test_a_paired_interval_cancels_the_spread_of_a_shared_start():
    """Fine-tunes that each move their own seed's start by about −0.5 are told apart from
    zero when paired by seed, though the starts differ by more than that between seeds."""
    start = {0: 9.10, 1: 9.66, 2: 9.60}
    tuned = {0: 8.56, 1: 9.12, 2: 9.08, 7: 1.0}  # seed 7 has no start: left out
    paired = Interval.paired(start, tuned)
    assert paired.n == 3 and math.isclose(paired.mean, (0.54 + 0.54 + 0.52) / 3)
    assert 0.3 < paired.low < paired.mean < paired.high < 0.6
    unpaired = Interval.difference(list(start.values()), [8.56, 9.12, 9.08])
    assert unpaired.low < 0 < unpaired.high  # the seeds' spread swamps it
