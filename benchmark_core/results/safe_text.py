"""Text from result files, plugins and the user, made safe to print on a terminal.

Labels, error messages, tracebacks and file names reach gbench from places it does not
control (a plugin's exception, a Parquet file from someone else, a file name with odd bytes).
Printed raw, an ESC or CSI character in them is a terminal escape sequence: it can recolour,
hide or rewrite what the reader sees, or set the window title. :func:`safe_text` makes every
such character visible instead. It lives in ``results`` because that is the lowest layer that
both the command line and the reports import, and the contract (what plugins see) has no use
for it.
"""

from __future__ import annotations

import unicodedata
from typing import Any

# Characters that reorder or hide text on screen (bidirectional overrides and isolates, the
# "Trojan Source" set) and the Unicode line and paragraph separators.
_INVISIBLE = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_INVISIBLE |= frozenset("\u2028\u2029")


def _visible(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def safe_text(value: Any, *, multiline: bool = False) -> str:
    """Return ``str(value)`` with control characters written as visible escapes (``\\x1b``).

    Escaped: C0 and C1 control characters and DEL (ESC and CSI among them), lone surrogates
    (undecodable bytes of a file name, which a UTF-8 terminal cannot even encode), and
    bidirectional overrides and line separators. ``multiline=True`` keeps newlines and tabs
    (for tracebacks and tables); otherwise they are escaped too, so that one line of output
    stays one line and cannot forge another.
    """
    text = value if isinstance(value, str) else str(value)
    if text.isprintable() and text.isascii():  # the common case, at C speed
        return text
    out = []
    for char in text:
        if multiline and char in "\n\t":
            out.append(char)
        elif char in _INVISIBLE or unicodedata.category(char) in ("Cc", "Cs"):
            out.append(_visible(char))
        else:
            out.append(char)
    return "".join(out)
