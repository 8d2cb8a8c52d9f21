"""Claim: a statement of a paper, the cells it needs, and a check that returns a verdict.

A claim is checked against the *final* values of its cells (the last evaluation of every cell
that ended ``ok``), seed by seed. Every figure behind a verdict is an `Evidence`: a measured
`Interval` (the mean over seeds with its 95% Student-t interval) against the band the claim
predicts for it. The verdict follows from the evidence alone, never by default:

- **reproduced** when every measured interval lies inside its predicted band;
- **not reproduced** when some measured interval lies wholly outside its band;
- **inconclusive** otherwise: an interval straddles the edge of its band, a value is missing
  (a cell failed or was never run), or there is one seed only (no interval at all).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
OUTCOMES = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)

#: Columns of a claim's results table (labels as the claim's own selections write them).
RESULT_COLUMNS = ("task", "model", "objective", "seed", "metric", "value")


@dataclass(frozen=True)
class ClaimGrid:
    """Cells a claim needs, written as ``gbench run`` selections.

    Attributes
    ----------
    objectives, tasks, metrics : str
        Selections as ``--objectives`` etc. take them (``my_objective[alpha=[0.1,0.5]]``).
    models : str or None
        A model selection; None means each task's default models.
    seeds : str
        A count (``"3"``: seeds 0, 1, 2) or a comma list (``"0,4,7"``).
    budget : str or None
        A run profile; None means the one ``gbench claims --budget`` names.
    """

    objectives: str
    tasks: str
    models: str | None
    metrics: str
    seeds: str = "3"
    budget: str | None = None


@dataclass(frozen=True)
class Interval:
    """A mean over seeds and its two-sided interval (Student t with n − 1 degrees of freedom).

    One value gives an infinite interval (nothing to say how far the next seed would land);
    no value gives NaN throughout.
    """

    mean: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float], level: float = 0.95) -> Interval:
        """The interval of the mean of ``values`` (NaNs dropped)."""
        xs = [float(v) for v in values if not math.isnan(float(v))]
        n = len(xs)
        if n == 0:
            return cls(math.nan, math.nan, math.nan, 0)
        mean = sum(xs) / n
        if n == 1:
            return cls(mean, -math.inf, math.inf, 1)
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
        half = _t_quantile(level, n - 1) * sd / math.sqrt(n)
        return cls(mean, mean - half, mean + half, n)

    @classmethod
    def paired(
        cls, a: Mapping[int, float], b: Mapping[int, float], level: float = 0.95
    ) -> Interval:
        """The interval of the mean of a[s] − b[s] over the seeds s both have: for cells that
        share their seed's start (a fine-tune and the model it started from), where the
        seed-to-seed spread of the start cancels."""
        return cls.of([a[s] - b[s] for s in sorted(set(a) & set(b))], level)

    @classmethod
    def difference(cls, a: Iterable[float], b: Iterable[float], level: float = 0.95) -> Interval:
        """The interval of mean(a) − mean(b), Welch's (unequal variances); ``n`` is the smaller
        sample's size."""
        xa = [float(v) for v in a if not math.isnan(float(v))]
        xb = [float(v) for v in b if not math.isnan(float(v))]
        if not xa or not xb:
            return cls(math.nan, math.nan, math.nan, 0)
        ia, ib = cls.of(xa), cls.of(xb)
        diff, n = ia.mean - ib.mean, min(len(xa), len(xb))
        if n < 2:
            return cls(diff, -math.inf, math.inf, n)
        va = sum((x - ia.mean) ** 2 for x in xa) / (len(xa) - 1) / len(xa)
        vb = sum((x - ib.mean) ** 2 for x in xb) / (len(xb) - 1) / len(xb)
        if va + vb == 0:
            return cls(diff, diff, diff, n)
        df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
        half = _t_quantile(level, df) * math.sqrt(va + vb)
        return cls(diff, diff - half, diff + half, n)

    def scaled(self, factor: float) -> Interval:
        """The interval of ``factor`` times the quantity (factor > 0)."""
        return Interval(self.mean * factor, self.low * factor, self.high * factor, self.n)


def _t_quantile(level: float, df: float) -> float:
    from scipy.stats import t  # imported on use: the contract stays cheap to import

    return float(t.ppf(0.5 + level / 2, df))


@dataclass(frozen=True)
class Evidence:
    """One figure behind a verdict: a measured interval against the band the claim predicts.

    Attributes
    ----------
    what : str
        What was measured, e.g. ``s² of my_objective on my_task``.
    measured : Interval
        The mean over seeds with its 95% interval.
    low, high : float
        The predicted band (either side may be infinite: ``> 0`` is ``(0, inf)``).
    expected : str
        The prediction in words, e.g. ``2.125 ± 0.128`` or ``> 0``.
    outcome : str
        ``reproduced``, ``not reproduced`` or ``inconclusive`` (see the module's rule).
    """

    what: str
    measured: Interval
    low: float
    high: float
    expected: str
    outcome: str

    @classmethod
    def band(
        cls, what: str, measured: Interval, low: float, high: float, expected: str = ""
    ) -> Evidence:
        """Evidence that ``measured`` lies in ``[low, high]``."""
        m = measured
        if m.n == 0 or math.isnan(m.mean):
            outcome = INCONCLUSIVE
        elif low <= m.low and m.high <= high:
            outcome = REPRODUCED
        elif m.high < low or m.low > high:
            outcome = NOT_REPRODUCED
        else:
            outcome = INCONCLUSIVE
        return cls(what, measured, low, high, expected or f"in [{low:.4g}, {high:.4g}]", outcome)

    @classmethod
    def near(cls, what: str, measured: Interval, expected: float, tolerance: float) -> Evidence:
        """Evidence that ``measured`` is within ``tolerance`` of ``expected``."""
        return cls.band(
            what,
            measured,
            expected - tolerance,
            expected + tolerance,
            f"{expected:.4g} ± {tolerance:.3g}",
        )

    @classmethod
    def above(cls, what: str, measured: Interval, bound: float = 0.0) -> Evidence:
        """Evidence that ``measured`` exceeds ``bound`` (for an ordering: a difference > 0)."""
        return cls.band(what, measured, bound, math.inf, f"> {bound:.4g}")

    @classmethod
    def below(cls, what: str, measured: Interval, bound: float = 0.0) -> Evidence:
        """Evidence that ``measured`` stays under ``bound``."""
        return cls.band(what, measured, -math.inf, bound, f"< {bound:.4g}")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (infinite bounds as None)."""

        def num(x: float) -> float | None:
            return None if math.isnan(x) or math.isinf(x) else x

        m = self.measured
        return {
            "what": self.what,
            "measured": num(m.mean),
            "low": num(m.low),
            "high": num(m.high),
            "n": m.n,
            "expected": self.expected,
            "band": [num(self.low), num(self.high)],
            "outcome": self.outcome,
        }


def combine(evidence: Sequence[Evidence]) -> str:
    """The verdict of a conjunction: refuted by any refuting figure, reproduced only when every
    figure is; no evidence at all is inconclusive."""
    outcomes = {e.outcome for e in evidence}
    if NOT_REPRODUCED in outcomes:
        return NOT_REPRODUCED
    if not evidence or outcomes != {REPRODUCED}:
        return INCONCLUSIVE
    return REPRODUCED


@dataclass(frozen=True)
class Verdict:
    """A claim's outcome and the figures behind it.

    Attributes
    ----------
    outcome : str
        ``reproduced``, ``not reproduced`` or ``inconclusive``.
    evidence : tuple of Evidence
        Every figure the check looked at.
    notes : tuple of str
        What else the reader should know (cells that failed or are missing, caveats).
    """

    outcome: str
    evidence: tuple[Evidence, ...] = ()
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, evidence: Iterable[Evidence], notes: Iterable[str] = ()) -> Verdict:
        """The verdict that the evidence decides (see `combine`)."""
        evidence = tuple(evidence)
        return cls(combine(evidence), evidence, tuple(notes))

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {', '.join(OUTCOMES)}")


@dataclass(frozen=True)
class ClaimResults:
    """A claim's results, read-only: one row per (cell, metric) at the cell's final step.

    ``frame`` has the columns ``task, model, objective, seed, metric, value``, the first three
    being labels as the claim's own selections write them (``my_objective[alpha=0.5]``,
    ``my_task[dim=3]``). ``missing`` names the cells that did not end ``ok``.
    """

    frame: Any  # a pandas DataFrame; typed loosely so that importing the contract stays cheap
    missing: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_rows(
        cls, rows: Iterable[Mapping[str, Any]], missing: Iterable[str] = ()
    ) -> ClaimResults:
        """A results table from plain rows (a synthetic table in a test, say)."""
        import pandas as pd

        frame = pd.DataFrame(list(rows), columns=list(RESULT_COLUMNS))
        return cls(frame, tuple(missing))

    def __post_init__(self) -> None:
        absent = [c for c in RESULT_COLUMNS if c not in self.frame.columns]
        if absent:
            raise ValueError(f"a claim's results need the columns {', '.join(absent)}")
        object.__setattr__(self, "frame", self.frame[list(RESULT_COLUMNS)].copy())

    def missing_notes(self) -> list[str]:
        """One note per cell that did not end ok, for `Verdict.of`'s notes."""
        return [f"no result from {cell}" for cell in self.missing]

    def values(
        self,
        metric: str,
        objective: str | None = None,
        task: str | None = None,
        model: str | None = None,
    ) -> list[float]:
        """The final value of ``metric`` in each matching cell, in seed order."""
        df = self._matching(metric, objective, task, model)
        return [float(v) for v in df.sort_values("seed")["value"]]

    def by_seed(
        self,
        metric: str,
        objective: str | None = None,
        task: str | None = None,
        model: str | None = None,
    ) -> dict[int, float]:
        """The final value of ``metric`` in each matching cell, by seed."""
        df = self._matching(metric, objective, task, model)
        return {int(s): float(v) for s, v in zip(df["seed"], df["value"], strict=True)}

    def _matching(
        self, metric: str, objective: str | None, task: str | None, model: str | None
    ) -> Any:
        df = self.frame[self.frame["metric"] == metric]
        for column, label in (("objective", objective), ("task", task), ("model", model)):
            if label is not None:
                df = df[df[column] == label]
        return df

    def interval(
        self,
        metric: str,
        objective: str | None = None,
        task: str | None = None,
        model: str | None = None,
    ) -> Interval:
        """The mean of `values` over seeds with its 95% interval."""
        return Interval.of(self.values(metric, objective, task, model))


class Claim:
    """A claim of a paper, checked against real runs.

    Like a task or an objective it is a class with a ``name`` and a one-line ``description``,
    registered by a plugin (the ``register_claims(register)`` hook); unlike them it has no
    parameters: a different prediction is a different claim. ``gbench claims NAME`` runs the
    cells of `grids` (reusing any already in the results folder), reads their final values
    and calls `check`.

    Attributes
    ----------
    name : str
        The name users select the claim by (``gbench claims NAME``).
    description : str
        A short title for tables.
    statement : str
        The claim in one sentence.
    source : str
        Where it comes from: paper and section.
    science : str
        Where the mathematics it checks is written down (a document and section).
    tolerances : str
        Where each tolerance comes from: the estimator's error, the training set's sampling
        error, what the claim must tell apart. Stated, not tuned to pass.
    grids : tuple of ClaimGrid
        The cells it needs.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: Always empty: the registry checks every kind's parameters, and a claim has none.
    param_spec: ClassVar[dict[str, Any]] = {}
    statement: ClassVar[str] = ""
    source: ClassVar[str] = ""
    science: ClassVar[str] = ""
    tolerances: ClassVar[str] = ""
    grids: ClassVar[tuple[ClaimGrid, ...]] = ()

    def check(self, results: ClaimResults) -> Verdict:
        """Decide the claim from its final values; build the verdict with `Verdict.of`."""
        raise NotImplementedError
