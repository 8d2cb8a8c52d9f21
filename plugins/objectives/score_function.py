"""Score-function (REINFORCE) gradients for objectives on discrete sequences.

For a cost f(x) that does not depend on Q's parameters θ except through the samples,
∇_θ E_Q[f(x)] = E_Q[(f(x) − b) ∇_θ log Q(x)]. With n samples the baseline of sample i is the
mean cost of the *other* n − 1 samples (leave-one-out): it does not depend on x_i, so the
estimate stays unbiased, and it removes most of the variance.
"""

from __future__ import annotations

import torch


def leave_one_out_baseline(cost: torch.Tensor) -> torch.Tensor:
    """b_i = mean of cost_j over j ≠ i (zeros for a single sample)."""
    n = cost.numel()
    if n < 2:
        return torch.zeros_like(cost)
    return (cost.sum() - cost) / (n - 1)


def surrogate(cost: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """A scalar whose gradient is the REINFORCE estimate of ∇ E_Q[cost].

    ``cost`` is detached here; ``log_q`` carries the gradient.
    """
    cost = cost.detach()
    return ((cost - leave_one_out_baseline(cost)) * log_q).mean()
