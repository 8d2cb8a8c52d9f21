"""Metric workloads that unit tests used to time (``pytest tests/benchmarks --benchmark-only``).

Their correctness is tested in ``tests/test_cont_estimators.py``, ``test_cont_quadrature.py``
and ``test_seq_bleu.py``; how long they take is measured here. Figures measured on a free
2-core CPU, one intra-op thread: c2st on 2 x 2,000 points 0.6-1.2 s; one ``jspi_quad`` of the
8-mode ring against a Gaussian 30-60 ms (2-4 ms for two Gaussians); BLEU and self-BLEU of
1,000 x 1,000 sequences of length 20 about 0.3 s.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gbench_plugins.common.bleu import corpus_bleu, self_bleu
from gbench_plugins.common.estimators import c2st
from gbench_plugins.common.quadrature import (
    gaussian_log_density,
    integration_box,
    jspi_quad,
    mixture_log_density,
)

RING_MEANS = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)
RING_COVS = np.stack([0.01 * np.eye(2)] * 8)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what the runner uses for the built-in 2-D tasks
    yield
    torch.set_num_threads(threads)


def _gaussian(n: int, mean, cov, g: torch.Generator) -> torch.Tensor:
    chol = torch.as_tensor(np.linalg.cholesky(cov), dtype=torch.float32)
    return torch.randn(n, 2, generator=g) @ chol.T + torch.as_tensor(mean, dtype=torch.float32)


def test_c2st_two_thousand_points_each(benchmark):
    g = torch.Generator().manual_seed(12)
    p, q = (np.zeros(2), np.diag([4.0, 0.25])), (np.zeros(2), np.eye(2))
    data = (_gaussian(2000, *p, g), _gaussian(2000, *q, g), _gaussian(2000, *p, g))
    data = (*data, _gaussian(2000, *q, g))
    benchmark(lambda: c2st(*data, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("p", ["gaussian", "ring"])
def test_jspi_quad_one_evaluation(benchmark, p):
    mean, cov = np.zeros(2), 2.5 * np.eye(2)
    if p == "ring":
        log_p = mixture_log_density(np.ones(8), RING_MEANS, RING_COVS)
        box = integration_box([*RING_MEANS, mean], [*RING_COVS, cov])
    else:
        log_p = gaussian_log_density(np.zeros(2), np.diag([4.0, 0.25]))
        box = integration_box([np.zeros(2), mean], [np.diag([4.0, 0.25]), cov])
    log_q = gaussian_log_density(mean, cov)
    jspi_quad(log_p, log_q, 0.5, box)  # the quadrature rule is cached after the first call
    benchmark(jspi_quad, log_p, log_q, 0.5, box)


def test_bleu_and_self_bleu_thousand_by_thousand(benchmark):
    gen = torch.Generator().manual_seed(0)
    cands = torch.randint(0, 5000, (1000, 20), generator=gen)
    refs = torch.randint(0, 5000, (1000, 20), generator=gen)
    benchmark(lambda: (corpus_bleu(cands, refs), self_bleu(cands)))
