"""Figure 1 from real (smoke) results, and the reference optima it is compared with."""

import numpy as np
import pytest
import torch
from gbench_plugins.common.reference import optimal_isotropic_s2, s2_forward_kl, s2_reverse_kl
from gbench_plugins.figures.figure1 import figure1, s2_against_pi
from helpers import grid, registry_with
from matplotlib.figure import Figure

from benchmark_core.engine.executors import run_grid
from benchmark_core.results.store import read_results


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig1")
    reg = registry_with()
    cells = grid(
        reg,
        objectives="ml,reverse_kl,jspi_exact[pi=[0.1,0.99]]",
        tasks="gaussian[angle=20]",
        metrics="moments",
    )
    run_grid(cells, out, torch.device("cpu"))
    frame = read_results([out]).frame
    frame.attrs["folder"] = out
    return frame, reg


def test_figure1_has_one_panel_per_configuration_in_the_papers_order(results, tmp_path):
    frame, reg = results
    fig = figure1(frame, reg)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.get_title().splitlines()[0] for ax in visible]
    assert titles == ["ml", "JS_π exact[π=0.1]", "JS_π exact[π=0.99]", "reverse_kl"]
    # three ellipses (1, 2, 3σ) per panel, centred on Q's fitted mean
    assert all(len(ax.patches) == 3 for ax in visible)
    s2 = [float(ax.get_title().split("s² = ")[1].split()[0]) for ax in visible]
    assert s2[0] > s2[1] > s2[2] > s2[3] * 0.9  # falls from ML towards reverse KL
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_s2_against_pi_draws_the_references(results):
    frame, _ = results
    pis = np.array([0.1, 0.5, 0.99])
    curve = (pis, np.array([optimal_isotropic_s2(4, 0.25, p) for p in pis]))
    fig = s2_against_pi(
        frame, {"ML": s2_forward_kl(4, 0.25), "reverse KL": s2_reverse_kl(4, 0.25)}, curve
    )
    assert isinstance(fig, Figure)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert any(label.startswith("ML: 2.125") for label in labels)
    assert any(label.startswith("reverse KL: 0.4706") for label in labels)
    assert any("jspi_exact" in label for label in labels)


def test_figure1_without_moments_is_a_clear_usage_error(results):
    from benchmark_core.contract.errors import UsageError

    frame, reg = results
    with pytest.raises(UsageError, match="needs the 'moments' metric"):
        figure1(frame[frame.metric == "train_loss"], reg)


def test_gbench_plot_figure1_writes_png_and_svg(gbench, results, tmp_path):
    frame, _ = results
    folder = frame.attrs["folder"]
    res = gbench("plot", "figure1", str(folder), "-o", str(tmp_path / "fig"))
    assert res.code == 0, res.err
    assert (tmp_path / "fig.png").stat().st_size > 20_000
    assert (tmp_path / "fig.svg").read_text().lstrip().startswith("<?xml")
    assert "figure1" in gbench("plot", "--help").out
