"""Checks of the declared shapes and interfaces that other components build on: a task's
``dim`` / ``vocab_size`` / ``length``, per-token log-probabilities, the autoregressive
interface, moments and ``vmap`` of a model, and what an objective provides to metrics; see
:mod:`.suite`."""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from benchmark_core.conformance.base import Workbench, build_model, fail, short, smoke_budget
from benchmark_core.contract import (
    AUTOREGRESSIVE_METHODS,
    Model,
    Task,
    stepwise_tempered_log_prob,
)
from benchmark_core.registry import Entry

#: Tolerance when two computations of one log-probability must agree (float32 sums).
ATOL, RTOL = 1e-3, 1e-4


def _int_attr(obj: Any, name: str) -> int | None:
    value = getattr(obj, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_task_shape(entry: Entry, bench: Workbench) -> None:
    """A vector task's ``dim``, a sequence task's ``vocab_size`` and ``length``: ints that
    match its data (models size themselves from them)."""
    task = bench.task(entry)
    width = task.train.shape[1] if task.train.dim() == 2 else None
    decl = f"kind={entry.cls.kind!r}"
    if task.kind == "vector":
        dim = _int_attr(task, "dim")
        if dim is None:
            raise fail(
                entry,
                decl,
                f"a vector task must declare its dimension as an int attribute 'dim' (got "
                f"{getattr(task, 'dim', None)!r}; its rows have {width} coordinates): every "
                "model sizes its parameters from task.dim",
            )
        if dim != width:
            raise fail(entry, decl, f"dim is {dim} but the rows of train have {width} coordinates")
        return
    for name in ("vocab_size", "length"):
        value = _int_attr(task, name)
        if value is None or value < 1:
            raise fail(
                entry,
                decl,
                f"a sequence task must declare '{name}' as an int >= 1 (got "
                f"{getattr(task, name, None)!r}): models size their tables and samplers from it",
            )
    if task.length != width:
        raise fail(entry, decl, f"length is {task.length} but the train sequences have {width}")


def check_test_log_prob(entry: Entry, task: Task) -> None:
    """``test_log_prob()`` gives one value per test row, equal to ``log_prob`` of the row."""
    decl = "provides 'log_prob'"
    lp = task.test_log_prob()
    n = len(task.test)
    if not isinstance(lp, torch.Tensor) or tuple(lp.shape) != (n,):
        shape = tuple(lp.shape) if isinstance(lp, torch.Tensor) else type(lp).__name__
        raise fail(entry, decl, f"test_log_prob() has shape {shape}, not ({n},)")
    _agree(entry, decl, lp[:256], task.log_prob(task.test[:256]), "test_log_prob()", "log_prob")


def check_token_log_probs(entry: Entry, task: Task) -> None:
    """Per-token log-probabilities of a task that provides ``token_log_prob``: ``[n, length]``,
    finite, ≤ 0, summing over positions to ``log_prob``."""
    decl = "provides 'token_log_prob'"
    if task.kind != "sequence":
        raise fail(entry, decl, "per-token log-probabilities are for sequence tasks only")
    if "log_prob" not in entry.cls.provides:
        raise fail(entry, decl, "also provide 'log_prob': the per-token values sum to it")
    x = task.test[:64]
    tok = task.token_log_probs(x)
    if not isinstance(tok, torch.Tensor) or tuple(tok.shape) != tuple(x.shape):
        shape = tuple(tok.shape) if isinstance(tok, torch.Tensor) else type(tok).__name__
        raise fail(entry, decl, f"token_log_probs of {tuple(x.shape)} tokens has shape {shape}")
    if not torch.isfinite(tok).all() or (tok > 1e-6).any():
        raise fail(entry, decl, "token_log_probs must be finite and <= 0 on the test data")
    total, lp = tok.double().sum(1), task.log_prob(x).double()
    if not torch.allclose(total, lp, atol=ATOL, rtol=RTOL):
        worst = float((total - lp).abs().max())
        raise fail(
            entry, decl, f"token_log_probs summed over positions differs from log_prob by {worst:g}"
        )


def check_next_token_log_probs(entry: Entry, task: Task) -> None:
    """Next-symbol distributions of a task that provides ``next_token_log_prob``:
    ``[n, length, vocab_size]``, each row's exponentials summing to one, equal to
    ``token_log_probs`` where gathered at the sequence itself."""
    decl = "provides 'next_token_log_prob'"
    if "token_log_prob" not in entry.cls.provides:
        raise fail(entry, decl, "also provide 'token_log_prob': the two must agree")
    x = task.test[:16]
    with torch.no_grad():
        full = task.next_token_log_probs(x)
        want = (*x.shape, task.vocab_size)
        if not isinstance(full, torch.Tensor) or tuple(full.shape) != want:
            shape = tuple(full.shape) if isinstance(full, torch.Tensor) else type(full).__name__
            raise fail(entry, decl, f"next_token_log_probs of {tuple(x.shape)} has shape {shape}")
        mass = full.double().logsumexp(-1)
        _agree(entry, decl, mass, torch.zeros_like(mass), "log Σ_v exp(next_token_log_probs)", "0")
        at_x = full.gather(-1, x[..., None]).squeeze(-1)
        _agree(
            entry,
            decl,
            at_x,
            task.token_log_probs(x),
            "next_token_log_probs at x",
            "token_log_probs",
        )


def check_autoregressive(entry: Entry, model: Model, task: Task) -> None:
    """The methods of `benchmark_core.Autoregressive`, each against the others."""
    decl = "provides 'autoregressive'"
    missing = [m for m in AUTOREGRESSIVE_METHODS if not callable(getattr(model, m, None))]
    if missing:
        raise fail(
            entry,
            decl,
            f"the model lacks {', '.join(missing)} of the autoregressive interface "
            "(benchmark_core.Autoregressive; subclass benchmark_core.AutoregressiveModel)",
        )
    for attr, want in (("vocab", task.vocab_size), ("length", task.length)):
        if getattr(model, attr, None) != want:
            got = getattr(model, attr, None)
            raise fail(entry, decl, f"model.{attr} is {got!r}, not the task's {want}")
    x = task.test[:32]
    n, vocab = len(x), task.vocab_size
    with torch.no_grad():
        bos = model.initial_token(n)
        if bos.shape != (n,) or bos.dtype != torch.long or not bool((bos == vocab).all()):
            raise fail(
                entry, decl, f"initial_token({n}) must be a LongTensor [{n}] of BOS = {vocab}"
            )
        logits, _ = model.step(bos, None)
        if tuple(logits.shape) != (n, vocab):
            raise fail(entry, decl, f"step() gave logits {tuple(logits.shape)}, not ({n}, {vocab})")
        tok = model.token_log_probs(x)
        if tuple(tok.shape) != tuple(x.shape):
            raise fail(
                entry, decl, f"token_log_probs gave {tuple(tok.shape)}, not {tuple(x.shape)}"
            )
        first = F.log_softmax(logits.double(), dim=1).gather(1, x[:, :1]).squeeze(1)
        _agree(entry, decl, first, tok[:, 0], "step(BOS)'s log-softmax", "token_log_probs[:, 0]")
        _agree(entry, decl, tok.sum(1), model.log_prob(x), "token_log_probs summed", "log_prob")
        fed = model.fed_log_probs(torch.cat([bos[:, None], x[:, :-1]], dim=1), x)
        _agree(entry, decl, fed, tok, "fed_log_probs with the true inputs", "token_log_probs")
        full = model.next_token_log_probs(x[:8])
        if tuple(full.shape) != (*x[:8].shape, vocab):
            raise fail(
                entry,
                decl,
                f"next_token_log_probs gave {tuple(full.shape)}, not {(*x[:8].shape, vocab)}",
            )
        at_x = full.gather(-1, x[:8, :, None]).squeeze(-1)
        _agree(entry, decl, at_x, tok[:8], "next_token_log_probs at x", "token_log_probs")
        out = model.sample_with_log_prob(16, 1.0)
        tokens = getattr(out, "tokens", None)
        if not isinstance(tokens, torch.Tensor) or tuple(tokens.shape) != (16, task.length):
            raise fail(
                entry,
                decl,
                "sample_with_log_prob(16) must return a SampleOutput of [16, length] tokens",
            )
        _agree(
            entry,
            decl,
            out.log_prob,
            model.log_prob(tokens),
            "sample_with_log_prob's log_prob",
            "log_prob",
        )
        own = getattr(model, "tempered_log_prob", None)
        if callable(own):  # a model's own full-sequence version against the step-wise one
            _agree(
                entry,
                decl,
                own(x, 0.7),
                stepwise_tempered_log_prob(model, x, 0.7),
                "tempered_log_prob(x, 0.7)",
                "the step-wise log softmax(logits / 0.7)",
            )


def _agree(
    entry: Entry, decl: str, a: torch.Tensor, b: torch.Tensor, what: str, other: str
) -> None:
    a, b = a.double(), b.double()
    if a.shape != b.shape or not torch.allclose(a, b, atol=ATOL, rtol=RTOL):
        gap = float((a - b).abs().max()) if a.shape == b.shape else float("nan")
        raise fail(entry, decl, f"{what} differs from {other} (by {gap:g})")


def check_objective_provides(entry: Entry, bench: Workbench, kind: str) -> None:
    """What an objective provides to metrics works after a few steps (``feed_eps()`` is a
    probability)."""
    task_e, model_e = bench.pair_for(entry, kind)
    task = bench.task(task_e)
    budget = smoke_budget(task_e.cls, entry.cls)
    with torch.random.fork_rng(devices=[]):
        model = build_model(model_e, task)
        objective = entry.cls()
        objective.setup(model, task, budget)
        for step in range(2):
            objective.step(
                task.train[step * budget.batch_size : (step + 1) * budget.batch_size], step
            )
    if "feed_eps" in entry.cls.provides:
        eps = objective.feed_eps()
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0.0 <= eps <= 1.0:
            raise fail(
                entry, "provides 'feed_eps'", f"feed_eps() returned {short(eps)}, not a probability"
            )


def check_vmap(entry: Entry, task: Task, *models: Model) -> None:
    """Two replicas stacked: vmapped log_prob equals each model's own; samples are per replica."""
    from benchmark_core.engine.stack import ReplicaStack

    decl = "provides 'vmap'"
    stack = ReplicaStack(models)
    x = task.test[:16]
    try:
        stacked = stack.log_prob(torch.stack([x, x])) if "log_prob" in entry.cls.provides else None
        drawn = stack.sample(8) if "sample" in entry.cls.provides else None
    except Exception as exc:  # vmap refuses many in-place and data-dependent operations
        raise fail(entry, decl, f"a method failed under torch.func.vmap: {exc}") from None
    if stacked is not None:
        with torch.no_grad():
            alone = torch.stack([m.log_prob(x) for m in models])
        if stacked.shape != alone.shape or not torch.allclose(stacked, alone, atol=1e-5, rtol=1e-5):
            raise fail(entry, decl, "log_prob under vmap differs from each replica's own log_prob")
    if drawn is not None and tuple(drawn.shape[:2]) != (2, 8):
        raise fail(
            entry, decl, f"sample(8) on 2 replicas gave shape {tuple(drawn.shape)}, not (2, 8, ...)"
        )


def check_moments(entry: Entry, model: Model, task: Task) -> None:
    decl = "provides 'moments'"
    with torch.no_grad():
        mean, cov = model.mean().double(), model.covariance().double()
        d = task.train.shape[1]
        if mean.shape != (d,) or cov.shape != (d, d):
            raise fail(
                entry,
                decl,
                f"mean() {tuple(mean.shape)} / covariance() "
                f"{tuple(cov.shape)} do not match the dimension {d}",
            )
        if not torch.allclose(cov, cov.T, atol=1e-6) or torch.linalg.eigvalsh(cov).min() < -1e-6:
            raise fail(entry, decl, "covariance() is not symmetric positive semi-definite")
        if "sample" not in entry.cls.provides and "rsample" not in entry.cls.provides:
            return
        torch.manual_seed(1)
        x = model.sample(8192).double()
    se = (torch.diagonal(cov) / len(x)).sqrt()
    if ((x.mean(0) - mean).abs() > 5 * se + 1e-3).any():
        raise fail(
            entry, decl, f"mean() is {mean.tolist()} but the samples' mean is {x.mean(0).tolist()}"
        )
    emp = torch.cov(x.T).reshape(d, d)
    if torch.linalg.matrix_norm(emp - cov) > 0.1 * torch.linalg.matrix_norm(cov) + 1e-3:
        raise fail(
            entry, decl, f"covariance() is {cov.tolist()} but the samples' is {emp.tolist()}"
        )
