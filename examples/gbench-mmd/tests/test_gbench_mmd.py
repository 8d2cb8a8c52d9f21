"""gbench-mmd's tests: gbench's conformance suite, then the mathematics."""

import math

import gbench_mmd
import pytest
import torch


@pytest.mark.gbench_conformance("gbench-mmd")
def test_conformance(gbench_check):
    """Every component this package registers does what it declares (one test per check)."""
    gbench_check()


def test_mmd2_is_the_unbiased_u_statistic():
    torch.manual_seed(0)
    x, y = torch.randn(50, 2), torch.randn(40, 2) + 0.5
    k = lambda a, b: math.exp(-((a - b) ** 2).sum().item() / (2 * 0.7**2))  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(50) for j in range(50) if i != j) / (50 * 49)
    yy = sum(k(y[i], y[j]) for i in range(40) for j in range(40) if i != j) / (40 * 39)
    xy = sum(k(a, b) for a in x for b in y) / (50 * 40)
    assert gbench_mmd.mmd2_unbiased(x, y, 0.7).item() == pytest.approx(xx + yy - 2 * xy, abs=1e-5)


def test_mmd2_gradient_is_finite_at_zero_distance():
    y = torch.zeros(8, 2, requires_grad=True)  # every within-sample distance is 0
    gbench_mmd.mmd2_unbiased(torch.randn(8, 2), y, 1.0).backward()
    assert torch.isfinite(y.grad).all()


def test_energy_distance_matches_the_closed_form_in_one_dimension():
    # E|N(μ, s²)| = s √(2/π) exp(−μ²/2s²) + μ (1 − 2Φ(−μ/s)); X − Y ~ N(−μ, 2), X − X' ~ N(0, 2)
    def abs_mean(mu, s):
        phi = 0.5 * (1 + math.erf(-mu / s / math.sqrt(2)))
        return s * math.sqrt(2 / math.pi) * math.exp(-(mu**2) / (2 * s * s)) + mu * (1 - 2 * phi)

    mu, s = 1.0, math.sqrt(2)
    exact = 2 * abs_mean(mu, s) - 2 * abs_mean(0.0, s)
    torch.manual_seed(0)
    est = gbench_mmd.energy_distance(torch.randn(3000, 1), torch.randn(3000, 1) + mu)
    assert abs(est.value - exact) < 4 * est.stderr and est.stderr < 0.04


def test_mmd_trains_beside_the_builtins(gbench_cli, tmp_path):
    out = tmp_path / "res"
    ran = gbench_cli(
        "run", "--objectives", "mmd,ml", "--tasks", "gaussian", "--models", "gaussian",
        "--metrics", "energy_distance", "--budget", "smoke", "--out", str(out),
    )  # fmt: skip
    assert ran.code == 0, ran.out + ran.err
    import pandas as pd

    frame = pd.read_parquet(out)
    assert set(frame.status) == {"ok"} and set(frame.objective) == {"mmd", "ml"}
    ed = frame[(frame.metric == "energy_distance") & (frame.objective == "mmd")]
    first, last = ed.sort_values("step").value.iloc[[0, -1]]
    assert last < first / 5  # training moved Q towards P


def test_the_claim_reads_p_s_covariance_from_the_final_values():
    from benchmark_core import ClaimResults

    def table(eig0, eig1):
        return ClaimResults.from_rows(
            {"task": "gaussian", "model": "gaussian", "objective": "mmd", "seed": s,
             "metric": m, "value": v * (1 + 0.002 * (s - 1))}
            for s in range(3) for m, v in (("cov_eig_0", eig0), ("cov_eig_1", eig1))
        )  # fmt: skip

    claim = gbench_mmd.MMDRecoversP()
    assert claim.check(table(4.02, 0.251)).outcome == "reproduced"
    refuted = claim.check(table(4.02, 0.40))  # the narrow axis left too wide
    assert refuted.outcome == "not reproduced"
    assert [e.outcome for e in refuted.evidence] == ["reproduced", "not reproduced"]
    assert claim.check(ClaimResults.from_rows([])).outcome == "inconclusive"
