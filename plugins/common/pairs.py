"""Exact quantities for the pairs task: length-2 sequences over K symbols (Huszár 2015, §4.1).

A task is a joint table ``P[i, j] = P(x1 = i, x2 = j)``, a K x K array of non-negative
numbers summing to one. Conditional tables ``C[i, j] = Q(x2 = j | x1 = i)`` have rows that
sum to one. Everything is enumerable, so every quantity here is exact (in nats).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

_SUM_TOL = 1e-6


def dirichlet_table(
    k: int,
    seed: int = 0,
    concentration: float = 1.0,
    dependence: float = 0.8,
    noise: float = 0.1,
) -> np.ndarray:
    """A random joint table P(x1, x2) with tunable dependence between x1 and x2.

    ``P = (1 - dependence) * outer(p1, p2) + dependence * D``, where p1 and p2 are drawn
    from a symmetric Dirichlet(concentration) and D is concentrated near a random
    permutation s: ``D[i] = p1[i] * ((1 - noise) * onehot(s(i)) + noise * r_i)``, with each
    r_i ~ Dirichlet(concentration). Both parts have first marginal p1. dependence = 0 gives
    an independent table (mutual information exactly 0); dependence = 1 makes x2 nearly a
    function of x1. Every entry is > 0 for noise > 0 or dependence < 1, so every KL against
    the task is finite.

    Parameters
    ----------
    k : int
        Number of symbols K (>= 2).
    seed : int
        Seed of the numpy generator; the same arguments always give the same table.
    concentration : float
        Dirichlet concentration (> 0): small values give peaked marginals.
    dependence : float
        In [0, 1].
    noise : float
        In [0, 1]: how far each row of D is from a point mass.

    Returns
    -------
    np.ndarray [k, k], float64
    """
    if k < 2:
        raise ValueError(f"k must be >= 2 symbols, got {k}")
    if not concentration > 0:
        raise ValueError(f"concentration must be > 0, got {concentration}")
    if not 0.0 <= dependence <= 1.0:
        raise ValueError(f"dependence must lie in [0, 1], got {dependence}")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must lie in [0, 1], got {noise}")
    rng = np.random.default_rng(seed)
    alpha = np.full(k, float(concentration))
    p1 = rng.dirichlet(alpha)
    p2 = rng.dirichlet(alpha)
    perm = rng.permutation(k)
    rows = rng.dirichlet(alpha, size=k)
    dependent = (1.0 - noise) * np.eye(k)[perm] + noise * rows
    joint = (1.0 - dependence) * np.outer(p1, p2) + dependence * p1[:, None] * dependent
    return joint / joint.sum()


def validate_table(array: object) -> np.ndarray:
    """Check that `array` is a joint probability table and return it as float64.

    Raises
    ------
    ValueError
        Saying what is wrong (not numeric, not 2-D, not square, fewer than 2 symbols, NaN or
        infinite entries, negative entries, total not 1) and how to fix it.
    """
    try:
        table = np.array(array, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"the table could not be read as a numeric array ({exc}); give a K x K nested "
            "list of numbers, every row with K entries"
        ) from exc
    if table.ndim != 2:
        raise ValueError(
            f"the table must be 2-D (K x K, rows x1, columns x2), got {table.ndim} dimension(s)"
            f" with shape {table.shape}; give one row per value of x1"
        )
    rows, cols = table.shape
    if rows != cols:
        raise ValueError(
            f"the table must be square, got shape {table.shape} ({rows} rows, {cols} columns);"
            " x1 and x2 range over the same K symbols, so give K rows of K entries"
        )
    if rows < 2:
        raise ValueError(f"the table needs at least 2 symbols, got shape {table.shape}")
    for bad, what in ((np.isnan(table), "NaN"), (np.isinf(table), "infinite")):
        if bad.any():
            raise ValueError(
                f"the table has {what} entries at index {_positions(bad)}; every entry must be "
                "a finite probability"
            )
    negative = table < 0
    if negative.any():
        where = _positions(negative)
        first = tuple(int(i) for i in np.argwhere(negative)[0])
        raise ValueError(
            f"the table has negative entries at index {where} (e.g. P{first} = "
            f"{table[first]:.6g}); probabilities must be >= 0"
        )
    total = float(table.sum())
    if not math.isclose(total, 1.0, rel_tol=0.0, abs_tol=_SUM_TOL):
        raise ValueError(
            f"the table sums to {total:.10g}, not 1 (tolerance {_SUM_TOL:g}); divide every "
            f"entry by {total:.10g} to normalise it"
        )
    return table


def _positions(mask: np.ndarray, limit: int = 5) -> str:
    """The first `limit` (row, column) indices where mask is true, as text."""
    hits = [tuple(int(i) for i in ij) for ij in np.argwhere(mask)]
    text = ", ".join(str(ij) for ij in hits[:limit])
    return text + (f" and {len(hits) - limit} more" if len(hits) > limit else "")


#: The largest table file read (K is at most 1,000: a million numbers in a few MB of JSON).
MAX_TABLE_BYTES = 64 * 2**20


def load_table(path: str | Path) -> np.ndarray:
    """Read and validate a joint table stored as a JSON array of K rows of K numbers.

    Raises
    ------
    FileNotFoundError
        When `path` does not exist.
    ValueError
        When the file is not valid JSON, is not a nested array, or fails `validate_table`;
        the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pairs table file {str(path)!r} does not exist (or is not a file); give the "
            "path of a JSON file holding a K x K array, e.g. [[0.4, 0.1], [0.1, 0.4]]"
        )
    if path.stat().st_size > MAX_TABLE_BYTES:
        raise ValueError(
            f"{path}: {path.stat().st_size:,} bytes is too large for a pairs table "
            f"(at most {MAX_TABLE_BYTES:,}); a K x K table with K <= 1,000 is far smaller"
        )
    try:
        data = json.loads(path.read_text())
    except RecursionError:
        raise ValueError(
            f"{path}: the JSON nests too deeply; expected a K x K array such as "
            "[[0.4, 0.1], [0.1, 0.4]]"
        ) from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "expected a K x K array such as [[0.4, 0.1], [0.1, 0.4]]"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file; expected JSON") from exc
    if not isinstance(data, list):
        raise ValueError(
            f"{path}: expected a JSON array of K rows, got a JSON {type(data).__name__}"
        )
    # numpy would read true/false as 1/0 and numeric strings as numbers: a table holds numbers.
    flat = [x for row in data if isinstance(row, list) for x in row]
    odd = next((x for x in flat if isinstance(x, bool) or not isinstance(x, int | float)), None)
    if odd is not None:
        raise ValueError(
            f"{path}: every entry must be a JSON number, not {json.dumps(odd)[:40]}; give a "
            "K x K nested list of probabilities such as [[0.4, 0.1], [0.1, 0.4]]"
        )
    try:
        return validate_table(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def marginals(joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(x1) and P(x2) of a joint table."""
    joint = np.asarray(joint, dtype=np.float64)
    return joint.sum(axis=1), joint.sum(axis=0)


def mutual_information(joint: np.ndarray) -> float:
    """I(x1; x2) in nats, with 0 log 0 = 0."""
    joint = np.asarray(joint, dtype=np.float64)
    p1, p2 = marginals(joint)
    outer = np.outer(p1, p2)
    mask = joint > 0
    return float(max(0.0, np.sum(joint[mask] * np.log(joint[mask] / outer[mask]))))


def conditional(joint: np.ndarray) -> np.ndarray:
    """Q(x2 | x1) as a K x K table (row i is the distribution of x2 given x1 = i).

    A row with P(x1 = i) = 0 is undefined; it is set to the marginal P(x2), which carries
    zero weight in every P(x1)-weighted quantity.
    """
    joint = np.asarray(joint, dtype=np.float64)
    p1, p2 = marginals(joint)
    cond = np.tile(p2 / p2.sum(), (joint.shape[0], 1))
    seen = p1 > 0
    cond[seen] = joint[seen] / p1[seen, None]
    return cond


def joint_from_conditional(p1: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """The joint table P(x1) * Q(x2 | x1)."""
    return np.asarray(p1, dtype=np.float64)[:, None] * np.asarray(cond, dtype=np.float64)


def ss_fixed_point(joint: np.ndarray, eps: float) -> np.ndarray:
    """The conditional that scheduled sampling converges to for a tabular model.

    With keep-probability `eps` (eps = 1 is teacher forcing) the expected SS loss is
    minimised by ``Q(x2 | x1 = z) = eps * P(x2 | z) + (1 - eps) * P(x2)`` (and
    Q(x1) = P(x1)); at eps = 0 x2 no longer depends on x1.

    Returns
    -------
    np.ndarray [K, K]
        The conditional table Q(x2 | x1); see `joint_from_conditional` for the joint.
    """
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must lie in [0, 1], got {eps}")
    _, p2 = marginals(joint)
    return eps * conditional(joint) + (1.0 - eps) * p2[None, :]


def total_variation(
    cond_a: np.ndarray, cond_b: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Weighted mean over x1 of the total variation between conditional rows.

    ``sum_i w_i * 0.5 * sum_j |A[i, j] - B[i, j]|`` with w = P(x1) in gbench's diagnostic
    (then it is the TV between the joints P(x1) A and P(x1) B); uniform weights when
    `weights` is None. Lies in [0, 1].
    """
    a = np.asarray(cond_a, dtype=np.float64)
    b = np.asarray(cond_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"need two conditional tables of the same 2-D shape, got {a.shape} and {b.shape}"
        )
    w = np.full(a.shape[0], 1.0 / a.shape[0]) if weights is None else np.asarray(weights, float)
    if w.shape != (a.shape[0],):
        raise ValueError(f"weights must have shape ({a.shape[0]},), got {w.shape}")
    w = w / w.sum()
    return float(np.sum(w * 0.5 * np.abs(a - b).sum(axis=1)))


def kl(p_joint: np.ndarray, q_joint: np.ndarray) -> float:
    """KL[P || Q] in nats, exact: sum of p log(p / q) over p > 0; inf where q = 0 < p."""
    p = np.asarray(p_joint, dtype=np.float64)
    q = np.asarray(q_joint, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"shapes differ: {p.shape} and {q.shape}")
    mask = p > 0
    if np.any(q[mask] <= 0):
        return math.inf
    return float(max(0.0, np.sum(p[mask] * (np.log(p[mask]) - np.log(q[mask])))))
