"""BLEU and self-BLEU against hand-computed values and a naive independent implementation."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from gbench_plugins.common.bleu import corpus_bleu, self_bleu, sentence_bleu

EPS = 0.1


# ---------------------------------------------------------------- naive reference
def _naive_stats(
    cand: list[int], refs: list[list[int]], max_n: int
) -> tuple[list[int], list[int], int]:
    """Clipped matches, n-gram totals and closest reference length, by brute force."""
    matched, totals = [], []
    for n in range(1, max_n + 1):
        grams = [tuple(cand[i : i + n]) for i in range(len(cand) - n + 1)]
        totals.append(len(grams))
        m = 0
        for g in set(grams):
            in_cand = grams.count(g)
            in_refs = max(
                sum(1 for i in range(len(r) - n + 1) if tuple(r[i : i + n]) == g) for r in refs
            )
            m += min(in_cand, in_refs)
        matched.append(m)
    best = sorted(refs, key=lambda r: (abs(len(r) - len(cand)), len(r)))[0]
    return matched, totals, len(best)


def _naive_score(matched: list[int], totals: list[int], c: int, r: int) -> float:
    if c == 0 or matched[0] == 0:
        return 0.0
    precisions = [m / t if m else EPS / max(1, t) for m, t in zip(matched, totals, strict=True)]
    bp = 1.0 if c > r else math.exp(1 - r / c)
    return bp * math.exp(sum(math.log(p) for p in precisions) / len(precisions))


def _naive_corpus(cands: list[list[int]], refs: list[list[int]], max_n: int = 4) -> float:
    matched, totals, c, r = [0] * max_n, [0] * max_n, 0, 0
    for cand in cands:
        m, t, rl = _naive_stats(cand, refs, max_n)
        matched = [a + b for a, b in zip(matched, m, strict=True)]
        totals = [a + b for a, b in zip(totals, t, strict=True)]
        c += len(cand)
        r += rl
    return _naive_score(matched, totals, c, r)


def _naive_sentences(cands: list[list[int]], refs: list[list[int]], max_n: int = 4) -> list[float]:
    return [
        _naive_score(*_naive_stats(c, refs, max_n)[:2], len(c), _naive_stats(c, refs, max_n)[2])
        for c in cands
    ]


def _random_corpus(rng: random.Random, count: int) -> list[list[int]]:
    return [[rng.randrange(4) for _ in range(rng.randint(1, 8))] for _ in range(count)]


# ---------------------------------------------------------------- hand-computed
def test_hand_computed_example() -> None:
    refs = [[1, 2, 3, 4, 5], [1, 2, 3, 6, 5, 7]]
    cand = [[1, 2, 3, 5]]
    # p1 = 4/4, p2 = 2/3 ((3, 5) unseen), p3 = 1/2, p4 = 0 -> 0.1 / 1 (smoothed);
    # c = 4, closest reference length r = 5, BP = exp(1 - 5/4).
    expected = math.exp(-0.25) * (1 * 2 / 3 * 1 / 2 * 0.1) ** 0.25
    assert math.isclose(corpus_bleu(cand, refs), expected, rel_tol=1e-12)
    assert math.isclose(float(sentence_bleu(cand, refs)[0]), expected, rel_tol=1e-12)
    # Bigram BLEU: sqrt(1 * 2/3) * BP.
    assert math.isclose(
        corpus_bleu(cand, refs, max_n=2), math.exp(-0.25) * math.sqrt(2 / 3), rel_tol=1e-12
    )


def test_clipping_uses_the_largest_count_in_any_single_reference() -> None:
    # "7" occurs twice in each reference (4 times in all): it is clipped at 2, not 4.
    refs = [[7, 1, 7, 2], [7, 7, 3, 3]]
    assert math.isclose(corpus_bleu([[7, 7, 7, 7]], refs, max_n=1), 2 / 4, rel_tol=1e-12)


def test_perfect_and_disjoint_candidates() -> None:
    refs = [[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]]
    assert corpus_bleu(refs, refs) == 1.0
    np.testing.assert_array_equal(sentence_bleu(refs, refs), [1.0, 1.0])
    assert corpus_bleu([[9, 9, 9, 9, 9, 9]], refs) == 0.0
    assert corpus_bleu([[]], refs) == 0.0


def test_corpus_pools_counts_rather_than_averaging() -> None:
    refs = [[1, 2, 3, 4], [5, 6, 7, 8]]
    cands = [[1, 2, 3, 4], [5, 6, 9, 9]]
    # unigrams 6/8, bigrams 4/6, trigrams 2/4, 4-grams 1/2; lengths equal, BP = 1.
    expected = (6 / 8 * 4 / 6 * 2 / 4 * 1 / 2) ** 0.25
    assert math.isclose(corpus_bleu(cands, refs), expected, rel_tol=1e-12)
    assert not math.isclose(float(sentence_bleu(cands, refs).mean()), expected)


# ---------------------------------------------------------------- against the naive code
@pytest.mark.parametrize("seed", range(5))
def test_against_naive_implementation(seed: int) -> None:
    rng = random.Random(seed)
    cands, refs = _random_corpus(rng, 15), _random_corpus(rng, 12)
    for max_n in (1, 2, 4):
        assert math.isclose(
            corpus_bleu(cands, refs, max_n=max_n), _naive_corpus(cands, refs, max_n), rel_tol=1e-12
        )
        np.testing.assert_allclose(
            sentence_bleu(cands, refs, max_n=max_n),
            _naive_sentences(cands, refs, max_n),
            rtol=1e-12,
        )


@pytest.mark.parametrize("seed", range(5))
def test_self_bleu_against_naive_leave_one_out(seed: int) -> None:
    rng = random.Random(100 + seed)
    samples = _random_corpus(rng, 12)
    samples.append(list(samples[0]))  # a duplicate: its twin still counts as a reference
    per_sample = [_naive_stats(s, samples[:i] + samples[i + 1 :], 4) for i, s in enumerate(samples)]
    sentence = np.mean(
        [_naive_score(m, t, len(s), r) for s, (m, t, r) in zip(samples, per_sample, strict=True)]
    )
    matched = [sum(m[n] for m, _, _ in per_sample) for n in range(4)]
    totals = [sum(t[n] for _, t, _ in per_sample) for n in range(4)]
    corpus = _naive_score(matched, totals, sum(map(len, samples)), sum(r for _, _, r in per_sample))
    assert math.isclose(self_bleu(samples, average="sentence"), sentence, rel_tol=1e-12)
    assert math.isclose(self_bleu(samples), corpus, rel_tol=1e-12)


def test_self_bleu_of_identical_samples_is_one() -> None:
    assert self_bleu([[1, 2, 3, 4, 5]] * 3) == 1.0
    with pytest.raises(ValueError, match="at least 2"):
        self_bleu([[1, 2, 3]])


def test_tensor_and_list_inputs_agree() -> None:
    gen = torch.Generator().manual_seed(0)
    cands = torch.randint(0, 6, (30, 10), generator=gen)
    refs = torch.randint(0, 6, (40, 10), generator=gen)
    assert corpus_bleu(cands, refs) == corpus_bleu(cands.tolist(), refs.numpy())
    assert self_bleu(cands) == self_bleu(cands.tolist())
    with pytest.raises(ValueError, match="2-D"):
        corpus_bleu(cands[0], refs)
