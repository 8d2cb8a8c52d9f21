"""Claims in HTML: the section at the top of ``gbench report``, and ``gbench claims --format
html``'s page. Every string from a plugin is escaped; the page runs no script."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from benchmark_core.contract.claim import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED
from benchmark_core.reports.claims import MARKS, ClaimReport, measured_text, summary_line

CLAIMS_CSS = """
table.claims { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }
table.claims th, table.claims td { border: 1px solid #ddd; padding: 0.25em 0.6em;
  text-align: left; vertical-align: top; }
.v-reproduced { color: #11602a; font-weight: 600; }
.v-not-reproduced { color: #a11; font-weight: 600; }
.v-inconclusive { color: #8a5a00; font-weight: 600; }
blockquote.claim { margin: 0.3em 0 0.6em 0; padding-left: 0.8em; border-left: 3px solid #ccc; }
"""
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'"
PAGE_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 78em; padding: 0 1em;
       color: #1a1a1a; line-height: 1.4; }
.muted { color: #666; } details summary { cursor: pointer; }
"""
_CLASS = {
    REPRODUCED: "v-reproduced",
    NOT_REPRODUCED: "v-not-reproduced",
    INCONCLUSIVE: "v-inconclusive",
}


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _outcome(outcome: str) -> str:
    return f'<span class="{_CLASS[outcome]}">{MARKS[outcome]} {_h(outcome)}</span>'


def _details(r: ClaimReport) -> str:
    rows = "".join(
        f"<tr><td>{_h(e.what)}</td><td>{_h(measured_text(e))}</td><td>{e.measured.n}</td>"
        f"<td>{_h(e.expected)}</td><td>{_outcome(e.outcome)}</td></tr>"
        for e in r.verdict.evidence
    )
    table = (
        '<table class="claims"><thead><tr><th>figure</th><th>measured [95% interval]</th>'
        f"<th>seeds</th><th>expected</th><th>outcome</th></tr></thead><tbody>{rows}</tbody>"
        "</table>"
        if rows
        else ""
    )
    notes = "".join(f"<li>{_h(n)}</li>" for n in r.verdict.notes)
    return (
        f"<details><summary><code>{_h(r.name)}</code>: {_outcome(r.verdict.outcome)}</summary>"
        f'<blockquote class="claim">{_h(r.statement)}</blockquote>'
        f'<p class="muted">Source: {_h(r.source)}. Science: {_h(r.science or "not given")}. '
        f"Plugin: {_h(r.plugin)}. Budget: {_h(r.budget)}. Cells: {r.cells_ok} of {r.cells} ok."
        f'</p><p class="muted">Tolerances: {_h(r.tolerances or "not stated")}</p>'
        f"{table}{'<ul>' + notes + '</ul>' if notes else ''}</details>"
    )


def claims_section(reports: Sequence[ClaimReport], notes: Sequence[str] = ()) -> str:
    """An HTML section: the verdict table, then each claim's figures (folded); empty when
    there is nothing to show."""
    if not reports and not notes:
        return ""
    rows = "".join(
        f"<tr><td><code>{_h(r.name)}</code></td><td>{_h(r.description)}</td>"
        f"<td>{_outcome(r.verdict.outcome)}</td><td>{_h(r.budget)}</td>"
        f"<td>{_h(r.source)}</td></tr>"
        for r in reports
    )
    # The section carries its own style, so that any page can hold it as it is.
    parts = [f"<style>{CLAIMS_CSS}</style>", "<h2>Claims</h2>"]
    if reports:
        parts += [
            f"<p>{_h(summary_line(reports))}.</p>",
            '<table class="claims"><thead><tr><th>claim</th><th>what it says</th>'
            f"<th>verdict</th><th>budget</th><th>source</th></tr></thead><tbody>{rows}</tbody>"
            "</table>",
            '<p class="muted">Each figure: the mean over seeds of the cells\' final values with '
            "its 95% Student-t interval, against the band the claim predicts; a claim is "
            "reproduced only when every figure's interval lies inside its band.</p>",
            *(_details(r) for r in reports),
        ]
    if notes:
        parts.append('<ul class="muted">' + "".join(f"<li>{_h(n)}</li>" for n in notes) + "</ul>")
    return "\n".join(parts)


def claims_page(reports: Sequence[ClaimReport], title: str = "gbench claims") -> str:
    """A self-contained page holding only the claims section (no script, nothing loaded)."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{PAGE_CSP}">\n'
        f"<title>{_h(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n"
        f"<body>\n<h1>{_h(title)}</h1>\n{claims_section(reports)}\n</body>\n</html>\n"
    )
