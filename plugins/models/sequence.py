"""Autoregressive models of token sequences: ``tabular`` and ``lstm``.

Both subclass the contract's `AutoregressiveModel` (see `benchmark_core.contract.autoregressive`
for the step-wise interface the ``autoregressive`` capability promises): ``tabular`` keeps its
generic ``sample_with_log_prob``, ``lstm`` uses `LSTMCore`'s batched sampler.
"""

from __future__ import annotations

from typing import Any

import torch
from gbench_plugins.common.autoregressive import LSTMCore
from torch import nn
from torch.nn import functional as F

from benchmark_core import AutoregressiveModel, Param, SampleOutput, Task, hookimpl, positive
from benchmark_core.contract import categorical, check_density_temperature

__all__ = ["LSTMModel", "TabularModel", "categorical"]


class TabularModel(AutoregressiveModel):
    """A free table of logits per previous symbol: Q(x1) and Q(x_n | x_{n-1}).

    For length-2 sequences (the pairs task) this is every distribution there is: free Q(x1)
    and Q(x2 | x1). On longer sequences it is a first-order Markov chain (one transition
    table shared across positions), with (V + 1) x V parameters.
    """

    name = "tabular"
    description = "free tables Q(x1), Q(x_n|x_{n-1}) (exactly any P on pairs; Markov chain)"
    param_spec = {"init_scale": Param(0.1, "std of the random initial logits", low=0.0)}

    def build(self, task: Task) -> None:
        self.vocab, self.length = task.vocab_size, task.length
        # Row `vocab` (BOS) holds the logits of x1; row z those of the symbol after z.
        self.table = nn.Parameter(self.init_scale * torch.randn(self.vocab + 1, self.vocab))

    def step(self, token: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return self.table[token], state

    def token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([self.initial_token(x.shape[0])[:, None], x[:, :-1]], dim=1)
        return F.log_softmax(self.table, dim=1)[inputs, x]

    def fed_log_probs(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.table, dim=1)[inputs, targets]

    def next_token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([self.initial_token(x.shape[0])[:, None], x[:, :-1]], dim=1)
        return F.log_softmax(self.table, dim=1)[inputs]

    def conditional(self) -> torch.Tensor:
        """The tables as probabilities, [V + 1, V] (last row: Q(x1))."""
        return F.softmax(self.table, dim=1)


class LSTMModel(AutoregressiveModel):
    """Embedding -> LSTM -> softmax over the vocabulary (`LSTMCore`), BOS-started."""

    name = "lstm"
    description = "embedding, one-layer LSTM, softmax; exact log Q, batched tempered sampling"
    param_spec = {
        "emb": Param(32, "embedding size", low=1),
        "hidden": Param(32, "LSTM hidden size", low=1),
        "init": Param("default", "initial weights", choices=("default", "normal")),
        "init_std": positive(1.0, "weight std for init=normal"),
    }

    def build(self, task: Task) -> None:
        self.vocab, self.length = task.vocab_size, task.length
        # Weights from the global RNG, which the runner seeds per cell.
        self.core = LSTMCore(
            self.vocab,
            self.emb,
            self.hidden,
            init=self.init,
            std=self.init_std,
            length=self.length,
        )

    def step(self, token: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return self.core.step(token, state)

    def token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        return self.core.token_log_probs(x)

    def fed_log_probs(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.core.fed_log_probs(inputs, targets)

    def next_token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        return self.core.next_token_log_probs(x)

    def weighted_log_prob(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.core.weighted_log_prob(x, weights)

    def tempered_log_prob(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        # One teacher-forced pass with the output layer scaled by 1/T (not the generic
        # step-per-position loop).
        return self.core.tempered_log_prob(x, check_density_temperature(temperature))

    @torch.no_grad()
    def sample_with_log_prob(self, n: int, temperature: float = 1.0) -> SampleOutput:
        return self.core.sample_with_log_prob(n, temperature)


@hookimpl
def register_models(register):
    register(TabularModel)
    register(LSTMModel)
