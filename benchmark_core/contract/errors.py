"""Exceptions that the CLI turns into clear messages instead of tracebacks."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GbenchError(Exception):
    """Base class of gbench's own errors."""


class UsageError(GbenchError):
    """Bad input from the user (exit code 2): the message says what is wrong and how to fix it."""


class PluginError(GbenchError):
    """A plugin misbehaved while registering its components."""


class ResultsError(GbenchError):
    """A results folder holds files that cannot be read as gbench results."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""
