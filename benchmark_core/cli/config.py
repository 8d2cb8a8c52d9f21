"""``gbench run --config FILE``: a TOML file holding any of ``run``'s options.

Every value goes through the same checks as the option it stands for (the option's own click
type, then the selection and seed parsers), after a check that the TOML type is the option's
(``force = "no"`` is a string, not false). The file must be a regular file of at most
:data:`MAX_CONFIG_BYTES`; anything wrong is a :class:`UsageError` naming the file and key.
"""

from __future__ import annotations

import os
import stat
import tomllib
from typing import Any

import click

from benchmark_core.contract.errors import UsageError, did_you_mean
from benchmark_core.results.safe_text import safe_text

#: A config file holds a few options; anything larger is a mistake (``--config /dev/zero``).
MAX_CONFIG_BYTES = 1 << 20

#: Options that are not config keys: the file itself, and a per-invocation switch.
_NOT_KEYS = ("config_path", "dry_run")

#: Options that also take a TOML list (joined with commas, as on the command line).
_LIST_KEYS = ("objectives", "tasks", "models", "metrics", "seeds")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    return repr(value)


def _shown(value: Any) -> str:
    """``value`` as the file wrote it, near enough: clipped, and safe to print."""
    text = _toml(value)
    return safe_text(text if len(text) <= 80 else text[:77] + "...")


def read_config(path: str) -> dict[str, Any]:
    """The options table of a config file: its ``[run]`` table, or its top level."""
    where = f"config file {safe_text(path)}"
    try:
        # Non-blocking, so that opening a FIFO with no writer returns instead of hanging.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise UsageError(f"cannot read {where}: {exc.strerror}.") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(
                f"{where} is not a regular file (a folder, FIFO or device): give a TOML file."
            )
        raw = b""
        while len(raw) <= MAX_CONFIG_BYTES:  # up to one byte past the cap, to see it passed
            chunk = os.read(fd, MAX_CONFIG_BYTES + 1 - len(raw))
            if not chunk:
                break
            raw += chunk
    except OSError as exc:
        raise UsageError(f"cannot read {where}: {exc.strerror}.") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_CONFIG_BYTES:
        raise UsageError(
            f"{where} is larger than {MAX_CONFIG_BYTES >> 20} MiB: it is not a config."
        )
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is fine
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{where} is not UTF-8 text (byte {exc.start}): save it as UTF-8."
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where} is not valid TOML: {safe_text(exc)}.") from None
    except RecursionError:
        raise UsageError(f"{where} is not valid TOML: values nested too deeply.") from None
    if "run" not in data:
        return data
    if not isinstance(data["run"], dict):
        raise UsageError(
            f"{where}: run = {_shown(data['run'])} must be a table: write [run] on a line of its "
            f"own above the options."
        )
    beside = [safe_text(k) for k in data if k != "run"]
    if beside:
        raise UsageError(
            f"{where}: {', '.join(beside)} sit beside the [run] table, where they would be "
            f"ignored: move them under [run], or remove the [run] line."
        )
    return data["run"]


def _range_text(kind: click.ParamType) -> str:
    low, high = getattr(kind, "min", None), getattr(kind, "max", None)
    text = "" if low is None else f" {'>' if getattr(kind, 'min_open', False) else '≥'} {low:g}"
    return text + ("" if high is None else f" and ≤ {high:g}")


def _expected(param: click.Parameter, key: str, value: Any) -> tuple[bool, str]:
    """Whether the TOML type of ``value`` suits ``param``, and what the option takes."""
    kind = param.type
    if getattr(param, "is_flag", False):
        return isinstance(value, bool), "true or false (a TOML boolean, without quotes)"
    if kind.name == "jobs":  # a count, or "auto": the option's own type says what is wrong
        ok = isinstance(value, int | str) and not isinstance(value, bool)
        return ok, 'a whole number ≥ 1 or "auto"'
    if isinstance(kind, click.types.IntParamType):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return ok, "a whole number" + _range_text(kind)
    if isinstance(kind, click.types.FloatParamType):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, "a finite number" + _range_text(kind)
    if key in _LIST_KEYS:
        items = value if isinstance(value, list) else [value]
        ok = all(isinstance(v, str | int) and not isinstance(v, bool) for v in items)
        return ok, "a string or a list of strings" + (" or numbers" if key == "seeds" else "")
    return isinstance(value, str), "a string"


def convert_config(data: dict[str, Any], ctx: click.Context, where: str) -> dict[str, Any]:
    """Check and convert each value of ``data`` as ``ctx.command``'s option of that name."""
    from benchmark_core.engine.selection import parse_seeds, parse_selection

    params = {p.name: p for p in ctx.command.params if p.name not in _NOT_KEYS}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in params:
            raise UsageError(
                f"{where}: unknown key '{safe_text(key)}'.{did_you_mean(key, params)} "
                f"Valid keys: {', '.join(params)}."
            )
        param = params[key]
        ok, expected = _expected(param, key, value)
        bad = f"{where}: {key} = {_shown(value)} must be {expected}."
        if not ok:
            raise UsageError(bad)
        if "\x00" in str(value):  # no option can hold one (a path with it is a ValueError)
            raise UsageError(f"{where}: {key} = {_shown(value)} holds a NUL character.")
        if isinstance(value, list):
            value = ",".join(map(str, value))
        elif key == "seeds":
            value = str(value)
        try:
            value = param.type.convert(value, param, ctx)
            if key == "seeds":
                parse_seeds(value)
            elif key in _LIST_KEYS:
                parse_selection(value, key)
        except click.BadParameter as exc:
            if isinstance(param.type, click.types.IntParamType | click.types.FloatParamType):
                raise UsageError(bad) from None
            raise UsageError(f"{where}: {key} = {_shown(data[key])}: {exc.message}") from None
        except UsageError as exc:
            raise UsageError(f"{where}: {key} = {_shown(data[key])}: {exc}") from None
        out[key] = value
    return out


def load_config(path: str, ctx: click.Context) -> dict[str, Any]:
    """Read ``path`` and convert its values as ``ctx.command``'s options; UsageError if bad."""
    return convert_config(read_config(path), ctx, f"config file {safe_text(path)}")
