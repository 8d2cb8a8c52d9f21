"""A deliberately false claim, for the tests that must see one refuted."""

from __future__ import annotations

from benchmark_core import Claim, ClaimGrid, Evidence, Interval, Verdict

TWO_MODES = "mixture[k=2,radius=2,std=0.5]"


class ReverseKLCoversBothModes(Claim):
    """A deliberately false claim: reverse KL spreads over both modes as ML does."""

    name = "reverse_kl_covers_both_modes"
    description = "reverse KL covers both modes (false)"
    statement = "Reverse KL fitted to two modes puts its mean between them, like ML."
    source = "nowhere: a test's false claim"
    grids = (ClaimGrid("reverse_kl", TWO_MODES, "isotropic_gaussian", "moments", "2"),)

    def check(self, results):
        # |mean_0|: which mode a seed picks is arbitrary, so signed means would average out.
        means = results.values("mean_0", "reverse_kl", TWO_MODES)
        ev = Evidence.near(
            "|mean_0| of reverse_kl (between the modes)",
            Interval.of(abs(m) for m in means),
            0.0,
            0.5,
        )
        return Verdict.of([ev])
