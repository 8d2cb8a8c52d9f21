"""The verdict table of ``gbench claims``: Markdown and JSON (HTML: :mod:`.claims_html`)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmark_core.contract.claim import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    OUTCOMES,
    REPRODUCED,
    Evidence,
    Verdict,
)

MARKS = {REPRODUCED: "✔", NOT_REPRODUCED: "✘", INCONCLUSIVE: "?"}


@dataclass(frozen=True)
class ClaimReport:
    """One checked claim as the reports show it."""

    name: str
    description: str
    statement: str
    source: str
    science: str
    tolerances: str
    plugin: str
    budget: str
    verdict: Verdict
    cells: int
    cells_ok: int


def fmt(x: float) -> str:
    """A number in four significant digits; infinities as ∞."""
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.4g}"


def measured_text(e: Evidence) -> str:
    """``2.142 [2.128, 2.156]``; one seed shows no interval; none shows ``no value``."""
    m = e.measured
    if m.n == 0:
        return "no value"
    if m.n == 1:
        return f"{fmt(m.mean)} (one seed: no interval)"
    return f"{fmt(m.mean)} [{fmt(m.low)}, {fmt(m.high)}]"


def deciding(report: ClaimReport) -> list[Evidence]:
    """The figures that decide the verdict: the refuting ones, else the undecided ones, else
    all of them."""
    ev = report.verdict.evidence
    for outcome in (NOT_REPRODUCED, INCONCLUSIVE):
        hits = [e for e in ev if e.outcome == outcome]
        if hits and report.verdict.outcome == outcome:
            return hits
    return list(ev)


def summary_line(reports: Sequence[ClaimReport]) -> str:
    """``5 claims: 3 reproduced, 1 not reproduced, 1 inconclusive``."""
    counts = Counter(r.verdict.outcome for r in reports)
    parts = [f"{counts[o]} {o}" for o in OUTCOMES if counts[o]]
    return f"{len(reports)} claim{'s' if len(reports) != 1 else ''}: {', '.join(parts) or 'none'}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _why(report: ClaimReport) -> str:
    ev = report.verdict.evidence
    if not ev:
        return _cell("; ".join(report.verdict.notes) or "no evidence")
    agree = sum(e.outcome == REPRODUCED for e in ev)
    if report.verdict.outcome == REPRODUCED:
        return f"{agree} of {len(ev)} figures as claimed"
    shown = deciding(report)[:2]
    text = "; ".join(f"{e.what}: {measured_text(e)}, expected {e.expected}" for e in shown)
    more = len(deciding(report)) - len(shown)
    return _cell(text + (f"; and {more} more" if more > 0 else ""))


def to_markdown(reports: Sequence[ClaimReport], heading: str = "Claims") -> str:
    """The verdict table, then each claim's figures."""
    lines = [f"# {heading}", "", summary_line(reports) + ".", ""]
    lines += [
        "| claim | verdict | deciding figures | source |",
        "| --- | --- | --- | --- |",
    ]
    for r in reports:
        verdict = f"{MARKS[r.verdict.outcome]} **{r.verdict.outcome}**"
        lines.append(
            f"| `{r.name}`: {_cell(r.description)} | {verdict} | {_why(r)} | {_cell(r.source)} |"
        )
    lines += [
        "",
        "Measured: the mean over seeds of each cell's final value, with its 95% Student-t "
        "interval (t(0.975, n−1)·sd/√n; differences: Welch). A figure is as claimed when its "
        "interval lies inside the expected band, refuted when it lies wholly outside, "
        "undecided otherwise; a claim is reproduced only when every figure is as claimed.",
    ]
    for r in reports:
        lines += ["", f"## `{r.name}`: {r.verdict.outcome}", "", f"> {r.statement}", ""]
        lines.append(
            f"Source: {r.source}. Science: {r.science or 'not given'}. Plugin: {r.plugin}. "
            f"Budget: {r.budget}. Cells: {r.cells_ok} of {r.cells} ok."
        )
        if r.tolerances:
            lines += ["", f"Tolerances: {r.tolerances}"]
        if r.verdict.evidence:
            lines += [
                "",
                "| figure | measured [95% interval] | seeds | expected | outcome |",
                "| --- | --- | ---: | --- | --- |",
            ]
            for e in r.verdict.evidence:
                lines.append(
                    f"| {_cell(e.what)} | {measured_text(e)} | {e.measured.n} | "
                    f"{_cell(e.expected)} | {MARKS[e.outcome]} {e.outcome} |"
                )
        for note in r.verdict.notes:
            lines += ["", f"- {_cell(note)}"]
    return "\n".join(lines) + "\n"


def to_json(reports: Sequence[ClaimReport], extra: dict[str, Any] | None = None) -> str:
    """Every claim, its verdict and its figures as JSON (infinite bounds as null)."""
    data = {
        **(extra or {}),
        "summary": dict(Counter(r.verdict.outcome for r in reports)),
        "claims": [
            {
                "name": r.name,
                "description": r.description,
                "statement": r.statement,
                "source": r.source,
                "science": r.science,
                "tolerances": r.tolerances,
                "plugin": r.plugin,
                "budget": r.budget,
                "outcome": r.verdict.outcome,
                "cells": r.cells,
                "cells_ok": r.cells_ok,
                "evidence": [e.as_dict() for e in r.verdict.evidence],
                "notes": list(r.verdict.notes),
            }
            for r in reports
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
