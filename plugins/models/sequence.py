"""Autoregressive models of token sequences: ``tabular`` and ``lstm``.

`AutoregressiveModel` is the one step-wise interface every sequence model offers (it is what
the ``autoregressive`` capability promises, and what scheduled sampling drives):

- ``initial_token(batch)``: the begin-of-sequence input (index ``vocab``), LongTensor [batch];
- ``step(token, state) -> (logits [batch, vocab], state)``: read one symbol (BOS first, then
  the previous symbol, true or sampled as the caller chooses), give the next symbol's logits;
  ``state`` is opaque, None at the start;
- ``token_log_probs(x)`` [batch, length] and ``log_prob(x)`` [batch]: exact, teacher-forced,
  differentiable;
- ``sample(n, temperature=1.0)`` and ``sample_with_log_prob(n, temperature)`` (a
  `SampleOutput`: tokens, log Q at T = 1 and log Q_T under the tempered distribution), all in
  one batch, without gradient.
"""

from __future__ import annotations

from typing import Any

import torch
from gbench_plugins.common.autoregressive import LSTMCore, SampleOutput
from torch import nn
from torch.nn import functional as F

from benchmark_core import Model, Param, Task, hookimpl, positive


def categorical(probs: torch.Tensor) -> torch.Tensor:
    """One draw per row of ``probs`` [B, V] (rows need not be normalised), by inverse CDF.

    Ten times faster than ``torch.multinomial`` on a CPU for a 5,000-symbol vocabulary; uses
    one uniform per row from the global RNG. ``right=True`` never lands on a zero-mass symbol.
    """
    cdf = probs.cumsum(dim=1)
    u = torch.rand(probs.shape[0], 1, device=probs.device, dtype=cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=probs.shape[1] - 1)


class AutoregressiveModel(Model):
    """Base of sequence models: Q(x) = prod_n Q(x_n | BOS, x_<n); see the module docstring.

    Subclasses implement ``build`` (setting ``self.vocab`` and ``self.length``), ``step`` and
    ``token_log_probs``; the generic ``sample_with_log_prob`` runs ``step`` once per position
    and may be overridden by a faster one.
    """

    kinds = frozenset({"sequence"})
    provides = frozenset({"log_prob", "sample", "autoregressive"})
    vocab: int
    length: int

    def initial_token(self, batch: int) -> torch.Tensor:
        """The BOS input (index ``vocab``) for the first ``step``, LongTensor [batch]."""
        return torch.full((batch,), self.vocab, dtype=torch.long, device=self.device)

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live."""
        return next(self.parameters()).device

    def step(self, token: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """Logits [B, V] of the next symbol after reading ``token`` [B]; and the new state."""
        raise NotImplementedError

    def token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log Q(x_n | BOS, x_<n) for every position, [B, L]; differentiable."""
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.token_log_probs(x).sum(dim=1)

    def fed_log_probs(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log Q(targets_n | inputs_0..n) per position, [B, L]; differentiable.

        ``inputs[:, 0]`` is BOS and ``inputs[:, n]`` the symbol read before predicting
        ``targets[:, n]`` (teacher forcing when inputs = [BOS, targets[:, :-1]]; scheduled
        sampling feeds some of the model's own symbols). This generic version runs ``step``
        once per position; models with a faster full-sequence pass override it.
        """
        state, parts = None, []
        for t in range(inputs.shape[1]):
            logits, state = self.step(inputs[:, t], state)
            parts.append(-F.cross_entropy(logits, targets[:, t], reduction="none"))
        return torch.stack(parts, dim=1)

    @torch.no_grad()
    def sample_with_log_prob(self, n: int, temperature: float = 1.0) -> SampleOutput:
        """n sequences from Q_T (each conditional softmax(logits / T); T = 0 is greedy)."""
        tokens = torch.empty((n, self.length), dtype=torch.long, device=self.device)
        lp = torch.zeros(n, dtype=torch.float64, device=self.device)
        lp_t = torch.zeros_like(lp)
        token, state = self.initial_token(n), None
        for t in range(self.length):
            logits, state = self.step(token, state)
            logq = F.log_softmax(logits.double(), dim=1)
            if temperature == 0.0:
                token = logq.argmax(dim=1)
            else:
                logq_t = F.log_softmax(logits.double() / temperature, dim=1)
                token = categorical(logq_t.exp())
                lp_t += logq_t.gather(1, token[:, None]).squeeze(1)
            lp += logq.gather(1, token[:, None]).squeeze(1)
            tokens[:, t] = token
        dtype = torch.get_default_dtype()
        return SampleOutput(tokens, lp.to(dtype), lp_t.to(dtype))

    def sample(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        return self.sample_with_log_prob(n, temperature).tokens


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

    @torch.no_grad()
    def sample_with_log_prob(self, n: int, temperature: float = 1.0) -> SampleOutput:
        out = self.core.sample(n, temperature=temperature, return_log_prob=True)
        assert isinstance(out, SampleOutput)
        return out


@hookimpl
def register_models(register):
    register(TabularModel)
    register(LSTMModel)
