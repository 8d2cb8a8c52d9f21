"""Task: a data distribution P with fixed, seeded training and test sets."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from benchmark_core.contract.component import Component


class Task(Component):
    """A data distribution P with fixed, seeded training and held-out test sets.

    Attributes
    ----------
    kind : str
        ``"vector"`` (samples are rows of a float tensor ``[n, dim]``) or ``"sequence"``
        (rows of a long tensor ``[n, length]`` over ``vocab_size`` symbols).
    provides : frozenset[str]
        ``"log_prob"`` when P's density is known exactly, ``"sample"`` when fresh samples can
        be drawn, ``"enumerable"`` when the sample space can be summed over,
        ``"token_log_prob"`` (sequence tasks) when P's per-position log-probabilities are
        known (`token_log_probs`), ``"next_token_log_prob"`` (sequence tasks, with
        ``token_log_prob``) when P's whole next-symbol distribution at every position is
        known (`next_token_log_probs`).
    default_models : tuple[str, ...]
        Models used when the user names none.
    budgets : dict[str, dict[str, int]]
        Per-profile overrides of the budget fields (``{"quick": {"steps": 4000}}``).
    max_threads : int or None
        At most this many CPU threads for the task's cells. Tiny models (2-D Gaussians) run
        several times faster on one thread: thread hand-offs cost more than their arithmetic.
    headline_metrics : tuple[str, ...]
        The few metric values a leaderboard shows for this task by default, coverage and
        quality first (every metric is one option away). Empty: show every metric.
    metric_params : dict[str, dict[str, Any]]
        Default parameters of metrics on this task, by metric name
        (``{"nll_oracle": {"temperatures": [0.8]}}``): they replace the metric's own defaults
        in this task's cells wherever the selection leaves the parameter unset (``--metrics
        all``, or a metric named without it); a value the user gives wins. A name no installed
        metric has, or a parameter the metric does not declare, is an error when the grid is
        built.
    warm_starts : dict[str, str]
        Objectives that start, on this task, from another objective's final model unless the
        selection says otherwise: objective name to ``init`` selection
        (``{"reverse_kl": "ml"}`` makes ``reverse_kl`` run as ``reverse_kl[init=ml]``, the
        text-GAN protocol of fine-tuning a maximum-likelihood model). ``init=none`` in the
        selection trains from scratch.
    frontier_reference : str
        The objective whose temperature curve the quality–coverage frontier of this task is
        judged against (``"ml"``: does any objective beat maximum likelihood once its sampling
        temperature is tuned?). Reports draw that objective's curve as a line and say which
        other points lie beyond it; empty (the default) draws points only.
    frontier_select_by : str
        The value that picks the reference objective's checkpoint for its curve: the
        evaluated step where its mean over seeds is best (``"nll_test"``: the best held-out
        likelihood, before ML overfits); empty: the final step.
    train, test : torch.Tensor
        The fixed training set and the separate held-out set, built by ``setup``.
    dim : int
        Vector tasks only: every row of ``train`` and ``test`` has ``dim`` coordinates.
        Models size their parameters from it.
    vocab_size, length : int
        Sequence tasks only: symbols are ``0 .. vocab_size - 1``; every sequence has
        ``length`` symbols. Models size their tables and samplers from them.

    Each may be a class attribute or set by ``setup``; the conformance suite checks that it
    is an int that matches the data.
    """

    kind: ClassVar[str] = "vector"
    provides: ClassVar[frozenset[str]] = frozenset()
    default_models: ClassVar[tuple[str, ...]] = ()
    budgets: ClassVar[dict[str, dict[str, int]]] = {}
    max_threads: ClassVar[int | None] = None
    headline_metrics: ClassVar[tuple[str, ...]] = ()
    metric_params: ClassVar[dict[str, dict[str, Any]]] = {}
    warm_starts: ClassVar[dict[str, str]] = {}
    frontier_reference: ClassVar[str] = ""
    frontier_select_by: ClassVar[str] = ""

    train: torch.Tensor
    test: torch.Tensor
    dim: int
    vocab_size: int
    length: int

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.setup()

    def setup(self) -> None:
        """Build the fixed data (``self.train``, ``self.test``) from the task's own seed."""
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log P(x) for each row of ``x``; only for tasks that provide ``log_prob``."""
        raise NotImplementedError(f"task {self.name} has no known density")

    def token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log P(x_n | x_<n) per position, ``[n, length]``, summing to ``log_prob(x)``;
        only for sequence tasks that provide ``token_log_prob``."""
        raise NotImplementedError(f"task {self.name} has no per-token log-probabilities")

    def next_token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log P(v | x_<n) for every symbol v at every position n, ``[n, length, V]``,
        teacher-forced on ``x``: gathered at ``x`` it is `token_log_probs`, and each row's
        exponentials sum to one. Only for sequence tasks that provide
        ``next_token_log_prob``; ``reverse_kl`` uses it to take each position's KL in closed
        form."""
        raise NotImplementedError(f"task {self.name} has no next-symbol distributions")

    def test_log_prob(self) -> torch.Tensor:
        """log P of each row of ``test``; only for tasks that provide ``log_prob``.

        Metrics call this instead of ``log_prob(self.test)``, so that a task that obtains
        these values while drawing its test set (an oracle scoring its own samples) can
        return them instead of scoring the whole set again.
        """
        return self.log_prob(self.test)

    def sample(self, n: int) -> torch.Tensor:
        """Draw ``n`` fresh samples from P using the global torch RNG."""
        raise NotImplementedError(f"task {self.name} cannot draw fresh samples")

    def enumerate(self) -> torch.Tensor:
        """Every point of the sample space, one per row; only for tasks that provide
        ``enumerable``. Sums over these rows make metrics and gradients exact."""
        raise NotImplementedError(f"task {self.name} has no enumerable sample space")

    def to(self, device: torch.device | str) -> Task:
        """Move every tensor and module the task holds to ``device``; return self."""
        for key, value in vars(self).items():
            if isinstance(value, torch.Tensor | torch.nn.Module):
                setattr(self, key, value.to(device))
        return self
