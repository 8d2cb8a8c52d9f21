"""A reference objective's temperature curve on a quality–coverage frontier, and which points
lie beyond it.

The field's question (Caccia et al. 2018, "Language GANs falling short"): does any objective
beat maximum likelihood once ML's sampling temperature is tuned? Sampling at temperature T
(each conditional softmax(logits / T)) trades coverage for quality, so one trained model is a
curve, not a point. A task declares the objective to judge against
(:attr:`benchmark_core.contract.task.Task.frontier_reference`) and the value that picks that
objective's checkpoint (:attr:`~benchmark_core.contract.task.Task.frontier_select_by`); the
metrics report values at other temperatures as ``<name>@T=<T>``. Nothing here names a metric
or an objective: the caller passes them in (:class:`Reference`).

Judging a point p against the curve (both axes turned to lower-is-better; the curve is
piecewise linear between its points in T order, and its 95% half-widths are interpolated
the same way):

- **beyond**: p's pessimistic corner (mean + half-width on both axes) is better on both axes
  than some point of the curve's optimistic side (mean − half-width): better than the tuned
  reference even after the intervals;
- **behind**: p's optimistic corner is worse on both axes than some point of the curve's
  pessimistic side: the reference, tempered, beats it;
- **on**: neither, but p's mean is within the curve's reach (it dominates, or is dominated
  by, some point of the curve, or lies on it): the intervals do not separate them;
- **outside**: p's mean neither dominates nor is dominated by any point of the curve: the
  sweep of temperatures does not reach p's trade-off, so the measurement cannot say.

A missing half-width (one seed) counts as zero, and the statement says the judgement rests
on means alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark_core.reports.cells import OK, latest_runs
from benchmark_core.reports.intervals import interval95
from benchmark_core.reports.labels import natural_key

#: How a value at another temperature is named: ``<name>@T=<T>``.
TAG = "@T="
VERDICTS = ("beyond", "on", "behind", "outside")


@dataclass(frozen=True)
class Reference:
    """What a frontier is judged against.

    Attributes
    ----------
    objective : str
        The reference objective's name (its results' ``objective`` column).
    select_by : str
        The value whose best mean over seeds (at T = 1) picks the evaluated step the curve is
        drawn from; empty: each configuration's final step.
    select_direction : str
        ``"min"`` or ``"max"``: which is best for ``select_by``.
    """

    objective: str
    select_by: str = ""
    select_direction: str = "min"


@dataclass
class ReferenceCurve:
    """The reference's curve: one point per temperature at the selected step.

    Attributes
    ----------
    reference : Reference
    label, model_label : str
        The configuration drawn (the best one when the results hold several).
    step, final_step : int
        The selected evaluation step and the configuration's last one.
    steps : list of int
        The evaluated steps the selection chose among.
    selected, selected_stderr : float
        The mean over seeds of ``select_by`` at the selected step, and the mean of its
        per-cell standard errors (NaN when not recorded).
    points : pandas.DataFrame
        Columns ``T, x, xh, y, yh, n``, in T order.
    """

    reference: Reference
    label: str
    model_label: str
    step: int
    final_step: int
    steps: list[int]
    selected: float
    selected_stderr: float
    points: pd.DataFrame = field(repr=False)


def split_tag(name: str) -> tuple[str, float | None]:
    """``("nll_test", 0.7)`` for ``nll_test@T=0.7``; ``(name, None)`` for an untagged name."""
    base, sep, tag = name.partition(TAG)
    if not sep:
        return name, None
    try:
        return base, float(tag)
    except ValueError:
        return name, None


def tagged(name: str, temperature: float) -> str:
    """``name`` at T = 1, else ``name@T=<T>``."""
    return name if temperature == 1.0 else f"{name}{TAG}{temperature:g}"


def temperatures(rows: pd.DataFrame, x_metric: str, y_metric: str) -> list[float]:
    """The temperatures at which ``rows`` hold both metrics (1 for the untagged names)."""
    have = set(rows["metric"].dropna())
    temps = {1.0} if {x_metric, y_metric} <= have else set()
    for name in have:
        base, t = split_tag(name)
        if base == x_metric and t is not None and tagged(y_metric, t) in have:
            temps.add(t)
    return sorted(temps)


def curve_points(rows: pd.DataFrame, x_metric: str, y_metric: str) -> pd.DataFrame:
    """Mean and 95% half-width over cells of both metrics at each temperature, in T order.

    ``rows`` hold one configuration at one step (one cell per seed).
    """
    out = []
    wide = rows.pivot_table(index="cell_id", columns="metric", values="value")
    for t in temperatures(rows, x_metric, y_metric):
        both = wide[[tagged(x_metric, t), tagged(y_metric, t)]].dropna()
        (xm, xh, n), (ym, yh, _) = (interval95(both[c]) for c in both.columns)
        out.append((t, xm, xh, ym, yh, n))
    return pd.DataFrame(out, columns=["T", "x", "xh", "y", "yh", "n"])


def _ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    runs = latest_runs(df)
    return runs[(runs["status"] == OK) & runs["metric"].notna()]


def reference_curve(
    df: pd.DataFrame, x_metric: str, y_metric: str, reference: Reference
) -> ReferenceCurve | None:
    """The reference objective's curve in one task's rows, or None when they hold none.

    The step is the evaluated one with the best mean over seeds of ``select_by`` (ties: the
    earlier step); across several configurations of the reference objective, the best of
    those. Without ``select_by`` (or without its values), each configuration's final step,
    and the configuration whose final ``x_metric`` is best.
    """
    rows = _ok_rows(df)
    rows = rows[rows["objective"] == reference.objective]
    sign = -1.0 if reference.select_direction == "max" else 1.0
    best: tuple | None = None
    for (label, model_label), part in rows.groupby(["label", "model_label"]):
        final_step = int(part["step"].max())
        chosen = part[part["metric"] == reference.select_by] if reference.select_by else None
        if chosen is not None and len(chosen):
            per_step = chosen.groupby("step")["value"].mean()
            steps = sorted(int(s) for s in per_step.index)
            step = int(min(steps, key=lambda s: (sign * per_step[s], s)))
            score, value = sign * per_step[step], float(per_step[step])
            errs = chosen[chosen["step"] == step]["stderr"]
            stderr = float(errs.mean()) if errs.notna().any() else math.nan
        else:
            at = part[part["step"] == final_step]
            steps, step, stderr = [final_step], final_step, math.nan
            value = float(at[at["metric"] == x_metric]["value"].mean())
            score = value
        points = curve_points(part[part["step"] == step], x_metric, y_metric)
        if points.empty:
            continue
        key = (score, natural_key(str(label)))
        if best is None or key < best[0]:
            curve = ReferenceCurve(
                reference, str(label), str(model_label), step, final_step, steps, value,
                stderr, points,
            )  # fmt: skip
            best = (key, curve)
    return None if best is None else best[1]


# --- judging points --------------------------------------------------------------------------


def _interval(coef: float, rhs: float) -> tuple[float, float]:
    """The s in [0, 1] with coef * s <= rhs."""
    if abs(coef) < 1e-300:
        return (0.0, 1.0) if rhs >= 0 else (1.0, 0.0)
    bound = rhs / coef
    return (-math.inf, bound) if coef > 0 else (bound, math.inf)


def _segment_meets(a: np.ndarray, b: np.ndarray, p: np.ndarray, below: bool) -> bool:
    """Whether some point c of segment ab has p <= c on both axes (``below``), or c <= p."""
    lo, hi = 0.0, 1.0
    for k in range(2):
        # c_k = a_k + s (b_k - a_k); below: p_k <= c_k, i.e. -(b_k - a_k) s <= a_k - p_k.
        d = b[k] - a[k]
        coef, rhs = (-d, a[k] - p[k]) if below else (d, p[k] - a[k])
        s0, s1 = _interval(coef, rhs)
        lo, hi = max(lo, s0), min(hi, s1)
    return lo <= hi


def _meets(curve: np.ndarray, p: np.ndarray, below: bool) -> bool:
    """Whether p is at least as good (``below``) or as bad as some point of the polyline."""
    if len(curve) == 1:
        return bool((p <= curve[0]).all() if below else (curve[0] <= p).all())
    return any(_segment_meets(a, b, p, below) for a, b in itertools.pairwise(curve))


def judge(points: pd.DataFrame, curve: pd.DataFrame, directions: tuple[str, str]) -> list[str]:
    """Each row of ``points`` (columns ``x, xh, y, yh``) against the curve (same columns, in
    T order): ``beyond``, ``on``, ``behind`` or ``outside`` (see the module docstring)."""
    sign = np.array([1.0 if d == "min" else -1.0 for d in directions])

    c_mean = curve[["x", "y"]].to_numpy(dtype=float) * sign
    c_half = np.nan_to_num(curve[["xh", "yh"]].to_numpy(dtype=float))
    verdicts = []
    for _, r in points.iterrows():
        p = np.array([r["x"], r["y"]], dtype=float) * sign
        h = np.nan_to_num(np.array([r["xh"], r["yh"]], dtype=float))
        if np.isnan(p).any():
            verdicts.append("outside")
        elif _meets(c_mean - c_half, p + h, below=True) and not _meets(c_mean, p, below=False):
            verdicts.append("beyond")
        elif _meets(c_mean + c_half, p - h, below=False):
            verdicts.append("behind")
        elif _meets(c_mean, p, below=True) or _meets(c_mean, p, below=False):
            verdicts.append("on")
        else:
            verdicts.append("outside")
    return verdicts


def judged_points(
    df: pd.DataFrame,
    x_metric: str,
    y_metric: str,
    curve: ReferenceCurve,
    directions: Mapping[str, str],
) -> pd.DataFrame:
    """Every other configuration's points at its final step, at each temperature it has,
    judged against ``curve``; and the reference configuration's own final-step points when
    its curve comes from an earlier step.

    Returns
    -------
    pandas.DataFrame
        Columns ``label, model_label, objective, step, T, x, xh, y, yh, n, verdict``.
    """
    rows = _ok_rows(df)
    out = []
    for (label, model_label, objective), part in rows.groupby(
        ["label", "model_label", "objective"]
    ):
        is_ref = (str(label), str(model_label)) == (curve.label, curve.model_label)
        step = int(part["step"].max())
        if is_ref and step == curve.step:
            continue
        pts = curve_points(part[part["step"] == step], x_metric, y_metric)
        for r in pts.itertuples():
            out.append((str(label), str(model_label), str(objective), step, *r[1:]))
    cols = ["label", "model_label", "objective", "step", "T", "x", "xh", "y", "yh", "n"]
    frame = pd.DataFrame(out, columns=cols)
    dirs = (directions.get(x_metric, "min"), directions.get(y_metric, "min"))
    frame["verdict"] = judge(frame, curve.points, dirs) if len(frame) else []
    order = sorted(range(len(frame)), key=lambda i: natural_key(frame["label"].iloc[i]))
    return frame.iloc[order].reset_index(drop=True)


# --- what the report says --------------------------------------------------------------------


def _fmt_t(t: float) -> str:
    return f"{t:g}"


def selection_sentence(curve: ReferenceCurve, x_metric: str) -> str:
    """How the reference curve was chosen, in one sentence."""
    ref = curve.reference
    temps = ", ".join(_fmt_t(t) for t in curve.points["T"])
    what = (
        f"temperature curve (T = {temps})"
        if len(curve.points) > 1
        else f"point at T = {temps} (these metrics were not swept over temperatures)"
    )
    head = (
        f"Reference: {curve.label} ({curve.model_label})'s {what} "
        f"at step {curve.step} of {curve.final_step}"
    )
    if not ref.select_by or (len(curve.steps) <= 1 and curve.step == curve.final_step):
        why = "its final step" if not ref.select_by else f"its only evaluation with {ref.select_by}"
        return f"{head}, {why}."
    best = "lowest" if ref.select_direction == "min" else "highest"
    text = (
        f"{head}: the evaluation (of steps {', '.join(map(str, curve.steps))}) with the {best} "
        f"mean {ref.select_by} at T = 1 over seeds ({curve.selected:.4g})"
    )
    if ref.select_by.partition(TAG)[0] == x_metric:
        err = "" if math.isnan(curve.selected_stderr) else f", ±{curve.selected_stderr:.2g} here"
        text += (
            f". It is selected on the held-out test set that {x_metric} also reports, so the "
            f"curve is optimistic by about one standard error of {ref.select_by}{err}"
        )
    return text + "."


def statement(
    curve: ReferenceCurve, judged: pd.DataFrame, x_metric: str, y_metric: str
) -> list[str]:
    """The sentences a report prints under the frontier: how the curve was chosen, then
    which points lie beyond it, on it, behind it, or outside its reach."""
    name = curve.label
    lines = [selection_sentence(curve, x_metric)]
    groups: dict[str, dict[str, list[str]]] = {v: {} for v in VERDICTS}
    for r in judged.itertuples():
        where = f"{r.label}" + (f" ({r.model_label})" if r.model_label != curve.model_label else "")
        if r.label == curve.label and r.model_label == curve.model_label:
            where += f" at its final step {r.step}"
        groups[r.verdict].setdefault(where, []).append(_fmt_t(r.T))
    meaning = {
        "beyond": f"better than {name}'s curve on both {x_metric} and {y_metric}, "
        f"by more than the 95% intervals",
        "on": "within the intervals of the curve",
        "behind": f"worse on both than a point of {name}'s curve, by more than the intervals",
        "outside": "not reached by the curve's temperatures: no judgement",
    }
    for verdict in VERDICTS:
        found = [f"{where} at T = {', '.join(ts)}" for where, ts in groups[verdict].items()]
        if verdict != "beyond" and not found:
            continue
        listed = "; ".join(found) if found else "none"
        lines.append(f"Beyond {name}'s curve ({meaning[verdict]}): {listed}."
                     if verdict == "beyond"
                     else f"{verdict.capitalize()} ({meaning[verdict]}): {listed}.")  # fmt: skip
    seeds = set(judged["n"].astype(int)) | set(curve.points["n"].astype(int))
    if seeds and min(seeds) < 2:
        lines.append("One seed only somewhere: those judgements rest on means, without intervals.")
    return lines
