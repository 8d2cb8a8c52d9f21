"""Parse ``name[param=value,...]`` selections and expand them into configured components.

Grammar (whitespace around tokens is ignored)::

    selection := "all" | item ("," item)*
    item      := NAME ["[" [assign ("," assign)*] "]"]
    assign    := NAME "=" value
    value     := "[" [scalar ("," scalar)*] "]" | scalar      # a list sweeps
    scalar    := number | true | false | 'quoted' | "quoted" | bare word

A list value sweeps the parameter, except for list-typed parameters, whose sweeps are
written as lists of lists; lists nest no deeper than that. Control characters are refused
anywhere in a selection.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchmark_core.contract.errors import UsageError
from benchmark_core.results.safe_text import safe_text

if TYPE_CHECKING:  # the registry loads the plugins; parsing needs none of it
    from benchmark_core.registry import Entry, Registry

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INT = re.compile(r"[+-]?\d+$")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
_BARE_STOP = set(",[]=\"' \t\n")
#: Parameters the engine owns on every component of a kind (never passed to the component):
#: ``init`` names the objective whose trained model an objective starts from (a warm start).
ENGINE_PARAMS: dict[str, tuple[str, ...]] = {"objective": ("init",)}

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

#: A value is a scalar, a list (a sweep, or a list parameter) or a list of lists (a sweep of
#: a list parameter); nothing nests deeper.
MAX_NESTING = 2
#: The most configurations one item of a selection may expand to.
MAX_CONFIGURATIONS = 10_000
#: The most seeds one run takes.
MAX_SEEDS = 10_000
#: Seeds run from 0 to ``SEED_LIMIT - 1``: numpy's legacy seeding takes no more, and the
#: engine derives 64-bit seeds from a cell's (``seed * 1_000_003 + step`` for its metrics).
SEED_LIMIT = 2**32


@dataclass(frozen=True)
class Spec:
    """One parsed item: a component name and the parameter values the user gave."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text, self.pos, self.what = text, 0, what

    def fail(self, message: str) -> UsageError:
        start = max(0, self.pos - 60)  # a window around the position, for long selections
        before = safe_text(self.text[start : self.pos])
        shown = ("..." if start else "") + before + safe_text(self.text[self.pos : self.pos + 60])
        pointer = " " * (len(before) + (3 if start else 0)) + "^"
        return UsageError(
            f"cannot parse --{self.what} at position {self.pos + 1}: {message}\n"
            f"  {shown}\n  {pointer}\n"
            f"Write a comma list of name or name[param=value,...]; a [list] of values sweeps."
        )

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.fail(f"expected '{char}' but found {found}")
        self.pos += 1

    def name(self) -> str:
        self.skip_ws()
        match = _NAME.match(self.text, self.pos)
        if not match:
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.fail(f"expected a name but found {found}")
        self.pos = match.end()
        return match.group()

    def scalar(self) -> Any:
        char = self.peek()
        if char in ("'", '"'):
            end = self.text.find(char, self.pos + 1)
            if end < 0:
                raise self.fail("unterminated quoted string")
            value = self.text[self.pos + 1 : end]
            self.pos = end + 1
            return value
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _BARE_STOP:
            self.pos += 1
        word = self.text[start : self.pos]
        if not word:
            found = repr(char) if char else "the end"
            raise self.fail(f"expected a value but found {found}")
        if word in ("true", "True"):
            return True
        if word in ("false", "False"):
            return False
        if _INT.match(word):
            try:
                return int(word)
            except ValueError:  # past Python's limit on digits; no parameter takes such a number
                self.pos = start
                raise self.fail(f"a number of {len(word)} digits is too large") from None
        if _FLOAT.match(word):
            return float(word)
        return word

    def value(self, depth: int = 0) -> Any:
        if self.peek() != "[":
            return self.scalar()
        if depth == MAX_NESTING:
            raise self.fail(f"lists nest at most {MAX_NESTING} deep (a sweep of list values)")
        self.pos += 1
        items: list[Any] = []
        if self.peek() == "]":
            self.pos += 1
            return items
        while True:
            items.append(self.value(depth + 1))
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect("]")
            return items

    def item(self) -> Spec:
        name = self.name()
        params: dict[str, Any] = {}
        if self.peek() == "[":
            self.pos += 1
            while self.peek() != "]":
                key = self.name()
                if key in params:
                    raise self.fail(f"parameter '{key}' is given twice")
                self.expect("=")
                params[key] = self.value()
                if self.peek() != ",":
                    break
                self.pos += 1
            self.expect("]")
        return Spec(name, params)

    def selection(self) -> list[Spec]:
        items = [self.item()]
        while self.peek() == ",":
            self.pos += 1
            items.append(self.item())
        if self.peek():
            raise self.fail(f"unexpected {self.peek()!r}")
        return items


def parse_selection(text: str, what: str = "selection") -> list[Spec] | None:
    """Parse a selection; return None for ``all``. ``what`` names the option in errors."""
    if text.strip() == "all":
        return None
    if not text.strip():
        raise UsageError(f"--{what} is empty: give 'all' or a comma list of names.")
    parser = _Parser(text, what)
    control = _CONTROL.search(text)
    if control:
        parser.pos = control.start()
        raise parser.fail(f"control character {safe_text(control.group())} in the text")
    return parser.selection()


@dataclass(frozen=True)
class Configured:
    """A component with one full set of validated parameters."""

    entry: Entry
    params: dict[str, Any]
    given: dict[str, Any]

    @property
    def name(self) -> str:
        """The component's name."""
        return self.entry.name

    @property
    def cls(self) -> Any:
        """The component class."""
        return self.entry.cls

    @property
    def label(self) -> str:
        """``name[param=value,...]`` with the parameters the user set, in declared order."""
        if not self.given:
            return self.name
        order = [k for k in self.cls.param_spec if k in self.given]
        order += [k for k in self.given if k not in self.cls.param_spec]  # the engine's own
        body = ",".join(f"{k}={_format(self.given[k])}" for k in order)
        return f"{self.name}[{body}]"


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e16 else f"{value:g}"
    if isinstance(value, list):
        return "[" + ",".join(_format(v) for v in value) + "]"
    return str(value) if _NAME.fullmatch(str(value)) else json.dumps(value)


def _sweep_axes(entry: Entry, given: dict[str, Any]) -> dict[str, list[Any]]:
    axes = {}
    for key, value in given.items():
        declared = entry.cls.param_spec.get(key)
        is_list_param = declared is not None and declared.kind is list
        if isinstance(value, list) and (
            not is_list_param or any(isinstance(v, list) for v in value)
        ):
            if not value:
                raise UsageError(f"{entry.name}[{key}=[]] sweeps over nothing: give values.")
            axes[key] = value
        else:
            axes[key] = [value]
    return axes


def expand(
    kind: str, specs: list[Spec] | None, registry: Registry, allow_sweeps: bool = True
) -> list[Configured]:
    """Validate ``specs`` (None meaning all) and expand their sweeps into configurations."""
    if specs is None:
        specs = [
            Spec(name, dict(entry.cls.all_sweep))
            for name, entry in sorted(registry.of_kind(kind).items())
        ]
    out: list[Configured] = []
    seen: set[str] = set()
    for spec in specs:
        entry = registry.get(kind, spec.name)
        axes = _sweep_axes(entry, spec.params)
        if not allow_sweeps and any(len(v) > 1 for v in axes.values()):
            raise UsageError(
                f"{kind} {spec.name}: a {kind} takes single values, not a sweep; "
                f"list it once per setting instead."
            )
        count = math.prod(len(v) for v in axes.values())
        if count > MAX_CONFIGURATIONS:
            raise UsageError(
                f"{kind} {spec.name}: the sweep gives {count:,} configurations, more than "
                f"{MAX_CONFIGURATIONS:,}: sweep fewer values at once."
            )
        keys = list(axes)
        for combo in itertools.product(*(axes[k] for k in keys)):
            given = dict(zip(keys, combo, strict=True))
            engine = {k: given[k] for k in ENGINE_PARAMS.get(kind, ()) if k in given}
            if set(engine) & set(entry.cls.param_spec):
                raise UsageError(
                    f"{kind} {spec.name} declares its own parameter(s) {sorted(engine)}, which "
                    f"gbench reserves on every {kind}; the plugin must rename them."
                )
            own = {k: v for k, v in given.items() if k not in engine}
            params = entry.cls.validate(own)
            conf = Configured(entry, params, given)
            key = json.dumps([conf.name, params, engine], sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(conf)
    return out


def with_task_defaults(metrics: list[Configured], task: type) -> list[Configured]:
    """``metrics`` as they run on ``task``: the task's :attr:`Task.metric_params` fill each
    parameter the user did not give (the user's value wins), validated like the user's.

    Raises UsageError naming the task when it declares a parameter the metric lacks or a
    value the metric refuses.
    """
    declared = getattr(task, "metric_params", None) or {}
    out = []
    for conf in metrics:
        defaults = declared.get(conf.name)
        if not defaults:
            out.append(conf)
            continue
        unknown = sorted(set(defaults) - set(conf.cls.param_spec))
        if unknown:
            raise UsageError(
                f"task {task.name} sets metric_params {unknown} of metric {conf.name}, which "
                f"declares no such parameter."
            )
        merged = {**defaults, **conf.given}
        try:
            params = conf.cls.validate(merged)
        except UsageError as exc:
            raise UsageError(f"task {task.name}'s metric_params for {conf.name}: {exc}") from None
        out.append(Configured(conf.entry, params, conf.given))
    return out


def _clip(text: str) -> str:
    return safe_text(text if len(text) <= 40 else text[:37] + "...")


def _seed_number(word: str, text: str) -> int:
    word = word.strip()
    if not _INT.match(word) or not word.isascii():
        raise UsageError(
            f"--seeds {_clip(text)!r} is not valid: give a count such as 3 (seeds 0, 1, 2) "
            f"or a comma list such as 0,4,7."
        )
    if len(word.lstrip("+-0")) > 20:  # no use parsing past what any bound allows
        return SEED_LIMIT * 10**20
    return int(word)


def parse_seeds(text: str | int) -> list[int]:
    """``3`` means seeds 0, 1, 2; ``0,4,7`` means exactly those, and ``7,`` seed 7 alone.

    At most :data:`MAX_SEEDS` seeds, each from 0 to ``SEED_LIMIT - 1``; a UsageError otherwise.
    """
    text = str(text).strip()
    if "," in text:
        # One trailing comma makes a list of one seed; any other empty item is a mistake.
        words = text.split(",")
        if len(words) > 1 and words[-1].strip() == "" and words[-2].strip() != "":
            words = words[:-1]
        seeds = [_seed_number(word, text) for word in words]
        count = len(seeds)
    else:
        count = _seed_number(text, text)
        if count < 1:
            raise UsageError(f"--seeds {_clip(text)!r}: give a count of at least 1.")
        seeds = []
    if count > MAX_SEEDS:
        asked = f" (asked for {count:,})" if count < SEED_LIMIT * 10**20 else ""
        raise UsageError(
            f"--seeds: at most {MAX_SEEDS:,} seeds in one run{asked}: split them over several "
            f"runs with lists of seeds and the same --out."
        )
    if not seeds:
        return list(range(count))
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds {_clip(text)!r}: seeds must be distinct and not negative.")
    too_big = [s for s in seeds if s >= SEED_LIMIT]
    if too_big:
        shown = str(too_big[0]) if too_big[0] < SEED_LIMIT * 10**20 else "a 20-digit number"
        raise UsageError(
            f"--seeds: seed {_clip(shown)} is too large: seeds go from 0 to {SEED_LIMIT - 1:,}."
        )
    return seeds
