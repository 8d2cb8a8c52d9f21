"""Text from results and plugins made harmless for the terminal and for spreadsheets.

A label, a parameter value, a skip reason, a traceback or a file name in a results folder is
written by whoever wrote the folder or the plugin. Printed raw, an ESC sequence in one can
move the cursor, rewrite earlier lines, set the window title or, in some terminals, answer
back with keystrokes; a right-to-left override can make a line read differently from what it
holds. rich does not strip them. And a spreadsheet runs a CSV field that starts with ``=``
(or ``+``, ``-``, ``@``) as a formula.

:func:`printable` shows every such character as a visible escape (``\\x1b``, ``\\u202e``)
rather than dropping it, so a reader sees that something odd is there; :func:`csv_text`
also puts a ``'`` before a text field that a spreadsheet would read as a formula.
"""

from __future__ import annotations

from typing import Any

from benchmark_core.results.safe_text import safe_text

#: Leading characters that make a spreadsheet read a cell as a formula (OWASP's list, with
#: tab and carriage return, which some spreadsheets skip before looking at the first).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def printable(text: Any, keep_newlines: bool = False) -> str:
    """Return ``str(text)`` with every control and bidirectional-control character escaped.

    Parameters
    ----------
    text : object
        Anything; it is converted with ``str``.
    keep_newlines : bool
        Keep line feeds and tabs (for a traceback printed as several lines); carriage
        returns, which can overwrite a line, are always escaped.

    Returns
    -------
    str
        The text with ``ESC`` shown as ``\\x1b``, ``U+202E`` as ``\\u202e`` and so on; text
        without such characters is returned unchanged.
    """
    # One implementation for the whole command line: the reports only add the CSV rule.
    return safe_text(text, multiline=keep_newlines)


def csv_text(value: Any) -> Any:
    """Make one CSV field safe: escape control characters and defuse a formula.

    Parameters
    ----------
    value : object
        A field. Numbers (and missing values) are returned unchanged: ``-1.5`` is a number,
        not a formula, and must stay one.

    Returns
    -------
    object
        For a string: :func:`printable` of it, with a ``'`` in front when it starts with one
        of :data:`FORMULA_START`, so that a spreadsheet shows it as text.
    """
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_START):
        value = "'" + value
    return printable(value)
