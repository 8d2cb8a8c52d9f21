"""Reading and filtering results for the reporting commands (leaderboard, plot, report).

Unreadable files are named on stderr and the rest is read; bad input (a folder with no
results, a name that is not in them) is a :class:`UsageError` whose message lists what is
there, which the CLI turns into exit code 2. Every name, file name and message from the
results passes through :func:`~benchmark_core.reports.safe_text.printable` before it reaches
the terminal.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import pandas as pd

from benchmark_core.contract.errors import UsageError, did_you_mean
from benchmark_core.reports.labels import natural_key, split_items
from benchmark_core.reports.safe_text import printable
from benchmark_core.results.store import Results, read_results

DEFAULT_RESULTS = ("results",)


def _usage_error(message: str) -> UsageError:
    """A :class:`UsageError` whose message can be printed safely (names come from results)."""
    return UsageError(printable(message))


def load_results(paths: tuple[str, ...]) -> Results:
    """Read results folders or files; name unreadable files on stderr; refuse empty ones."""
    paths = paths or DEFAULT_RESULTS
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise _usage_error(
            f"no results at {', '.join(missing)}: no such file or folder. Pass a folder "
            "written by `gbench run --out DIR`."
        )
    results = read_results(paths)
    for problem in results.problems:
        click.echo(f"warning: ignored {printable(problem)}", err=True)
    if results.frame.empty:
        also = f" ({len(results.problems)} unreadable, named above)" if results.problems else ""
        raise _usage_error(
            f"no gbench results in {', '.join(paths)}{also}. Make some with "
            "`gbench run --out DIR`, then pass DIR."
        )
    return results


def split_names(values: tuple[str, ...]) -> list[str]:
    """Values of a repeatable option that also takes comma lists (``--metric a,b --metric c``).

    Commas inside brackets belong to a label: ``name[a=0.5,lr=0.01]`` stays one name.
    """
    return list(dict.fromkeys(n for v in values for n in split_items(v)))


def available(values: Any) -> str:
    """The distinct values, in natural order, as a comma list for an error message."""
    return ", ".join(sorted({printable(v) for v in values if pd.notna(v)}, key=natural_key))


def filter_frame(
    df: pd.DataFrame,
    tasks: tuple[str, ...] = (),
    models: tuple[str, ...] = (),
    objectives: tuple[str, ...] = (),
    budget: str | None = None,
    one_budget: bool = True,
) -> pd.DataFrame:
    """Keep the rows that match the filters; each name matches a component name or a label.

    A name that matches nothing is a :class:`UsageError` listing the names there are, and so
    is a table that mixes budgets when ``one_budget`` (their numbers are not comparable).
    """
    for names, name_col, label_col, what in (
        (split_names(tasks), "task", "task_label", "task"),
        (split_names(models), "model", "model_label", "model"),
        (split_names(objectives), "objective", "label", "objective"),
    ):
        if not names:
            continue
        known = set(df[name_col].dropna()) | set(df[label_col].dropna())
        for name in names:
            if name not in known:
                raise _usage_error(
                    f"no {what} {name!r} in the results.{did_you_mean(name, known)} "
                    f"Available: {available(known)}."
                )
        df = df[df[name_col].isin(names) | df[label_col].isin(names)]
    budgets = set(df["budget"].dropna())
    if budget is not None:
        if budget not in budgets:
            raise _usage_error(
                f"no cells ran at budget {budget!r}. Available: {available(budgets)}."
            )
        df = df[df["budget"] == budget]
    elif one_budget and len(budgets) > 1:
        raise _usage_error(
            f"the results mix budgets ({available(budgets)}), whose numbers are not "
            "comparable; choose one with --budget."
        )
    return df


def check_metrics(df: pd.DataFrame, metrics: list[str], option: str = "--metric") -> None:
    """Raise a :class:`UsageError` listing the available metrics if one is not in ``df``."""
    there = set(df["metric"].dropna())
    for metric in metrics:
        if metric not in there:
            raise _usage_error(
                f"{option} {metric}: no such metric in the results."
                f"{did_you_mean(metric, there)} Available metrics: {available(there)}."
            )


@contextmanager
def warnings_to_stderr() -> Iterator[None]:
    """Show Python warnings raised inside as one ``warning:`` line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        click.echo(f"warning: {printable(w.message)}", err=True)


def filter_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--task``, ``--model``, ``--objective`` and ``--budget`` filters."""
    for option in reversed(
        [
            click.option("--task", "tasks", multiple=True, help="Task name or label (repeat)."),
            click.option("--model", "models", multiple=True, help="Model name or label."),
            click.option(
                "--objective", "objectives", multiple=True, help="Objective name or label."
            ),
            click.option("--budget", default=None, help="Run profile, when several ran."),
        ]
    ):
        func = option(func)
    return func


results_argument = click.argument("results", nargs=-1, type=click.Path())


def results_folder(results: tuple[str, ...]) -> Path:
    """The first results folder (a file's own folder): where outputs go by default."""
    first = Path((results or DEFAULT_RESULTS)[0])
    return first if first.is_dir() else first.parent


def slug(text: str) -> str:
    """A file name from a label: runs of other characters than ``A-Za-z0-9._=-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_") or "plot"


def one_task(df: pd.DataFrame) -> str:
    """The one task label in ``df``, or a :class:`UsageError` listing them."""
    labels = sorted(set(df["task_label"].dropna()), key=natural_key)
    if len(labels) > 1:
        raise _usage_error(
            f"a plot draws one task; these results hold {len(labels)}: {', '.join(labels)}. "
            "Choose one with --task."
        )
    return labels[0]


def write_text(path: Path, text: str) -> None:
    """Write a UTF-8 file, creating its folder; a failure is a :class:`UsageError`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _usage_error(f"cannot write {path}: {exc.strerror}.") from None
