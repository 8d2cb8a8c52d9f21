"""Drawing one symbol per row from an LSTM's output layer, a block of rows at a time.

`BlockSampler` is the inner loop of `LSTMCore.sample`: for each position it projects the
hidden states onto the (padded) vocabulary in reused buffers and draws by two-level inverse
CDF, adding the draws' log-probabilities when asked.
"""

from __future__ import annotations

import math

import torch
from gbench_plugins.common.softmax_projection import augmented, with_ones


class BlockSampler:
    """One position of `LSTMCore.sample`: draws a symbol per row from the output layer.

    Two-level inverse-CDF sampling: logits padded to ``blocks x width``, the block picked
    from block sums, then the symbol inside it. Cheaper than a cumulative sum over the whole
    vocabulary, and the padding (bias -inf) has probability exactly 0. Rows are processed a
    block of ``rows`` at a time in reused buffers of about ``chunk_elements`` elements.
    ``headroom`` is the margin kept below the log of the largest float when deciding that
    exp cannot overflow (see `softmax_projection.EXP_HEADROOM`).
    """

    def __init__(
        self,
        w: torch.Tensor,
        b: torch.Tensor,
        n: int,
        temperature: float,
        return_log_prob: bool,
        chunk_elements: int,
        headroom: float,
    ) -> None:
        device, dtype = w.device, w.dtype
        vocab = w.shape[0]
        self.w, self.b, self.temperature = w, b, temperature
        self.greedy = temperature == 0.0
        self.return_log_prob = return_log_prob
        self.width = math.isqrt(vocab - 1) + 1
        self.blocks = -(-vocab // self.width)
        padded = self.blocks * self.width
        # [W | b] acting on [h | 1]: the bias rides in the product instead of a broadcast copy
        # per block (a third of the product's cost); the padding rows are (0, ..., 0, -inf).
        self.w1_pad = torch.zeros((padded, w.shape[1] + 1), dtype=dtype, device=device)
        self.w1_pad[:vocab] = augmented(w, b)
        self.w1_pad[vocab:, -1] = -math.inf
        # h = o * tanh(c) lies in (-1, 1), so no logit exceeds this bound in absolute value;
        # when exp cannot overflow or underflow, the max-subtraction pass can be skipped.
        bound = float((w.abs().sum(dim=1) + b.abs()).max())
        log_max = math.log(torch.finfo(dtype).max) - headroom
        self.shift = self.greedy or bound / temperature + math.log(padded) > log_max
        shift1 = bound + math.log(padded) > log_max
        self.rows = max(1, min(n, chunk_elements // padded))
        self.buf = torch.empty((self.rows, padded), dtype=dtype, device=device)
        self.need_lse1 = return_log_prob and not self.greedy and temperature != 1.0
        self.scratch = torch.empty_like(self.buf) if self.need_lse1 and not shift1 else None

    def position(
        self,
        h: torch.Tensor,
        u: torch.Tensor | None,
        out: torch.Tensor,
        lp: torch.Tensor,
        lp_t: torch.Tensor,
    ) -> None:
        """Draw one symbol per row of hidden states ``h`` [n, H] into ``out`` [n], with the
        uniforms ``u`` (None when greedy); add log Q and log Q_T of the draws to ``lp``,
        ``lp_t`` when log-probabilities were asked for."""
        w, b, rows = self.w, self.b, self.rows
        h1 = with_ones(h)
        for s in range(0, h.shape[0], rows):
            hs = h[s : s + rows]
            z = torch.mm(h1[s : s + rows], self.w1_pad.t(), out=self.buf[: hs.shape[0]])
            if self.greedy:
                idx = z.argmax(dim=1)
                if self.return_log_prob:
                    lp[s : s + rows] += (
                        _chosen_logit(hs, w, b, idx) - torch.logsumexp(z, dim=1)
                    ).double()
            else:
                assert u is not None
                idx, lse1, lse_t = _draw(
                    z,
                    u[s : s + rows],
                    self.temperature,
                    self.blocks,
                    self.width,
                    shift=self.shift,
                    need_lse1=self.need_lse1,
                    scratch=None if self.scratch is None else self.scratch[: hs.shape[0]],
                )
                if self.return_log_prob:
                    logit = _chosen_logit(hs, w, b, idx).double()
                    lp_t[s : s + rows] += logit / self.temperature - lse_t
                    lp[s : s + rows] += logit - (lse_t if lse1 is None else lse1)
            out[s : s + rows] = idx


def _chosen_logit(
    h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, idx: torch.Tensor
) -> torch.Tensor:
    """Logit of symbol idx[i] for row i, recomputed from the hidden state (a dot product)."""
    return (h * w[idx]).sum(dim=1) + b[idx]


def _draw(
    z: torch.Tensor,
    u: torch.Tensor,
    temperature: float,
    blocks: int,
    width: int,
    shift: bool,
    need_lse1: bool,
    scratch: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Sample one symbol per row of padded logits z (overwritten) from softmax(z / T).

    Returns the symbols, logsumexp(z) if need_lse1, and logsumexp(z / T), the last two in
    float64. u holds one float64 uniform per row. shift=False skips subtracting the row
    maximum, for logits known to be small enough for exp; so does a `scratch` buffer (same
    shape as z) for logsumexp(z).
    """
    lse1 = None
    if need_lse1:
        if scratch is None:
            lse1 = torch.logsumexp(z, dim=1).double()
        else:
            lse1 = torch.exp(z, out=scratch).sum(dim=1).double().log()
    if temperature != 1.0:
        z.mul_(1.0 / temperature)
    if shift:
        m = z.amax(dim=1, keepdim=True)
        z.sub_(m)
        offset: torch.Tensor | float = m.squeeze(1).double()
    else:
        offset = 0.0
    e = z.exp_().view(z.shape[0], blocks, width)
    block_mass = e.sum(dim=2).double()
    cum = block_mass.cumsum(dim=1)
    total = cum[:, -1]
    # Clamping below each total makes searchsorted return an index whose mass is > 0, even
    # when rounding puts u * total on the boundary.
    zero = torch.zeros_like(total)
    target = torch.minimum(u * total, torch.nextafter(total, zero)).unsqueeze(1)
    blk = torch.searchsorted(cum, target, right=True)
    before = torch.where(blk > 0, cum.gather(1, (blk - 1).clamp_(min=0)), 0.0)
    rest = target - before
    rows = torch.arange(z.shape[0], device=z.device)
    inner = e[rows, blk.squeeze(1)].double().cumsum(dim=1)
    rest = torch.minimum(rest.clamp_(min=0.0), torch.nextafter(inner[:, -1:], zero[:, None]))
    j = torch.searchsorted(inner, rest, right=True)
    idx = (blk * width + j).squeeze(1)
    lse_t = offset + block_mass.sum(dim=1).log()
    return idx, lse1, lse_t
