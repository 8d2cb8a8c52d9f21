"""Means, 95% intervals over seeds, and ranks that only separate what the intervals separate.

A leaderboard that orders 0.06 ± 0.12 before 0.06 ± 0.12 ranks noise. Here a configuration
ranks ahead of another only when its whole interval lies on the better side of the other's:
rows whose intervals overlap share the ranks between them, shown as a range (``1–3``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats


def interval95(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean and 95% Student-t interval half-width of per-seed values.

    Parameters
    ----------
    values : iterable of float
        One value per seed; NaNs are ignored.

    Returns
    -------
    (float, float, int)
        ``(mean, half_width, n)`` with ``half_width = t(0.975, n - 1) * sd / sqrt(n)`` and
        ``sd`` the sample standard deviation; the half-width is NaN when ``n < 2`` (one seed
        says nothing about seed-to-seed spread) and the mean is NaN when ``n == 0``.
    """
    x = np.asarray([v for v in values if not pd.isna(v)], dtype=float)
    n = len(x)
    if n == 0:
        return float("nan"), float("nan"), 0
    if n == 1:
        return float(x[0]), float("nan"), 1
    half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return float(x.mean()), float(half), n


def round_sig(x: float, digits: int = 12) -> float:
    """``x`` to ``digits`` significant figures, so that 3.2 and 3.1999999999999997 tie."""
    return float(f"{x:.{digits}g}") if np.isfinite(x) else x


def interval_ranks(
    means: pd.Series, halves: pd.Series, direction: str
) -> tuple[pd.Series, pd.Series]:
    """Rank rows so that only non-overlapping 95% intervals separate them.

    Parameters
    ----------
    means, halves : pandas.Series
        Each row's mean and 95% half-width (same index). A NaN half-width (one seed) is an
        unknown interval, which separates the row from no other.
    direction : {"min", "max"}
        Whether lower or higher is better.

    Returns
    -------
    (pandas.Series, pandas.Series)
        ``best`` and ``worst``: the best and worst rank each row's interval allows. ``best``
        is 1 plus the number of rows whose whole interval is better than this row's whole
        interval; ``worst`` is the number of rows with a mean less the number this row is
        clearly better than. A row clearly ahead of every other has ``best == worst == 1``;
        rows with NaN means get NaN.
    """
    sign = 1.0 if direction == "min" else -1.0
    m = means.to_numpy(dtype=float) * sign
    h = np.where(np.isfinite(halves.to_numpy(dtype=float)), halves.to_numpy(dtype=float), np.inf)
    have = np.isfinite(m)
    # Rounded bounds, so that equal intervals computed in a different order do not separate.
    lower = np.array([round_sig(v) for v in m - h])
    upper = np.array([round_sig(v) for v in m + h])
    # better[i, j]: row i's interval lies wholly on the better (lower, after the sign) side.
    better = (upper[:, None] < lower[None, :]) & have[:, None] & have[None, :]
    n = int(have.sum())
    best = np.where(have, 1 + better.sum(axis=0), np.nan)
    worst = np.where(have, n - better.sum(axis=1), np.nan)
    return pd.Series(best, index=means.index), pd.Series(worst, index=means.index)
