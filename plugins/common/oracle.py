"""The random-LSTM oracle of the text task (SeqGAN / Texygen's synthetic benchmark).

The oracle is an `LSTMCore` whose every weight and bias is drawn from N(0, 1) by a
`torch.Generator` seeded with `seed`, so the same seed gives the same oracle in every run
(within one PyTorch version: the generator's algorithm is PyTorch's). Nobody's weights are
shipped; record `weights_fingerprint(oracle)` with results to prove which oracle was used.
"""

from __future__ import annotations

import hashlib
import math
from typing import NamedTuple

import torch
from gbench_plugins.common.autoregressive import LSTMCore, SampleOutput


class Estimate(NamedTuple):
    """A Monte Carlo mean with its standard error."""

    mean: float
    stderr: float


def make_oracle(
    vocab: int = 5000, length: int = 20, emb: int = 32, hidden: int = 32, seed: int = 0
) -> LSTMCore:
    """Build the frozen oracle: all weights N(0, 1) from a generator seeded by `seed`.

    The global RNG is neither used nor advanced. The returned module is in eval mode with
    ``requires_grad`` False on every parameter; ``oracle.length`` is `length`.
    """
    generator = torch.Generator().manual_seed(seed)
    oracle = LSTMCore(
        vocab, emb, hidden, init="normal", std=1.0, generator=generator, length=length
    )
    oracle.requires_grad_(False)
    return oracle.eval()


def weights_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 (hex) of the module's parameters, in registration order, as float32 bytes."""
    digest = hashlib.sha256()
    for name, p in module.named_parameters():
        digest.update(name.encode())
        digest.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def sample_with_log_prob(
    oracle: LSTMCore,
    n: int,
    length: int | None = None,
    generator: torch.Generator | None = None,
) -> SampleOutput:
    """n sequences from the oracle with their exact log P, from a single sampling pass."""
    out = oracle.sample(n, length, generator=generator, return_log_prob=True)
    assert isinstance(out, SampleOutput)
    return out


def entropy_rate(
    oracle: LSTMCore,
    n: int = 10_000,
    length: int | None = None,
    generator: torch.Generator | None = None,
) -> Estimate:
    """Monte Carlo per-token entropy of the oracle, -E[log P(x)] / length, in nats.

    Parameters
    ----------
    oracle : LSTMCore
    n : int
        Number of sampled sequences (n >= 2 for a standard error).
    length : int, optional
        Defaults to ``oracle.length``.
    generator : torch.Generator, optional

    Returns
    -------
    Estimate
        The mean of -log P(x) / length over the samples and its standard error
        (sample standard deviation / sqrt(n)).
    """
    if n < 2:
        raise ValueError(f"need n >= 2 samples for a standard error, got {n}")
    out = sample_with_log_prob(oracle, n, length, generator)
    length = out.tokens.shape[1]
    if length == 0:
        raise ValueError("the entropy rate of length-0 sequences is undefined")
    per_token = -out.log_prob.double() / length
    return Estimate(float(per_token.mean()), float(per_token.std() / math.sqrt(n)))
