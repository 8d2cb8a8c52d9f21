"""Time sampling from the text oracle with exact log P, and scoring with log_prob.

Run: ``PYTHONPATH=. python tests/benchmarks/bench_oracle.py [--n 10000] [--threads 2]``.

Other processes on the machine distort the 2-thread figures badly (OpenMP barriers):
compare with ``--threads 1`` and the load average.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from plugins.common.oracle import make_oracle, sample_with_log_prob


def _best_of(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


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

    def draw() -> None:
        sample_with_log_prob(oracle, args.n, generator=gen)

    def draw_tokens_only() -> None:
        oracle.sample(args.n, generator=gen)

    def draw_tempered() -> None:
        oracle.sample(args.n, temperature=0.7, generator=gen, return_log_prob=True)

    tokens = oracle.sample(args.n, generator=gen)

    def score() -> None:
        with torch.inference_mode():
            oracle.log_prob(tokens)

    for name, fn in [
        ("sample + exact log P (T=1)", draw),
        ("sample, tokens only", draw_tokens_only),
        ("sample + log P and log P_T (T=0.7)", draw_tempered),
        ("log_prob of the samples (second pass)", score),
    ]:
        best = _best_of(args.repeats, fn)
        print(f"{name:40s} n={args.n} length={args.length}: best of {args.repeats} {best:.3f} s")


if __name__ == "__main__":
    main()
