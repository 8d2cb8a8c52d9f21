"""On a CUDA device: smoke cells give finite, repeatable results, and equal their CPU runs.

Every test here is marked ``gpu``; ``conftest.py`` skips them where torch sees no CUDA device.
"""

import math

import pandas as pd
import pytest
import torch
from helpers import grid, registry_with, run_gbench

from benchmark_core.contract.errors import UsageError
from benchmark_core.engine.runner import resolve_device, run_work
from benchmark_core.results.store import read_results

pytestmark = pytest.mark.gpu
KEY = ["cell_id", "step", "metric"]


def frame(folder):
    return read_results([folder], strict=True).frame.sort_values(KEY).reset_index(drop=True)


def test_a_smoke_grid_on_cuda_is_finite_and_bit_for_bit_repeatable_with_deterministic(tmp_path):
    # Two fresh processes: --deterministic must set cuBLAS's workspace before CUDA starts.
    # jspi draws from the CUDA generator while it trains and nll_oracle while it evaluates;
    # two seeds make the cells of each objective train together as replicas.
    args = (
        *("run", "--device", "cuda", "--deterministic", "--budget", "smoke", "--seeds", "2"),
        *("--objectives", "ml,jspi", "--tasks", "gaussian", "--models", "isotropic_gaussian"),
        *("--metrics", "nll_test,nll_oracle,moments"),
    )
    runs = []
    for name in ("a", "b"):
        res = run_gbench(*args, "--out", str(tmp_path / name), timeout=300)
        assert res.returncode == 0, res.stderr
        runs.append(frame(tmp_path / name))
    a, b = runs
    assert a.cell_id.nunique() == 4 and set(a.status) == {"ok"}
    assert set(a.device) == {"cuda"}
    assert all(math.isfinite(v) for v in a.value)
    assert a[KEY].equals(b[KEY])
    assert a.value.equals(b.value) and a.stderr.equals(b.stderr)


def test_replicas_on_cuda_equal_the_same_replicas_on_cpu():
    # Data, initialisation and batch order come from CPU generators, and ml draws no random
    # numbers while training, so only float rounding may differ between the devices. The
    # metrics are exact ones (nll_test on the test set, moments from the parameters).
    cells = grid(registry_with(), models="gaussian", metrics="nll_test,moments", seeds="3")
    on_cpu = run_work(cells, torch.device("cpu"))
    on_cuda = run_work(cells, torch.device("cuda"))
    for cpu, cuda in zip(on_cpu, on_cuda, strict=True):
        assert cpu.status == cuda.status == "ok"
        a, b = (pd.DataFrame(o.rows).sort_values(["step", "metric"]) for o in (cpu, cuda))
        assert list(a.metric) == list(b.metric) and list(a.step) == list(b.step)
        assert set(b.device) == {"cuda"}
        pd.testing.assert_series_equal(
            a.value.reset_index(drop=True), b.value.reset_index(drop=True), rtol=1e-4, atol=1e-5
        )


def test_auto_picks_cuda_and_a_missing_cuda_index_is_a_usage_error():
    assert resolve_device("auto") == torch.device("cuda")
    n = torch.cuda.device_count()
    assert resolve_device(f"cuda:{n - 1}") == torch.device(f"cuda:{n - 1}")
    with pytest.raises(UsageError, match=f"only {n} CUDA device"):
        resolve_device(f"cuda:{n}")
