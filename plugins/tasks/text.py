"""Task ``text``: the random-LSTM oracle of the text-GAN literature (SeqGAN, Texygen).

P is an LSTM whose every weight is N(0, std²) from a generator seeded with ``seed`` (no
shipped weights; ``weights_fingerprint`` identifies the oracle). ``n_train`` training
sequences and a *separate* held-out set of ``n_test`` are sampled from it with their own
seeded generator; log P of any sequence is exact, per token too (``token_log_prob``), and so
is each position's whole next-symbol distribution (``next_token_log_prob``). The
held-out set's log P comes from the sampling pass that drew it (`test_log_prob`), so the
``entropy_p`` metric estimates the oracle's entropy from it without scoring the set again.
"""

from __future__ import annotations

import torch
from gbench_plugins.common.autoregressive import LSTMCore
from gbench_plugins.common.oracle import sample_with_log_prob, weights_fingerprint

from benchmark_core import Param, Task, hookimpl, positive

#: The default extra sampling temperatures of nll_test and nll_oracle (T = 1 is always there).
SWEEP = (0.7, 0.85, 1.2)


class TextTask(Task):
    """Sequences of ``length`` symbols over ``vocab`` from a frozen random-LSTM oracle."""

    name = "text"
    description = "oracle LSTM text (vocab 5000, length 20, N(0,1) weights), exact log P"
    kind = "sequence"
    provides = frozenset({"log_prob", "sample", "token_log_prob", "next_token_log_prob"})
    default_models = ("lstm",)
    headline_metrics = ("nll_test", "nll_oracle", "self_bleu", "bleu")
    # The temperature curve of every model, from which the frontier judges each objective
    # against ML's tuned sampler (Caccia et al. 2018). Each extra temperature costs 1.3-1.8 s of
    # CPU per evaluation for nll_test (10,000 held-out sequences) and ~1 s for nll_oracle
    # (2,000 samples scored by the oracle): three add 7-8 s per evaluation at the quick budget.
    metric_params = {
        "nll_test": {"temperatures": list(SWEEP)},
        "nll_oracle": {"temperatures": list(SWEEP)},
    }
    # The text-GAN protocol: the score-function objectives fine-tune the same seed's ML model
    # (from scratch they spend the budget learning what ML learns in a few hundred steps).
    warm_starts = {"reverse_kl": "ml", "jspi": "ml"}
    frontier_reference = "ml"
    # ML's curve from its best held-out likelihood: ML overfits the training set.
    frontier_select_by = "nll_test"
    param_spec = {
        "vocab": Param(5000, "vocabulary size", low=2, high=100_000),
        "length": Param(20, "sequence length", low=1, high=1000),
        "emb": Param(32, "oracle embedding size", low=1, high=4096),
        "hidden": Param(32, "oracle LSTM hidden size", low=1, high=4096),
        "std": positive(1.0, "std of the oracle's N(0, std²) weights"),
        "n_train": Param(10_000, "training-set size", low=1, high=1_000_000),
        "n_test": Param(10_000, "held-out test-set size", low=2, high=1_000_000),
        "seed": Param(0, "seed of the oracle's weights and of the data", low=0),
    }
    # A 5000-way softmax per token: a training step at batch 64 costs ~0.025 s (ml) to ~0.12 s
    # (reverse_kl's exact per-step KL) on one CPU core, and each evaluation (2,000 samples
    # scored by the oracle, the 10,000 held-out sequences scored by Q, the temperature sweep,
    # BLEU) ~7 s; quick keeps a cell under a minute.
    budgets = {
        "smoke": {"steps": 40, "batch_size": 64, "n_eval": 500, "checkpoints": 1, "log_every": 20},
        "quick": {
            "steps": 300,
            "batch_size": 64,
            "n_eval": 2_000,
            "checkpoints": 2,
            "log_every": 50,
        },
    }
    max_threads = 1

    def setup(self) -> None:
        self.vocab_size = self.vocab
        gen = torch.Generator().manual_seed(self.seed)
        self.oracle = LSTMCore(
            self.vocab,
            self.emb,
            self.hidden,
            init="normal",
            std=self.std,
            generator=gen,
            length=self.length,
        )
        self.oracle.requires_grad_(False).eval()
        self.fingerprint = weights_fingerprint(self.oracle)
        data = torch.Generator().manual_seed(self.seed + 1)
        self.train = sample_with_log_prob(self.oracle, self.n_train, generator=data).tokens
        test = sample_with_log_prob(self.oracle, self.n_test, generator=data)
        self.test, self._test_log_prob = test.tokens, test.log_prob

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.oracle.log_prob(x)

    def token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log P(x_n | x_<n) per position, [B, L] (score-function objectives use the
        per-token terms to lower their variance)."""
        return self.oracle.token_log_probs(x)

    def next_token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log P(v | x_<n) for every symbol v, [B, L, V], teacher-forced on ``x``
        (``reverse_kl`` takes each position's KL in closed form from it)."""
        return self.oracle.next_token_log_probs(x)

    def test_log_prob(self) -> torch.Tensor:
        """log P of the held-out set, as the sampling pass that drew it computed it."""
        return self._test_log_prob

    def sample(self, n: int) -> torch.Tensor:
        return self.oracle.sample(n)


@hookimpl
def register_tasks(register):
    register(TextTask)
