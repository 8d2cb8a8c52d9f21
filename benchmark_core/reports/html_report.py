"""One self-contained HTML page: claims, headline figures, leaderboards, figures, environment.

A reader sees first what they came for: the verdicts on claims (when the caller has some), the
headline figures, then one compact table per task with its headline metrics, each with the
full table one click away (``<details>``), then the other figures, the environment, and the
skipped and failed cells.

The page loads nothing: CSS is inline, figures are ``data:`` URIs, there is no script, and a
Content-Security-Policy forbids any (so a string that escaped escaping still could not run).
Figures go in ``<img>`` elements rather than as inline ``<svg>`` markup, because a browser
never runs scripts inside an image, whatever text a plugin put into a figure.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import pandas as pd
from matplotlib.figure import Figure

from benchmark_core.reports.formatting import INTERVAL_NOTE, iter_tasks, shown_metrics
from benchmark_core.reports.formatting_html import LEADERBOARD_CSS, problems_html, task_table
from benchmark_core.reports.leaderboard import latest_runs, leaderboard, problem_cells
from benchmark_core.reports.plots import REPRODUCIBLE

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 78em; padding: 0 1em; color: #1a1a1a; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid
#ddd; } h3 { font-size: 1.05em; margin-bottom: 0.3em; }
figure { margin: 1em 0 2em; } figure img { width: 100%; max-width: 60em; height: auto; }
figcaption { font-size: 0.9em; color: #444; }
table.kv td:first-child { color: #444; padding-right: 1.5em; }
pre { white-space: pre-wrap; font-size: 0.85em; background: #f7f7f7; padding: 0.5em; }
details summary { cursor: pointer; }
details.full { margin: -1em 0 1.5em; } details.full > summary { color: #444; font-size: 0.9em; }
.muted { color: #666; }
"""
#: Marks the place of the claims section when the caller has none to show.
CLAIMS_PLACE = "<!-- gbench:claims (verdicts on the results' claims go here) -->"
#: Columns whose distinct values say what produced the results.
PROVENANCE = ("gbench_version", "torch_version", "device", "budget")
ROLES = ("task", "model", "objective", "metric")


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def figure_data_uri(fig: Figure, image_format: str = "svg", dpi: int = 150) -> str:
    """Encode a figure as a ``data:`` URI.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    image_format : {"svg", "png"}
        SVG is sharp at any zoom; PNG is smaller for figures with many points.
    dpi : int
        Resolution of a PNG.

    Returns
    -------
    str
        ``data:image/svg+xml;base64,...`` or ``data:image/png;base64,...``.
    """
    mime = {"svg": "image/svg+xml", "png": "image/png"}.get(image_format)
    if mime is None:
        raise ValueError(f"image_format must be 'svg' or 'png', not {image_format!r}")
    buf = io.BytesIO()
    metadata = {"Date": None} if image_format == "svg" else {"Software": None}
    with mpl.rc_context(REPRODUCIBLE):
        fig.savefig(buf, format=image_format, dpi=dpi, metadata=metadata)
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _value_html(value: Any) -> str:
    if isinstance(value, Mapping):
        rows = "".join(
            f"<tr><td>{_h(k)}</td><td>{_value_html(v)}</td></tr>" for k, v in value.items()
        )
        return f'<table class="kv">{rows}</table>'
    if isinstance(value, list | tuple):
        return ", ".join(_value_html(v) for v in value) or "–"
    return _h(value)


def _kv_table(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><td>{_h(k)}</td><td>{_value_html(v)}</td></tr>" for k, v in items.items())
    return f'<table class="gb kv"><tbody>{rows}</tbody></table>'


def _distinct(df: pd.DataFrame, col: str) -> str:
    values = sorted({str(v) for v in df[col].dropna().unique()}) if col in df else []
    return ", ".join(values) or "–"


def _provenance(df: pd.DataFrame) -> dict[str, Any]:
    """What the results themselves record about where they came from."""
    out: dict[str, Any] = {c: _distinct(df, c) for c in PROVENANCE}
    for role in ROLES:
        name, version = f"{role}_plugin", f"{role}_plugin_version"
        if name in df:
            pairs = df[[name, version]].dropna().drop_duplicates() if version in df else None
            out[f"{role} plugins"] = (
                ", ".join(sorted(f"{r[0]} {r[1]}" for r in pairs.itertuples(index=False)))
                if pairs is not None and len(pairs)
                else _distinct(df, name)
            )
    if "started_at" in df:
        started = pd.to_datetime(df["started_at"], utc=True, errors="coerce", format="ISO8601")
        if started.notna().any():
            out["cells started"] = (
                f"{started.min():%Y-%m-%d %H:%M} – {started.max():%Y-%m-%d %H:%M} UTC"
            )
    if "wall_time_s" in df:
        per_cell = df.groupby("cell_id")["wall_time_s"].max()
        out["total cell wall time"] = f"{per_cell.sum():.1f} s over {len(per_cell)} cells"
    return out


def _summary(df: pd.DataFrame) -> str:
    runs = latest_runs(df)
    statuses = runs.groupby("cell_id")["status"].first().value_counts()
    parts = [f"{int(n)} {_h(s)}" for s, n in statuses.items()]
    tasks = runs["task_label"].nunique()
    configs = runs[["label", "model_label"]].drop_duplicates().shape[0]
    return (
        f"<p>{statuses.sum()} cells ({', '.join(parts) or 'none'}) over {tasks} task"
        f"{'s' if tasks != 1 else ''} and {configs} objective/model configurations.</p>"
    )


def render_report(
    df: pd.DataFrame,
    directions: Mapping[str, str],
    figures: Mapping[str, Figure] | None,
    environment: Mapping[str, Any],
    *,
    title: str = "gbench report",
    image_format: str = "svg",
    figure_notes: Sequence[str] = (),
    headline_figures: Mapping[str, Figure] | None = None,
    headline_metrics: Mapping[str, Sequence[str]] | None = None,
    claims_html: str = "",
    figure_texts: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Render one self-contained HTML page from a results table.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy results table.
    directions : mapping of str to str
        Each metric's direction (``"min"``, ``"max"`` or ``"none"``).
    figures : mapping of str to matplotlib.figure.Figure, optional
        Figures shown after the leaderboards, each under its caption.
    environment : mapping of str to object
        What the caller knows about the run: gbench / torch / plugin versions, device,
        budget, date, the command line. Nested mappings become nested tables. The page adds
        what the results themselves record (versions, devices, time span) beside it.
    title : str
        The page title.
    image_format : {"svg", "png"}
        How figures are embedded.
    figure_notes : sequence of str
        Notes shown under the figures, e.g. why a figure that was asked for is missing.
    headline_figures : mapping of str to matplotlib.figure.Figure, optional
        The figures a reader came for (a paper's figure, a frontier), shown before the tables.
    headline_metrics : mapping of str to sequence of str, optional
        Task name -> the metrics of its compact table (see
        :func:`benchmark_core.reports.leaderboard.leaderboard`); every metric is in the full
        table under it.
    claims_html : str
        A trusted HTML fragment with the verdicts on claims, shown first; empty leaves a
        marked place (:data:`CLAIMS_PLACE`). The caller escapes what it puts in.
    figure_texts : mapping of str to sequence of str, optional
        Sentences printed under the headline figure of the same caption (a frontier's
        verdicts against its reference curve), escaped.

    Returns
    -------
    str
        The HTML page. It references no external resource, runs no script, and escapes every
        label, parameter, reason and environment string.
    """
    sections = [f"<h1>{_h(title)}</h1>", _summary(df)]
    claims = f'<section id="claims">{claims_html}</section>' if claims_html else CLAIMS_PLACE
    sections.append(claims)
    sections += _figures(
        headline_figures or {}, (), image_format, "Headline figures", figure_texts or {}
    )
    sections += _leaderboards(df, directions, headline_metrics)
    sections += _figures(figures or {}, figure_notes, image_format, "More figures")
    sections += _environment(df, environment)
    sections.append(_problems(df))
    return _page(title, "\n".join(sections))


def _leaderboards(
    df: pd.DataFrame, directions: Mapping[str, str], headline: Mapping[str, Sequence[str]] | None
) -> list[str]:
    """Per budget and task, the compact table and, folded under it, the full one."""
    out = ["<h2>Leaderboards</h2>"]
    budgets = sorted(df["budget"].dropna().unique()) if "budget" in df else []
    for budget in budgets or [None]:
        if len(budgets) > 1:
            out.append(f"<h3>budget {_h(budget)}</h3>")
        compact = leaderboard(df, directions, budget=budget, headline=headline or {})
        if compact.empty:
            out.append('<p class="muted">No finished cells.</p>')
            continue
        full = leaderboard(df, directions, budget=budget)
        for task, rows in iter_tasks(compact):
            out.append(f"<section><h3>{_h(task)}</h3>{task_table(compact, task, rows)}</section>")
            full_rows = full[full["task_label"] == task]
            n_all = len(shown_metrics(full, task, full_rows))
            if n_all > len(shown_metrics(compact, task, rows)):
                out.append(
                    f'<details class="full"><summary>All {n_all} metrics of {_h(task)}'
                    f"</summary><section>{task_table(full, task, full_rows)}</section></details>"
                )
    out.append(f'<p class="note">{_h(INTERVAL_NOTE)}</p>')
    return out


def _figures(
    figures: Mapping[str, Figure],
    notes: Sequence[str],
    image_format: str,
    heading: str,
    texts: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    out = [f"<h2>{_h(heading)}</h2>"] if figures or notes else []
    for caption, fig in figures.items():
        uri = figure_data_uri(fig, image_format)
        out.append(
            f'<figure><img src="{uri}" alt="{_h(caption)}">'
            f"<figcaption>{_h(caption)}</figcaption></figure>"
        )
        sentences = (texts or {}).get(caption, ())
        if sentences:
            items = "".join(f"<li>{_h(s)}</li>" for s in sentences)
            out.append(f'<ul class="frontier">{items}</ul>')
    if notes:
        items = "".join(f"<li>{_h(note)}</li>" for note in notes)
        out.append(f'<ul class="muted">{items}</ul>')
    return out


def _environment(df: pd.DataFrame, environment: Mapping[str, Any]) -> list[str]:
    return [
        "<h2>Environment</h2>",
        _kv_table(environment) if environment else '<p class="muted">None recorded.</p>',
        "<h3>Recorded in the results</h3>",
        _kv_table(_provenance(df)),
    ]


def _problems(df: pd.DataFrame) -> str:
    problems = problem_cells(df)
    if len(problems):
        return problems_html(problems, heading_level=2)
    return '<h2>Skipped and failed cells</h2>\n<p class="muted">None: every cell finished.</p>'


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_h(title)}</title>\n<style>{PAGE_CSS}{LEADERBOARD_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
