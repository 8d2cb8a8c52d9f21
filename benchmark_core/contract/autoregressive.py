"""The autoregressive interface: what the ``autoregressive`` capability promises.

A sequence model Q(x) = prod_n Q(x_n | BOS, x_<n) over ``vocab`` symbols, read one symbol at a
time. Scheduled sampling and the score-function objectives drive models through nothing
else; the ``sequence`` tasks' oracles offer the same interface. `Autoregressive` is the
protocol (what a caller may use); `AutoregressiveModel` is the base class a model providing
``autoregressive`` subclasses, with generic versions of everything but ``build``, ``step``
and ``token_log_probs``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import torch
from torch.nn import functional as F

from benchmark_core.contract.model import Model


class SampleOutput(NamedTuple):
    """Sequences drawn by ``sample_with_log_prob``, with their exact log-probabilities.

    Attributes
    ----------
    tokens : LongTensor [n, length]
    log_prob : Tensor [n]
        log Q(x) under the model itself (temperature 1).
    tempered_log_prob : Tensor [n]
        log Q_T(x) under the distribution the sequences were drawn from: each conditional is
        softmax(logits / T). At T = 0 (greedy) this is 0. Equal to `log_prob` at T = 1.
    """

    tokens: torch.Tensor
    log_prob: torch.Tensor
    tempered_log_prob: torch.Tensor


#: The methods of the interface, checked by the conformance suite on every model that
#: provides ``autoregressive``.
AUTOREGRESSIVE_METHODS = (
    "initial_token",
    "step",
    "token_log_probs",
    "fed_log_probs",
    "next_token_log_probs",
    "log_prob",
    "weighted_log_prob",
    "sample_with_log_prob",
)


@runtime_checkable
class Autoregressive(Protocol):
    """The step-wise interface of an autoregressive distribution over token sequences.

    Attributes
    ----------
    vocab : int
        Output symbols are ``0 .. vocab - 1``; the begin-of-sequence (BOS) input is ``vocab``.
    length : int
        Length of the sequences ``sample_with_log_prob`` draws.
    """

    vocab: int
    length: int

    def initial_token(self, batch: int) -> torch.Tensor:
        """The BOS input (index ``vocab``) for the first ``step``, LongTensor [batch]."""
        ...

    def step(self, token: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """Read ``token`` [B] (BOS first, then the previous symbol, true or sampled as the
        caller chooses); return the next symbol's logits [B, vocab] and the new state.
        ``state`` is opaque, None at the start."""
        ...

    def token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log Q(x_n | BOS, x_<n) for every position, [B, L]; teacher-forced, differentiable."""
        ...

    def fed_log_probs(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log Q(targets_n | inputs_0..n) per position, [B, L]; differentiable."""
        ...

    def next_token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log Q(v | BOS, x_<n) for every symbol v at every position n, [B, L, vocab];
        teacher-forced on ``x``, differentiable. Gathered at ``x`` it is ``token_log_probs``."""
        ...

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log Q(x) = the sum of ``token_log_probs(x)`` over positions, [B]."""
        ...

    def weighted_log_prob(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Σ weights · log Q as one differentiable 0-d tensor: ``weights`` [B] weigh whole
        sequences, [B, L] single positions; they are constants (no gradient flows to them)."""
        ...

    def sample_with_log_prob(self, n: int, temperature: float = 1.0) -> SampleOutput:
        """``n`` sequences from Q_T with log Q and log Q_T, in one batch, without gradient."""
        ...


def token_weights(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-sequence [B] or per-position [B, L] weights as [B, L] constants for tokens ``x``."""
    weights = weights.detach()
    if weights.shape == x.shape:
        return weights
    if weights.shape == x.shape[:1]:
        return weights[:, None].expand(x.shape)
    raise ValueError(
        f"weights of shape {tuple(weights.shape)} fit neither the batch {tuple(x.shape[:1])} "
        f"nor its tokens {tuple(x.shape)}"
    )


def categorical(probs: torch.Tensor) -> torch.Tensor:
    """One draw per row of ``probs`` [B, V] (rows need not be normalised), by inverse CDF.

    Ten times faster than ``torch.multinomial`` on a CPU for a 5,000-symbol vocabulary; uses
    one uniform per row from the global RNG. ``right=True`` never lands on a zero-mass symbol.
    """
    cdf = probs.cumsum(dim=1)
    u = torch.rand(probs.shape[0], 1, device=probs.device, dtype=cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=probs.shape[1] - 1)


def check_density_temperature(temperature: float) -> float:
    """``temperature`` as a float, refused unless finite and > 0 (a density needs T > 0:
    at T = 0 greedy decoding puts all mass on one sequence)."""
    t = float(temperature)
    if not (t > 0.0 and math.isfinite(t)):
        raise ValueError(
            f"temperature {temperature!r} has no density: log Q_T needs a finite T > 0 "
            f"(T = 0 is greedy decoding, a single sequence)"
        )
    return t


def stepwise_tempered_log_prob(model: Any, x: torch.Tensor, temperature: float) -> torch.Tensor:
    """log Q_T(x) of any `Autoregressive` model, teacher-forced through ``step``, [B].

    Each position adds log softmax(logits / T)[x_n] (in float64, then cast back to the
    default dtype, as ``sample_with_log_prob`` sums its log-probabilities).
    """
    t = check_density_temperature(temperature)
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    token, state = model.initial_token(x.shape[0]), None
    for n in range(x.shape[1]):
        logits, state = model.step(token, state)
        logq = F.log_softmax(logits.double() / t, dim=1)
        total = total + logq.gather(1, x[:, n : n + 1]).squeeze(1)
        token = x[:, n]
    return total.to(torch.get_default_dtype())


class AutoregressiveModel(Model):
    """Base of models that provide ``autoregressive``; see `Autoregressive`.

    Subclasses implement ``build`` (setting ``self.vocab`` and ``self.length`` from the task's
    ``vocab_size`` and ``length``), ``step`` and ``token_log_probs``. The generic
    ``fed_log_probs``, ``next_token_log_probs`` and ``sample_with_log_prob`` run ``step`` once
    per position; override them with faster full-sequence passes where the model has one.
    """

    kinds: ClassVar[frozenset[str]] = frozenset({"sequence"})
    provides: ClassVar[frozenset[str]] = frozenset({"log_prob", "sample", "autoregressive"})
    vocab: int
    length: int

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live."""
        return next(self.parameters()).device

    def initial_token(self, batch: int) -> torch.Tensor:
        """The BOS input (index ``vocab``) for the first ``step``, LongTensor [batch]."""
        return torch.full((batch,), self.vocab, dtype=torch.long, device=self.device)

    def step(self, token: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """Logits [B, V] of the next symbol after reading ``token`` [B]; and the new state."""
        raise NotImplementedError

    def token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log Q(x_n | BOS, x_<n) for every position, [B, L]; differentiable."""
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.token_log_probs(x).sum(dim=1)

    def weighted_log_prob(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Σ weights · log Q (see `Autoregressive`). Training losses are such sums with weights
        known in advance (1/B for maximum likelihood); a model may override this to compute
        the gradient in the same pass as the value, as ``lstm`` does."""
        return (self.token_log_probs(x) * token_weights(weights, x)).sum()

    def tempered_log_prob(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        """log Q_T(x) = sum_n log softmax(logits_n / T)[x_n], [B]; T > 0.

        Exact for an autoregressive model: Q_T, the distribution ``sample_with_log_prob``
        draws from at temperature T, is a product of tempered conditionals. This generic
        version runs ``step`` once per position (`stepwise_tempered_log_prob`); override it
        with a full-sequence pass where the model has one.
        """
        return stepwise_tempered_log_prob(self, x, temperature)

    def fed_log_probs(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log Q(targets_n | inputs_0..n) per position, [B, L]; differentiable.

        ``inputs[:, 0]`` is BOS and ``inputs[:, n]`` the symbol read before predicting
        ``targets[:, n]`` (teacher forcing when inputs = [BOS, targets[:, :-1]]; scheduled
        sampling feeds some of the model's own symbols). This generic version runs ``step``
        once per position.
        """
        state, parts = None, []
        for t in range(inputs.shape[1]):
            logits, state = self.step(inputs[:, t], state)
            parts.append(-F.cross_entropy(logits, targets[:, t], reduction="none"))
        return torch.stack(parts, dim=1)

    def next_token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log Q(v | BOS, x_<n) for every symbol v at every position n, [B, L, V];
        teacher-forced on ``x``, differentiable. This generic version runs ``step`` once per
        position (the whole [B, L, V] tensor is built: callers keep B * L * V affordable)."""
        token, state, parts = self.initial_token(x.shape[0]), None, []
        for t in range(x.shape[1]):
            logits, state = self.step(token, state)
            parts.append(F.log_softmax(logits, dim=1))
            token = x[:, t]
        if not parts:
            return torch.zeros((x.shape[0], 0, self.vocab), device=self.device)
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
        """``n`` sequences from Q_T (tokens only)."""
        return self.sample_with_log_prob(n, temperature).tokens
