"""Pieces of the adversarial objective on token sequences: discriminators and the generator's
score-function estimators (docs/science.md §1.4 and §1.6).

A discriminator here returns one logit per *prefix*, [B, L]: column t classifies x_0..x_t,
and the last column is the discriminator D(x) = σ(f(x)) of the game. In the game on whole
sequences the generator's cost is a function c(f) of the last logit only, and the prefix
logits serve as baselines, which keeps the estimate unbiased for the given discriminator
whatever they hold; in the game on prefixes each prefix's logit has a cost of its own.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GRUDiscriminator", "RatioDiscriminator", "token_surrogate"]


class GRUDiscriminator(nn.Module):
    """Embedding -> GRU -> a linear logit from the state after each position.

    Its last column is the classic sequence discriminator (a logit from the final state).
    """

    def __init__(self, vocab: int, width: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        self.gru = nn.GRU(width, width, batch_first=True)
        self.out = nn.Linear(width, 1)

    def prefix_logits(self, x: torch.Tensor, log_q: torch.Tensor | None = None) -> torch.Tensor:
        """One logit per prefix, [B, L] (``log_q`` is not read)."""
        out, _ = self.gru(self.embedding(x))
        return self.out(out).squeeze(-1)


class RatioDiscriminator(nn.Module):
    """A logit with the shape of a log density ratio: f_t = c + Σ_{s≤t} u(h_{s−1})[x_s].

    The best discriminator's logit is log(π/(1 − π)) + log P(x) − log Q(x), and for
    autoregressive P and Q that is a sum over positions of log P(x_s | x_<s) − log Q(x_s | x_<s):
    a GRU reads the prefix (from a begin symbol) and a linear head scores the next symbol, as
    a language model's output layer does. The head starts at zero, so the discriminator starts
    as the constant c, and each prefix sum is a classifier of prefixes of the same shape.

    With ``q_feature`` each per-token score also adds a learned multiple a · log Q(x_s | x_<s)
    of the generator's own log-probability of the symbol (passed in, detached): a feature of
    x that the discriminator reads, not a path for gradients. Where P is a sharper or flatter
    version of Q, log P − log Q is close to a linear function of log Q, so one scalar lets the
    discriminator see it at once.
    """

    def __init__(self, vocab: int, width: int, q_feature: bool = False) -> None:
        super().__init__()
        self.vocab = vocab
        self.embedding = nn.Embedding(vocab + 1, width)  # row `vocab` is the begin symbol
        self.gru = nn.GRU(width, width, batch_first=True)
        self.head = nn.Linear(width, vocab)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.bias = nn.Parameter(torch.zeros(()))
        self.q_weight = nn.Parameter(torch.zeros(())) if q_feature else None

    def prefix_logits(self, x: torch.Tensor, log_q: torch.Tensor | None = None) -> torch.Tensor:
        """One logit per prefix, [B, L]; ``log_q`` [B, L] is log Q(x_s | x_<s), read only
        with ``q_feature``."""
        bos = self.embedding.weight[self.vocab].expand(x.shape[0], 1, -1)
        h, _ = self.gru(torch.cat([bos, self.embedding(x[:, :-1])], dim=1))
        # Only the chosen symbol's score is needed: gather its row of the head.
        terms = (h * self.head.weight[x]).sum(-1) + self.head.bias[x]
        if self.q_weight is not None:
            if log_q is None:
                raise ValueError("this discriminator reads log Q(x_s | x_<s): pass log_q")
            terms = terms + self.q_weight * log_q.detach()
        return self.bias + terms.cumsum(1)


def token_surrogate(
    to_go: torch.Tensor, baseline: torch.Tensor, token_log_q: torch.Tensor
) -> torch.Tensor:
    """A scalar whose gradient is a score-function estimate of ∇ E_Q[cost], per token.

    Each token's score ∇ log Q(x_t | x_<t) is weighted by its cost to go (the part of the
    cost that x_t can influence) less a baseline b_t that depends on the prefix x_<t only,
    less the leave-one-out mean of the other samples' (cost to go − b_t). Neither subtrahend
    depends on x_t's choice, so the estimate is unbiased whatever the baselines hold; the
    closer b_t is to E[cost to go | x_<t], the smaller its variance.

    Parameters
    ----------
    to_go : Tensor [n, L]
        The cost that position t's token can change (for a cost of the whole sequence: that
        cost in every column; for a sum of per-prefix costs: the sum from t on).
    baseline : Tensor [n, L]
        b_t, a function of x_<t (zeros for none).
    token_log_q : Tensor [n, L]
        log Q(x_t | x_<t), carrying the gradient.
    """
    with torch.no_grad():
        adv = to_go - baseline
        n = adv.shape[0]
        if n > 1:
            adv = adv - (adv.sum(0, keepdim=True) - adv) / (n - 1)
    return (adv * token_log_q).sum(1).mean()
