"""BLEU against a reference set, and self-BLEU, for token sequences (ints).

As in the text-GAN literature (BLEU against a held-out test set), every candidate is scored
against *all* references: the clipping count of an n-gram is its largest count in any single
reference, and the reference length for the brevity penalty is the reference length closest
to the candidate's (the shorter one on a tie).

Definitions (N = max_n, uniform weights 1/N)::

    p_n  = sum_c sum_g min(count_c(g), maxref(g)) / sum_c sum_g count_c(g)
    BP   = 1 if c > r else exp(1 - r / c)        (c, r: total candidate / reference length)
    BLEU = BP * exp(sum_n log(p_n) / N)

*Smoothing* (Chen & Cherry 2014, method 1, which Texygen uses): a precision whose numerator
is 0 is replaced by ``smooth_eps / max(1, denominator)``; BLEU is 0 when no unigram matches
at all or every candidate is empty. `corpus_bleu` pools the counts of all candidates;
`sentence_bleu` scores each candidate alone (Texygen's BLEU is the mean of these).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

Tokens = torch.Tensor | np.ndarray | Sequence[Sequence[int]]
Gram = tuple[int, ...]


def _as_tuples(seqs: Tokens) -> list[tuple[int, ...]]:
    if isinstance(seqs, torch.Tensor | np.ndarray):
        if seqs.ndim != 2:
            raise ValueError(f"expected a 2-D [count, length] array of tokens, got {seqs.shape}")
        seqs = seqs.tolist()
    return [tuple(int(t) for t in s) for s in seqs]


def _counts(seq: tuple[int, ...], n: int) -> Counter[Gram]:
    return Counter(seq[i : i + n] for i in range(len(seq) - n + 1))


def _closest(length: int, lengths: Sequence[int]) -> int:
    """The reference length closest to `length`, the shorter one on a tie."""
    return min(lengths, key=lambda r: (abs(r - length), r))


def _check_max_n(max_n: int) -> None:
    if max_n < 1:
        raise ValueError(f"max_n must be >= 1, got {max_n}")


def _combine(
    matched: Sequence[int], total: Sequence[int], cand_len: int, ref_len: int, smooth_eps: float
) -> float:
    """BLEU from per-order matched / total n-gram counts and the two lengths."""
    if cand_len == 0 or matched[0] == 0:
        return 0.0
    log_p = 0.0
    for m, t in zip(matched, total, strict=True):
        log_p += math.log(m / t) if m > 0 else math.log(smooth_eps / max(1, t))
    bp = 1.0 if cand_len > ref_len else math.exp(1.0 - ref_len / cand_len)
    return bp * math.exp(log_p / len(matched))


class _Scorer:
    """Per-candidate clipped counts against a fixed reference set, built once."""

    def __init__(self, references: list[tuple[int, ...]], max_n: int) -> None:
        if not references:
            raise ValueError("need at least one reference sequence")
        self.max_n = max_n
        self.lengths = sorted(set(len(r) for r in references))
        self.max_ref: list[dict[Gram, int]] = []
        for n in range(1, max_n + 1):
            best: dict[Gram, int] = {}
            for ref in references:
                for g, c in _counts(ref, n).items():
                    if c > best.get(g, 0):
                        best[g] = c
            self.max_ref.append(best)

    def stats(self, cand: tuple[int, ...]) -> tuple[list[int], list[int], int]:
        matched, total = [], []
        for n, best in enumerate(self.max_ref, start=1):
            counts = _counts(cand, n)
            matched.append(sum(min(c, best.get(g, 0)) for g, c in counts.items()))
            total.append(max(0, len(cand) - n + 1))
        return matched, total, _closest(len(cand), self.lengths)


@lru_cache(maxsize=4)
def _scorer_for(references: tuple[tuple[int, ...], ...], max_n: int) -> _Scorer:
    """The reference tables of one reference set, built once: a metric scores against the
    same held-out sequences at every evaluation, and building them costs ~7x the scoring of
    500 candidates. The key is the references' content, so no stale table is ever used."""
    return _Scorer(list(references), max_n)


def corpus_bleu(
    candidates: Tokens, references: Tokens, max_n: int = 4, smooth_eps: float = 0.1
) -> float:
    """Corpus BLEU of the candidates, each against the whole reference set (see module doc).

    Parameters
    ----------
    candidates, references : LongTensor [count, length], array, or list of int sequences
        Sequences may differ in length when given as lists.
    max_n : int
        Highest n-gram order (4 for BLEU-4).
    smooth_eps : float
        Method-1 smoothing constant.

    Returns
    -------
    float in [0, 1]
    """
    _check_max_n(max_n)
    scorer = _scorer_for(tuple(_as_tuples(references)), max_n)
    matched, total = [0] * max_n, [0] * max_n
    cand_len = ref_len = 0
    for cand in _as_tuples(candidates):
        m, t, r = scorer.stats(cand)
        matched = [a + b for a, b in zip(matched, m, strict=True)]
        total = [a + b for a, b in zip(total, t, strict=True)]
        cand_len += len(cand)
        ref_len += r
    return _combine(matched, total, cand_len, ref_len, smooth_eps)


def sentence_bleu(
    candidates: Tokens, references: Tokens, max_n: int = 4, smooth_eps: float = 0.1
) -> np.ndarray:
    """BLEU of each candidate alone against the whole reference set; shape [count].

    The mean of this array is the "BLEU" of Texygen-style text-GAN evaluations.
    """
    _check_max_n(max_n)
    scorer = _scorer_for(tuple(_as_tuples(references)), max_n)
    scores = []
    for cand in _as_tuples(candidates):
        m, t, r = scorer.stats(cand)
        scores.append(_combine(m, t, len(cand), r, smooth_eps))
    return np.asarray(scores, dtype=np.float64)


def self_bleu(
    samples: Tokens, max_n: int = 4, smooth_eps: float = 0.1, average: str = "corpus"
) -> float:
    """Self-BLEU: each sample scored against all the *other* samples (high = low diversity).

    Parameters
    ----------
    samples : LongTensor [count, length], array, or list of int sequences (count >= 2)
    max_n, smooth_eps
        As in `corpus_bleu`.
    average : {"corpus", "sentence"}
        "corpus" pools the leave-one-out counts of all samples into one corpus BLEU;
        "sentence" averages the per-sample BLEUs (Texygen's self-BLEU).

    Notes
    -----
    Exact leave-one-out in one pass: for each n-gram the largest and second-largest count
    over the samples (with how many samples reach the largest) give its maximum count over
    the others.
    """
    _check_max_n(max_n)
    if average not in ("corpus", "sentence"):
        raise ValueError(f"average must be 'corpus' or 'sentence', got {average!r}")
    seqs = _as_tuples(samples)
    if len(seqs) < 2:
        raise ValueError(f"self-BLEU needs at least 2 samples, got {len(seqs)}")

    per_sample = [[_counts(s, n) for n in range(1, max_n + 1)] for s in seqs]
    # top[n][g] = [largest count, number of samples with it, second-largest count]
    top: list[dict[Gram, list[int]]] = [{} for _ in range(max_n)]
    for counts in per_sample:
        for order, cnt in enumerate(counts):
            table = top[order]
            for g, c in cnt.items():
                entry = table.get(g)
                if entry is None:
                    table[g] = [c, 1, 0]
                elif c > entry[0]:
                    table[g] = [c, 1, entry[0]]
                elif c == entry[0]:
                    entry[1] += 1
                elif c > entry[2]:
                    entry[2] = c
    length_count = Counter(len(s) for s in seqs)

    matched_all, total_all = [0] * max_n, [0] * max_n
    cand_len = ref_len = 0
    scores = []
    for seq, counts in zip(seqs, per_sample, strict=True):
        matched, total = [], []
        for order, cnt in enumerate(counts):
            table = top[order]
            m = 0
            for g, c in cnt.items():
                best, n_best, second = table[g]
                others = second if (c == best and n_best == 1) else best
                m += min(c, others)
            matched.append(m)
            total.append(max(0, len(seq) - order))
        others_lengths = [r for r, k in length_count.items() if k > (r == len(seq))]
        r = _closest(len(seq), others_lengths)
        if average == "sentence":
            scores.append(_combine(matched, total, len(seq), r, smooth_eps))
        else:
            matched_all = [a + b for a, b in zip(matched_all, matched, strict=True)]
            total_all = [a + b for a, b in zip(total_all, total, strict=True)]
            cand_len += len(seq)
            ref_len += r
    if average == "sentence":
        return float(np.mean(scores))
    return _combine(matched_all, total_all, cand_len, ref_len, smooth_eps)
