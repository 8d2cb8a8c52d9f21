"""Time BLEU and self-BLEU on 1,000 x 1,000 sequences of length 20 over 5,000 symbols.

Run: ``PYTHONPATH=. python tests/benchmarks/bench_bleu.py``.
"""

from __future__ import annotations

import time

import torch
from gbench_plugins.common.bleu import corpus_bleu, self_bleu, sentence_bleu
from gbench_plugins.common.oracle import make_oracle


def main() -> None:
    oracle = make_oracle()
    gen = torch.Generator().manual_seed(0)
    cands = oracle.sample(1000, generator=gen)
    refs = oracle.sample(1000, generator=gen)
    for name, fn in [
        ("corpus_bleu 1000 x 1000", lambda: corpus_bleu(cands, refs)),
        ("sentence_bleu 1000 x 1000 (mean)", lambda: float(sentence_bleu(cands, refs).mean())),
        ("self_bleu 1000 (corpus)", lambda: self_bleu(cands)),
        ("self_bleu 1000 (sentence)", lambda: self_bleu(cands, average="sentence")),
    ]:
        t0 = time.perf_counter()
        value = fn()
        print(f"{name:34s} = {value:.4f}  in {time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
