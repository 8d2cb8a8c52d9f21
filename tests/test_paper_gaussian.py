"""The paper's Figure 1 numbers from real training runs (quick budget; the slow part of CI).

Each fitted s² of Q = N(μ, s²I) on P = N(0, diag(a, b)) is compared with an independent
reference: closed forms for maximum likelihood and reverse KL, docs/science.md's table and our own
quadrature for JS_π.

The runs take the default path, as users and the committed results do: cells that differ only
in seed or π train together as replicas (``--replicas 32``).
"""

import json

import pyarrow.parquet as pq
import pytest
import torch
from gbench_plugins.common.reference import optimal_isotropic_s2, s2_forward_kl, s2_reverse_kl
from helpers import grid, registry_with

from benchmark_core.engine.executors import run_grid
from benchmark_core.results.store import read_results

pytestmark = pytest.mark.slow

REPLICAS = 32  # the CLI's default

SCIENCE_TABLE = {0.1: 1.7017, 0.5: 1.0000, 0.99: 0.4881}  # docs/science.md §5.1, a=4, b=0.25


def fitted_s2(tmp_path, objectives, tasks, seeds="1"):
    cells = grid(
        registry_with(),
        objectives=objectives,
        tasks=tasks,
        models="isotropic_gaussian",
        metrics="moments",
        seeds=seeds,
        budget="quick",
    )
    report = run_grid(cells, tmp_path, torch.device("cpu"), replicas=REPLICAS)
    assert report.counts["ok"] == len(cells), report.failed
    df = read_results([tmp_path]).frame
    final = df[
        (df.metric == "cov_eig_0") & (df.step == df.groupby("cell_id").step.transform("max"))
    ]
    return final.groupby(["task_label", "label"]).value.mean()


def batch_sizes(folder):
    """How many cells each cell trained with (1: alone), from the files' metadata."""
    sizes = []
    for path in sorted(folder.glob("*.parquet")):
        meta = json.loads(pq.read_schema(path).metadata[b"gbench"])
        sizes.append(len(meta.get("replicas", [path.stem])))
    return sorted(sizes)


def test_exact_jspi_ml_and_reverse_kl_reach_their_optima(tmp_path):
    # The mean of 3 seeds is checked: at the quick budget one run ends within about 2% of
    # its optimum (on the rotated task at π = 0.99, −0.9% to −2.0% over 5 seeds, mean −1.6%),
    # so a single seed sits on the tolerance's edge; the seeds cost one stack, not three runs.
    s2 = fitted_s2(
        tmp_path,
        "ml,reverse_kl,jspi_exact[pi=[0.1,0.5,0.99]]",
        "gaussian[a=4,b=0.25],gaussian[a=2,b=0.5,angle=45]",
        seeds="3",
    )
    # Per task: ml's 3 seeds train as one stack, reverse_kl's too, and the π sweep's 9 cells.
    assert batch_sizes(tmp_path) == [3] * 12 + [9] * 18
    first = s2.loc["gaussian[a=4,b=0.25]"]
    for pi, ref in SCIENCE_TABLE.items():
        assert first[f"jspi_exact[pi={pi:g}]"] == pytest.approx(ref, rel=0.02)
        assert optimal_isotropic_s2(4, 0.25, pi) == pytest.approx(ref, abs=1e-4)
    assert first["ml"] == pytest.approx(s2_forward_kl(4, 0.25), rel=0.02)
    assert first["reverse_kl"] == pytest.approx(s2_reverse_kl(4, 0.25), rel=0.02)
    # s² falls strictly from the ML value towards the reverse-KL value as π grows
    order = ["ml", "jspi_exact[pi=0.1]", "jspi_exact[pi=0.5]", "jspi_exact[pi=0.99]"]
    assert list(first[order]) == sorted(first[order], reverse=True)
    # another P, rotated: against our own quadrature reference
    other = s2.loc["gaussian[a=2,b=0.5,angle=45]"]
    for pi in (0.1, 0.5, 0.99):
        ref = optimal_isotropic_s2(2, 0.5, pi)
        assert other[f"jspi_exact[pi={pi:g}]"] == pytest.approx(ref, rel=0.02)
    assert other["reverse_kl"] == pytest.approx(s2_reverse_kl(2, 0.5), rel=0.02)


def test_adversarial_jspi_approximates_the_optimum_within_ten_percent(tmp_path):
    s2 = fitted_s2(tmp_path, "jspi[pi=[0.1,0.5,0.99]]", "gaussian[a=4,b=0.25]", seeds="3")
    assert batch_sizes(tmp_path) == [9] * 9  # three π × three seeds, trained as one
    fitted = s2.loc["gaussian[a=4,b=0.25]"]
    for pi, ref in SCIENCE_TABLE.items():
        assert fitted[f"jspi[pi={pi:g}]"] == pytest.approx(ref, rel=0.10)
    assert fitted["jspi[pi=0.1]"] > fitted["jspi[pi=0.5]"] > fitted["jspi[pi=0.99]"]
