"""An autoregressive LSTM over a finite vocabulary, with exact log-probabilities.

Conventions
-----------
Tokens are integers in ``[0, vocab)``. The model reads a *begin-of-sequence* (BOS) symbol
before the first token; BOS has the index ``vocab``, so the embedding table has ``vocab + 1``
rows while the output layer has ``vocab`` logits (BOS is never emitted). The BOS embedding is
an ordinary parameter: trained with the rest of the model when the model is trained, frozen
with the rest when it is frozen (the oracle). The LSTM starts from zero hidden and cell states.

Q(x) = prod_n Q(x_n | BOS, x_0, ..., x_{n-1}); every sequence of a given length has a
probability, and those sum to one over all ``vocab ** length`` sequences.
"""

from __future__ import annotations

import math

import torch
from gbench_plugins.common.block_sampler import BlockSampler
from gbench_plugins.common.softmax_projection import (
    EXP_HEADROOM,
    log_softmax_at,
    weighted_log_softmax_sum,
)
from torch import nn

from benchmark_core import SampleOutput
from benchmark_core.contract.autoregressive import token_weights

__all__ = ["LSTMCore", "SampleOutput"]

State = tuple[torch.Tensor, torch.Tensor]

# The sampler's logit buffers are processed a block of rows at a time: about 4 MiB of float32
# stays in cache and is reused, where one (batch x vocab) tensor per step would cost a fresh
# allocation and its page faults (measured: 2-3x slower on CPU). GPUs prefer large blocks.
# (Scoring blocks are `softmax_projection`'s.)
_CPU_CHUNK_ELEMENTS = 1 << 20
_GPU_CHUNK_ELEMENTS = 1 << 26
# The sampler's own margin below the largest float's log (tests force the shifted path by
# raising it).
_EXP_HEADROOM = EXP_HEADROOM


class LSTMCore(nn.Module):
    """Embedding -> single-layer LSTM -> linear logits; see the module docstring.

    Implements the contract's `benchmark_core.Autoregressive` interface (``initial_token``,
    ``step``, ``token_log_probs``, ``fed_log_probs``, ``next_token_log_probs``, ``log_prob``,
    ``weighted_log_prob``, ``sample_with_log_prob``),
    so that the ``lstm`` model and the ``text`` task's oracle are driven alike.

    Parameters
    ----------
    vocab : int
        Number of output symbols V; the BOS input symbol has index V.
    emb, hidden : int
        Embedding and LSTM state sizes.
    init : {"default", "normal"}
        "default" draws from the distributions of PyTorch's own default initialisation
        (embedding N(0, 1); LSTM and linear U(-1/sqrt(fan), 1/sqrt(fan))); "normal" draws
        every weight and bias from N(0, std**2) (std = 1 gives the text-GAN oracle).
    std : float
        Standard deviation for ``init="normal"``.
    generator : torch.Generator, optional
        Source of the initial weights; the global RNG is used only when this is None.
    length : int, optional
        Default sequence length for `sample`.
    """

    def __init__(
        self,
        vocab: int,
        emb: int = 32,
        hidden: int = 32,
        *,
        init: str = "default",
        std: float = 1.0,
        generator: torch.Generator | None = None,
        length: int | None = None,
    ) -> None:
        super().__init__()
        if vocab < 1 or emb < 1 or hidden < 1:
            raise ValueError(f"vocab, emb and hidden must be >= 1, got {vocab}, {emb}, {hidden}")
        if init not in ("default", "normal"):
            raise ValueError(f"init must be 'default' or 'normal', got {init!r}")
        self.vocab = vocab
        self.bos = vocab
        self.hidden_size = hidden
        self.length = length
        # The submodules' own initialisation is discarded (every weight is redrawn below from
        # `generator`); forking the global RNG keeps it from advancing the caller's stream.
        # (Building on the meta device instead costs a 2 s torch._dynamo import.)
        with torch.random.fork_rng(devices=[]):
            self.embedding = nn.Embedding(vocab + 1, emb)
            self.lstm = nn.LSTM(emb, hidden, batch_first=True)
            self.out = nn.Linear(hidden, vocab)
        self.reset_parameters(init=init, std=std, generator=generator)

    @torch.no_grad()
    def reset_parameters(
        self, init: str = "default", std: float = 1.0, generator: torch.Generator | None = None
    ) -> None:
        """Redraw every parameter (see the class docstring for `init` and `std`)."""
        g = generator
        if init == "normal":
            for p in self.parameters():
                p.normal_(0.0, std, generator=g)
            return
        self.embedding.weight.normal_(0.0, 1.0, generator=g)
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.lstm.parameters():
            p.uniform_(-bound, bound, generator=g)
        bound = 1.0 / math.sqrt(self.out.in_features)
        self.out.weight.uniform_(-bound, bound, generator=g)
        self.out.bias.uniform_(-bound, bound, generator=g)

    # ------------------------------------------------------------------ teacher forcing
    def _check_tokens(self, x: torch.Tensor) -> None:
        if x.dim() != 2:
            raise ValueError(
                f"expected token tensor of shape [batch, length], got {tuple(x.shape)}"
            )
        if x.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"expected integer tokens (torch.long), got {x.dtype}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.vocab):
            raise ValueError(
                f"tokens must lie in [0, {self.vocab}); got range [{int(x.min())}, {int(x.max())}]"
            )

    def _hidden(self, x: torch.Tensor) -> torch.Tensor:
        """LSTM outputs [B, L, H] where position n has read BOS, x_0, ..., x_{n-1}."""
        bos = torch.full_like(x[:, :1], self.bos)
        inputs = torch.cat([bos, x[:, :-1]], dim=1)
        out, _ = self.lstm(self.embedding(inputs))
        return out

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits.

        Parameters
        ----------
        x : LongTensor [B, L]

        Returns
        -------
        Tensor [B, L, V]
            Row n holds the logits of Q(x_n | BOS, x_0, ..., x_{n-1}).
        """
        self._check_tokens(x)
        if x.shape[1] == 0:
            return x.new_zeros((x.shape[0], 0, self.vocab), dtype=self.out.weight.dtype)
        return self.out(self._hidden(x))

    def next_token_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher-forced log Q(v | BOS, x_<n) for every symbol v, [B, L, V]; differentiable.

        Unlike `token_log_probs` this materialises the [B, L, V] tensor: callers that need
        the whole next-symbol distribution (``reverse_kl``'s closed-form step KL) keep B * L
        small (a training batch).
        """
        return torch.log_softmax(self.logits(x), dim=-1)

    def token_log_probs(self, x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Per-position log Q(x_n | prefix), shape [B, L]; differentiable.

        With ``temperature`` T, log Q_T(x_n | prefix) = log softmax(logits / T)[x_n], the
        conditional that `sample` draws from at T (T > 0).

        The [B, L, V] logits are never materialised at once (they are 4 GB for 10,000
        sequences of length 20 over 5,000 symbols): `log_softmax_at` projects a block of rows
        at a time, and keeps them only when a gradient will be taken.
        """
        self._check_tokens(x)
        b, length = x.shape
        if length == 0:
            return x.new_zeros((b, 0), dtype=self.out.weight.dtype)
        bos = torch.full_like(x[:, :1], self.bos)
        return self.fed_log_probs(torch.cat([bos, x[:, :-1]], dim=1), x, temperature)

    def fed_log_probs(
        self, inputs: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0
    ) -> torch.Tensor:
        """log Q_T(targets_n | inputs_0..n) per position, [B, L]; differentiable.

        ``inputs[:, 0]`` is BOS and ``inputs[:, n]`` the symbol read before predicting
        ``targets[:, n]`` (teacher forcing when inputs = [BOS, targets[:, :-1]]). T = 1 (the
        default) is Q itself.
        """
        b, length = targets.shape
        hidden, _ = self.lstm(self.embedding(inputs))
        flat = hidden.reshape(b * length, -1)
        weight, bias = self.out.weight, self.out.bias
        if temperature != 1.0:
            if not (temperature > 0.0 and math.isfinite(temperature)):
                raise ValueError(f"temperature must be finite and > 0, got {temperature}")
            # logits / T = h (W / T)ᵀ + b / T. `log_softmax_at` decides its no-shift shortcut
            # from the weights it is given, so the bound it checks is the tempered logits'
            # (larger by 1/T for T < 1), and the shortcut stays safe.
            weight, bias = weight / temperature, bias / temperature
        # h = o * tanh(c) lies in (-1, 1): h_bound=1 lets the softmax skip its max pass.
        out = log_softmax_at(flat, weight, bias, targets.reshape(-1).long())
        return out.view(b, length)

    def weighted_log_prob(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Σ weights · log Q, 0-d; weights [B] per sequence or [B, L] per position, constants.

        Equal to ``(token_log_probs(x) * weights).sum()``, but when a gradient will be taken
        it is computed in this pass (`weighted_log_softmax_sum`): a maximum-likelihood step
        then reads each block of logits once, and keeps none of them for the backward pass.
        """
        self._check_tokens(x)
        b, length = x.shape
        w = token_weights(weights, x).reshape(-1)
        if length == 0:
            return w.new_zeros((), dtype=self.out.weight.dtype)
        bos = torch.full_like(x[:, :1], self.bos)
        hidden, _ = self.lstm(self.embedding(torch.cat([bos, x[:, :-1]], dim=1)))
        flat = hidden.reshape(b * length, -1)
        return weighted_log_softmax_sum(flat, self.out.weight, self.out.bias, x.reshape(-1), w)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact sequence log-probability log Q(x) = sum_n log Q(x_n | prefix), shape [B]."""
        return self.token_log_probs(x).sum(dim=1)

    def tempered_log_prob(self, x: torch.Tensor, temperature: float) -> torch.Tensor:
        """Exact log Q_T(x) = sum_n log softmax(logits_n / T)[x_n], shape [B]; T > 0."""
        return self.token_log_probs(x, temperature).sum(dim=1)

    @staticmethod
    def _chunk_elements(device: torch.device) -> int:
        return _GPU_CHUNK_ELEMENTS if device.type == "cuda" else _CPU_CHUNK_ELEMENTS

    # ------------------------------------------------------------------ step-wise interface
    def _advance(self, token: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        out, new_state = self.lstm(self.embedding(token).unsqueeze(1), state)
        return out[:, 0], new_state

    def initial_token(self, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The BOS input for the first `step` of a batch, LongTensor [batch]."""
        device = self.out.weight.device if device is None else device
        return torch.full((batch,), self.bos, dtype=torch.long, device=device)

    def step(self, token: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Advance one position.

        Parameters
        ----------
        token : LongTensor [B]
            The symbol just read: BOS (= ``vocab``, see `initial_token`) at the start,
            otherwise the previous symbol (true or sampled, as the caller chooses).
        state : tuple of Tensor, optional
            Opaque recurrent state returned by the previous call; None at the start
            (zero hidden and cell states).

        Returns
        -------
        logits : Tensor [B, V]
            Logits of the next symbol; differentiable.
        state : tuple of Tensor
        """
        h, state = self._advance(token, state)
        return self.out(h), state

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        n: int,
        length: int | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        return_log_prob: bool = False,
    ) -> torch.Tensor | SampleOutput:
        """Draw n sequences, all in one batch (one LSTM step per position).

        Parameters
        ----------
        n : int
        length : int, optional
            Defaults to ``self.length``.
        temperature : float
            Each conditional is softmax(logits / temperature); 0 means greedy (argmax).
        generator : torch.Generator, optional
            On the model's device; the global RNG is used when None.
        return_log_prob : bool
            Also return log Q(x) at temperature 1 and log Q_T(x) under the tempered sampling
            distribution (see `SampleOutput`), both taken during the sampling pass.

        Returns
        -------
        LongTensor [n, length], or `SampleOutput` when return_log_prob.
            Computed without gradient; score with `log_prob` for a differentiable value.
        """
        length = self.length if length is None else length
        if length is None or length < 0:
            raise ValueError("give a length >= 0 (or construct the model with length=...)")
        if not (temperature >= 0.0 and math.isfinite(temperature)):
            raise ValueError(f"temperature must be finite and >= 0, got {temperature}")
        w = self.out.weight
        device, dtype = w.device, w.dtype
        sampler = BlockSampler(
            w,
            self.out.bias,
            n,
            temperature,
            return_log_prob,
            self._chunk_elements(device),
            _EXP_HEADROOM,
        )
        tokens = torch.empty((n, length), dtype=torch.long, device=device)
        lp = torch.zeros(n, dtype=torch.float64, device=device)
        lp_t = torch.zeros(n, dtype=torch.float64, device=device)
        token = self.initial_token(n, device)
        state: State | None = None
        for t in range(length):
            h, state = self._advance(token, state)
            u = (
                None
                if sampler.greedy
                else torch.rand(n, generator=generator, device=device, dtype=torch.float64)
            )
            sampler.position(h, u, tokens[:, t], lp, lp_t)
            token = tokens[:, t]

        if not return_log_prob:
            return tokens
        return SampleOutput(tokens, lp.to(dtype), lp_t.to(dtype))

    @torch.no_grad()
    def sample_with_log_prob(self, n: int, temperature: float = 1.0) -> SampleOutput:
        """``n`` sequences of ``self.length`` from Q_T with log Q and log Q_T (see `sample`)."""
        out = self.sample(n, temperature=temperature, return_log_prob=True)
        assert isinstance(out, SampleOutput)
        return out
