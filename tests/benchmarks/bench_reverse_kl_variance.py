"""Gradient variance of ``reverse_kl``'s sequence estimators: exact_step against reinforce.

Run: ``PYTHONPATH=. python tests/benchmarks/bench_reverse_kl_variance.py [--batches 300]
[--text-init ml.pt]``. For each setting, the per-batch gradient of each estimator (same
model, batch size 8, or 64 on the full text task) over ``--batches`` independent batches:
the total variance (trace of the covariance), its ratio reinforce / exact_step, and the mean
logged value ± its standard error (both estimate KL[Q‖P]). Settings: ``pairs`` with a
``tabular`` model, a tiny text oracle (4 symbols, length 3) with a small ``lstm`` (both as in
tests/test_reverse_kl_sequences.py), and, with ``--text-init``, the default ``text`` task from
that saved ``lstm`` state (e.g. written by bench_reverse_kl_text.py --save).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_reverse_kl_sequences import estimates, pairs_setting, text_setting


def report(name: str, model, task, batches: int, batch_size: int) -> None:
    rows = {}
    for estimator in ("exact_step", "reinforce"):
        torch.manual_seed(0)
        values, grads = estimates(model, task, estimator, batches, batch_size)
        rows[estimator] = float(grads.var(0).sum())
        kl, se = float(values.mean()), float(values.std() / batches**0.5)
        print(
            f"{name:10s} {estimator:10s} KL {kl:9.4f} ± {se:.4f}  total grad var {rows[estimator]:.4g}"
        )
    print(
        f"{name:10s} variance ratio reinforce / exact_step: {rows['reinforce'] / rows['exact_step']:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--text-init", help="lstm state_dict for the default text task")
    args = parser.parse_args()
    torch.set_num_threads(1)
    report("pairs", *pairs_setting(), args.batches, 8)
    report("tiny text", *text_setting(), args.batches, 8)
    if args.text_init:
        from gbench_plugins.models.sequence import LSTMModel
        from gbench_plugins.tasks.text import TextTask

        task = TextTask(n_train=64, n_test=64)
        model = LSTMModel(task)
        model.load_state_dict(torch.load(args.text_init))
        report("text", model, task, max(args.batches // 10, 10), 64)


if __name__ == "__main__":
    main()
