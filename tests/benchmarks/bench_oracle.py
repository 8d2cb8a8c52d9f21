"""Time sampling from the text oracle with exact log P, and scoring with log_prob.

Run: ``PYTHONPATH=. python tests/benchmarks/bench_oracle.py [--n 10000] [--threads 2]``.

Other processes on the machine distort the 2-thread wall times badly (OpenMP barriers):
compare with ``--threads 1``, whose CPU time is robust to them, and the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch
from gbench_plugins.common.oracle import make_oracle, sample_with_log_prob


def _best_of(repeats: int, fn: Callable[[], object]) -> tuple[float, float]:
    """Best wall-clock and best process CPU time over `repeats` calls, in seconds."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    oracle = make_oracle(length=args.length)
    print(f"make_oracle: {time.perf_counter() - t0:.3f} s   threads={torch.get_num_threads()}")
    gen = torch.Generator().manual_seed(1)
    tokens = oracle.sample(args.n, generator=gen)

    def score() -> None:
        with torch.inference_mode():
            oracle.log_prob(tokens)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("sample + exact log P (T=1)", lambda: sample_with_log_prob(oracle, args.n, None, gen)),
        ("sample, tokens only", lambda: oracle.sample(args.n, generator=gen)),
        (
            "sample + log P and log P_T (T=0.7)",
            lambda: oracle.sample(args.n, temperature=0.7, generator=gen, return_log_prob=True),
        ),
        ("log_prob of the samples (second pass)", score),
    ]
    for name, fn in cases:
        wall, cpu = _best_of(args.repeats, fn)
        print(
            f"{name:38s} n={args.n} length={args.length}: best of {args.repeats}: "
            f"wall {wall:.3f} s, CPU {cpu:.3f} s"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
