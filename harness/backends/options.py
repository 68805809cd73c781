"""Per-backend options: ``openvino:CPU[hint=THROUGHPUT,streams=4]``, ``torch[layout=channels_last]``.

Why options live in the backend's frozen config dataclass: the backend that reads a knob is the
one that knows its type, default and valid values, so each option is declared once, beside the
field it sets (``option(...)`` in ``dataclasses.field`` metadata), and parsing, the error
messages, the canonical text and the docs all come from that declaration.

Why the text is canonical (defaults omitted, keys sorted): the backend text is the cell's
identity in the store. ``torch[layout=contiguous]`` and ``torch`` measure the same thing and
must be one cell; ``[streams=4,hint=THROUGHPUT]`` and ``[hint=THROUGHPUT,streams=4]`` likewise.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

from harness.backends.errors import BackendError

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True)
class Option:
    """One knob: its name in the backend text, type, default, and valid values.

    ``choices`` limits text options (matched case-insensitively, stored as spelled here);
    ``lo``/``hi`` bound integers and numbers (``float``); ``words`` are text values an integer
    option also accepts (``streams=auto``).
    """

    name: str
    kind: type
    default: Any
    doc: str = ""
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    words: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind is bool:
            valid = "true|false"
        elif self.choices:
            valid = "|".join(self.choices)
        elif self.kind is int:
            valid = f"integer {self.lo if self.lo is not None else ''}..{self.hi if self.hi is not None else ''}"
            valid += "".join(f"|{w}" for w in self.words)
        elif self.kind is float:
            valid = f"number {self.lo if self.lo is not None else ''}..{self.hi if self.hi is not None else ''}"
        else:
            valid = self.kind.__name__
        return f"{self.name}={valid} (default {format_value(self.default)})"

    def parse(self, text: str, where: str) -> Any:
        """The value of ``text`` for this option, or ``BackendError`` saying what is valid."""
        raw = text.strip()
        low = raw.lower()
        bad = f"{where}: {self.name}={raw!r} is not valid; expected {self.describe()}"
        if self.kind is bool:
            if low in _TRUE or low in _FALSE:
                return low in _TRUE
            raise BackendError(bad)
        if self.kind in (int, float):
            if low in self.words:
                return low
            try:
                value = self.kind(raw)
            except ValueError:
                raise BackendError(bad) from None
            if value != value or value in (float("inf"), float("-inf")):
                raise BackendError(bad)
            if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
                raise BackendError(bad)
            return value
        if self.choices:
            match = [c for c in self.choices if c.lower() == low]
            if not match:
                near = difflib.get_close_matches(low, [c.lower() for c in self.choices], n=1)
                hint = f" (did you mean {self.choices[[c.lower() for c in self.choices].index(near[0])]}?)" if near else ""
                raise BackendError(bad + hint)
            return match[0]
        if not raw:
            raise BackendError(bad)
        return raw


def option(name: str, kind: type, default: Any, doc: str = "", **limits: Any) -> Any:
    """A dataclass field that is also a user-settable option (see ``Option``)."""
    opt = Option(name, kind, default, doc, **limits)
    return dataclasses.field(default=default, metadata={"option": opt})


def options_of(config_cls: type) -> dict[str, tuple[str, Option]]:
    """``{option name: (field name, Option)}`` declared by a config dataclass."""
    out = {}
    for f in dataclasses.fields(config_cls):
        opt = f.metadata.get("option")
        if opt is not None:
            out[opt.name] = (f.name, opt)
    return out


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_options(config_cls: type, text: str, where: str) -> tuple[tuple[str, Any], ...]:
    """``"hint=throughput, streams=4"`` -> canonical ``(("hint", "THROUGHPUT"), ("streams", 4))``:
    values parsed, defaults dropped, keys sorted. Strict: an unknown key, a repeated key or a
    bad value is a ``BackendError`` naming the valid options."""
    declared = options_of(config_cls)
    valid = "; ".join(o.describe() for _, o in declared.values()) or "none"
    values: dict[str, Any] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep:
            raise BackendError(f"{where}: option {item!r} needs a value (key=value); valid: {valid}")
        if key not in declared:
            near = difflib.get_close_matches(key, list(declared), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise BackendError(f"{where}: unknown option {key!r}{hint}; valid: {valid}")
        if key in values:
            raise BackendError(f"{where}: option {key!r} given twice")
        values[key] = declared[key][1].parse(value, where)
    return tuple(sorted((k, v) for k, v in values.items() if v != declared[k][1].default))


def format_options(options: tuple[tuple[str, Any], ...]) -> str:
    """``(("hint", "THROUGHPUT"),)`` -> ``"[hint=THROUGHPUT]"``; nothing for no options."""
    if not options:
        return ""
    return "[" + ",".join(f"{k}={format_value(v)}" for k, v in options) + "]"


def config_kwargs(config_cls: type, options: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The config dataclass's keyword arguments for parsed ``options``."""
    declared = options_of(config_cls)
    return {declared[k][0]: v for k, v in options}
