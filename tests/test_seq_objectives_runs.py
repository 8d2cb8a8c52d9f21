"""The sequence objectives run on pairs through the runner and reduce what they minimise.

Measured (seed 0, smoke budget, tabular / lstm): KL[Q‖P] after reverse_kl 0.003 / 0.0002;
jspi_exact[pi=0.5] KL[P‖Q] 0.0009 / 2e-7; jspi[pi=0.5] KL[P‖Q] 0.04 / 0.016, from about 0.6
before training.
"""

import pytest
import torch
from helpers import grid, registry_with

from benchmark_core.engine.executors import run_grid
from benchmark_core.results.store import read_results


@pytest.mark.parametrize("model", ["tabular", pytest.param("lstm", marks=pytest.mark.slow)])
def test_reverse_kl_and_jspi_reduce_their_divergences_on_pairs(tmp_path, model):
    cells = grid(
        registry_with(),
        objectives="reverse_kl,jspi_exact,jspi",
        tasks="pairs",
        models=model,
        metrics="kl_forward,kl_reverse",
        seeds="0,",
        budget="smoke",
    )
    report = run_grid(cells, tmp_path, torch.device("cpu"))
    assert report.counts["ok"] == len(cells), report.failed
    df = read_results([tmp_path]).frame
    v = df.set_index(["label", "step", "metric"]).value
    last = int(df.step.max())
    for label in ("reverse_kl", "jspi_exact", "jspi"):
        for metric in ("kl_forward", "kl_reverse"):
            assert v[label, last, metric] < 0.5 * v[label, 0, metric], (label, metric)
    assert v["reverse_kl", last, "kl_reverse"] < 0.01
    assert v["jspi_exact", last, "kl_forward"] < 0.01
    assert v["jspi", last, "kl_forward"] < 0.1
