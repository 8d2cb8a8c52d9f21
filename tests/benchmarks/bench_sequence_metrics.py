"""Time the sequence metrics' hot path: 10,000 samples of an lstm model (or of the oracle)
plus their nll_oracle, as the `nll_oracle` metric computes them.

Run: ``PYTHONPATH=. python tests/benchmarks/bench_sequence_metrics.py [--threads 1]``.
CPU time (process_time) is robust to other processes on the machine; wall time is not.
"""

from __future__ import annotations

import argparse
import time

import torch
from gbench_plugins.models.sequence import LSTMModel
from gbench_plugins.tasks.text import TextTask


def timed(label: str, fn) -> None:
    best = None
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        best = (wall, cpu) if best is None or wall < best[0] else best
    print(f"{label:52s} wall {best[0]:.2f} s  cpu {best[1]:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = TextTask(n_train=2, n_test=2)
    torch.manual_seed(0)
    model = LSTMModel(task).eval()

    def lstm_then_oracle() -> None:
        with torch.inference_mode():
            tokens = model.sample(args.n)
            (-task.log_prob(tokens)).mean()

    def oracle_only() -> None:
        with torch.inference_mode():
            out = task.oracle.sample(args.n, return_log_prob=True)
            (-out.log_prob).mean()

    print(f"threads={torch.get_num_threads()}  n={args.n}")
    timed("lstm sample + oracle log P (nll_oracle)", lstm_then_oracle)
    timed("oracle sample with its exact log P in one pass", oracle_only)


if __name__ == "__main__":
    main()
