"""Real training runs on the mixture task: every objective on every model that allows it, the
grid's skips on the implicit model, and mode covering against mode seeking (docs/science.md §5.2)."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import torch
from helpers import grid, registry_with

from benchmark_core.contract.budgets import Budget
from benchmark_core.engine.runner import run_cell

CPU = torch.device("cpu")
OBJECTIVES = "ml,reverse_kl,jspi_exact[pi=0.5],jspi[pi=0.5]"
DENSITY_NEEDING = {"ml", "reverse_kl", "jspi_exact"}
#: A few steps and small metric samples: enough to exercise every code path.
TINY = Budget("smoke", steps=30, batch_size=128, n_eval=400, checkpoints=1, log_every=10)


def final(outcome):
    df = pd.DataFrame(outcome.rows)
    return df[df.step == df.step.max()].set_index("metric")


def test_the_grid_skips_density_objectives_and_metrics_on_the_implicit_model():
    cells = grid(registry_with(), objectives=OBJECTIVES, tasks="mixture",
                 models="mlp_generator", metrics="all")  # fmt: skip
    by_name = {c.objective.name: c for c in cells}
    for name in DENSITY_NEEDING:
        assert by_name[name].skip_reason == (
            f"{name} needs the model's exact density (log_prob); mlp_generator has none"
        )
    assert by_name["jspi"].skip_reason is None
    cell = by_name["jspi"]
    assert {m.name for m in cell.metrics} == {"c2st", "prdc", "mmd", "nll_oracle", "moments"}
    density = sorted(
        f"{m} needs the model's exact density (log_prob); mlp_generator has none"
        for m in ("jspi", "kl_forward", "kl_reverse", "nll_test")
    )
    assert sorted(s for s in cell.metric_skips if "mlp_generator" in s) == density
    # the sequence-only metrics are left out for the kind of task, not the model
    assert all("mixture is a vector task" in s for s in cell.metric_skips if s not in density)


def test_every_objective_trains_every_model_that_allows_it_with_every_metric():
    models = (
        "isotropic_gaussian,gaussian,gaussian_mixture[k=4],flow[layers=2,hidden=16],mlp_generator"
    )
    cells = grid(registry_with(), objectives=OBJECTIVES, tasks="mixture[k=4]", models=models,
                 metrics="all")  # fmt: skip
    ran = 0
    for cell in cells:
        if cell.skip_reason is not None:
            assert cell.model.name == "mlp_generator" and cell.objective.name in DENSITY_NEEDING
            continue
        out = run_cell(replace(cell, budget=TINY), CPU)
        assert out.status == "ok", (cell.describe(), out.error)
        last = final(out)
        assert last.value.map(math.isfinite).all(), (cell.describe(), last.value)
        expected = {"c2st_acc", "mmd2", "precision", "recall", "density", "coverage"}
        if "log_prob" in cell.model.cls.provides:
            expected |= {"kl_forward", "kl_reverse", "jspi[pi=0.5]", "nll_test"}
        assert expected <= set(last.index), cell.describe()
        ran += 1
    assert ran == 4 * 4 + 1


def test_a_cell_with_every_metric_is_bit_for_bit_repeatable():
    [cell] = grid(registry_with(), objectives="reverse_kl", tasks="mixture[k=4]",
                  models="flow[layers=2,hidden=16]", metrics="all")  # fmt: skip
    cell = replace(cell, budget=TINY)
    cols = ["step", "metric", "value", "stderr"]
    one, two = (pd.DataFrame(run_cell(cell, CPU).rows)[cols] for _ in range(2))
    pd.testing.assert_frame_equal(one, two)


# Two modes at (±2, 0), each N(·, 0.25 I); a single isotropic Gaussian (mean offset 0.1 at the
# start). Measured at the smoke budget, seeds 0-2 (mean_0, s²):
#   ml                   (-0.038..-0.045, 2.238..2.243)   closed form: data mean, s² = 2.25
#   reverse_kl           (+2.000..+2.003, 0.248..0.251)   one mode: (±2, 0), s² = 0.25
#   jspi_exact[pi=0.99]  (+1.980..+1.989, 0.251..0.254)
# (jspi_exact at π = 0.1, 0.5 covers both modes; at 0.9 it sits on one: the jump of §5.)
# By quadrature the global JS_π optimum moves onto a mode already at π ≈ 0.105, but the
# covering point stays a local minimum up to π ≈ 0.63, so gradient descent from the near-
# symmetric start covers at π = 0.5 (3 of 3 seeds at smoke, 2 of 3 at quick). The isotropic
# model is the one to test: the full-covariance `gaussian` has another local minimum, stretched
# along the modes' axis (mean 0, Σ ≈ diag(3.0, 0.25); KL[Q‖P] = 1.87 there, log 2 on a mode;
# curvature along the mean +0.33), where reverse_kl ends from the default start (3 of 3
# seeds; 1-2 of 3 with init_offset 0.5 or 1).
TWO_MODES = "mixture[k=2,radius=2,std=0.5]"


def test_ml_covers_both_modes_while_reverse_kl_and_large_pi_js_seek_one():
    cells = grid(registry_with(), objectives="ml,reverse_kl,jspi_exact[pi=0.99]",
                 tasks=TWO_MODES, models="isotropic_gaussian", metrics="moments",
                 seeds="0,1")  # fmt: skip
    assert len(cells) == 6
    for cell in cells:
        out = run_cell(cell, CPU)
        assert out.status == "ok", out.error
        last = final(out).value
        mean_x, mean_y, s2 = last["mean_0"], last["mean_1"], last["cov_eig_0"]
        what = (cell.describe(), mean_x, mean_y, s2)
        if cell.objective.name == "ml":  # mode covering: between the modes, wide
            assert abs(mean_x) < 0.15 and abs(mean_y) < 0.1 and abs(s2 / 2.25 - 1) < 0.02, what
        else:  # mode seeking: on one mode, as narrow as it
            assert abs(abs(mean_x) - 2) < 0.05 and abs(mean_y) < 0.05, what
            assert abs(s2 / 0.25 - 1) < 0.05, what
