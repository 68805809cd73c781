"""The spec grammar: ``family[:key=value[,key=value...]]``.

Specs are how users, configs, the store and reports name an architecture, so parsing is strict
(an unknown family or key, a value of the wrong type or out of range is refused with a message
that names what *is* valid) and formatting is canonical (``format_spec(parse(s))`` is the same
string for every way of writing the same architecture). Nothing here evaluates user text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class SpecError(ValueError):
    """A spec (or a value in one) that cannot name an architecture. The message says why."""


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VALUE = re.compile(r"^[A-Za-z0-9_.+\-]+$")


@dataclass(frozen=True)
class Param:
    """One parameter of a family: its type, default and the values it accepts.

    ``default=None`` means "derived from other parameters" (a family's ``resolve`` fills it in,
    e.g. DARTS picks cells/channels from ``setting``); ``doc`` then says how.
    """

    name: str
    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if self.type not in (int, float, str, bool):
            raise TypeError(f"param {self.name}: unsupported type {self.type!r}")
        if self.default is not None:
            self.check(self.default)

    def describe(self) -> str:
        if self.choices is not None:
            return f"{self.name} (one of {', '.join(map(str, self.choices))})"
        lo = "" if self.min is None else f"{_fmt(self.min)} <= "
        hi = "" if self.max is None else f" <= {_fmt(self.max)}"
        return f"{lo}{self.name} ({self.type.__name__}){hi}"

    def coerce(self, raw: str) -> Any:
        """Turn the text after ``key=`` into a checked value of this parameter's type."""
        if self.type is bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                value: Any = True
            elif lowered in ("0", "false", "no", "off"):
                value = False
            else:
                raise SpecError(f"{self.name}={raw!r}: expected true or false")
        elif self.type is int:
            if not re.fullmatch(r"[+-]?\d{1,12}", raw):
                raise SpecError(f"{self.name}={raw!r}: expected an integer; valid: {self.describe()}")
            value = int(raw)
        elif self.type is float:
            try:
                value = float(raw)
            except ValueError:
                raise SpecError(f"{self.name}={raw!r}: expected a number; valid: {self.describe()}") from None
            if not math.isfinite(value):
                raise SpecError(f"{self.name}={raw!r}: expected a finite number")
        else:
            value = raw
        self.check(value)
        return value

    def check(self, value: Any) -> None:
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise SpecError(f"{self.name}={value!r}: expected {self.type.__name__}")
        if self.choices is not None and value not in self.choices:
            raise SpecError(f"{self.name}={value!r}: valid values are {', '.join(map(str, self.choices))}")
        num: Any = value  # a number here: the type check above passed
        if self.min is not None and num < self.min or self.max is not None and num > self.max:
            raise SpecError(f"{self.name}={_fmt(value)} is out of range; valid: {self.describe()}")

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type.__name__, "default": self.default}
        if self.choices is not None:
            out["choices"] = list(self.choices)
        else:
            if self.min is not None:
                out["min"] = self.min
            if self.max is not None:
                out["max"] = self.max
        if self.doc:
            out["doc"] = self.doc
        return out


@dataclass(frozen=True)
class Spec:
    """A parsed spec: a family and the values the user gave (defaults are not stored here,
    so the canonical text stays short; ``archs.resolve`` fills them in)."""

    family: str
    given: tuple[tuple[str, Any], ...] = field(default=())

    def __str__(self) -> str:
        return format_spec(self)

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.given).get(key, default)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def split_spec(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Split spec text into a family name and raw ``(key, value)`` pairs; grammar only."""
    if not isinstance(text, str):
        raise SpecError(f"a spec must be text, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise SpecError("empty spec; expected family[:key=value,...]")
    family, sep, rest = text.partition(":")
    family = family.strip().lower()
    if not _NAME.match(family):
        raise SpecError(f"{family!r} is not a family name; expected family[:key=value,...]")
    pairs: list[tuple[str, str]] = []
    if sep and not rest.strip():
        raise SpecError(f"{text!r}: nothing after ':'; expected key=value pairs")
    if rest.strip():
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not eq or not key or not value:
                raise SpecError(f"{item.strip()!r} in {text!r}: expected key=value")
            if not _NAME.match(key):
                raise SpecError(f"{key!r} is not a parameter name")
            if not _VALUE.match(value):
                raise SpecError(f"{key}={value!r}: values may hold letters, digits and _ . + - only")
            if any(k == key for k, _ in pairs):
                raise SpecError(f"{key} is given twice in {text!r}")
            pairs.append((key, value))
    return family, pairs


def make_spec(family: str, params: tuple[Param, ...], pairs: list[tuple[str, str]]) -> Spec:
    """Check raw pairs against a family's parameters; keep only non-default values, in the
    family's declared order, so every spelling of one architecture gives one Spec."""
    by_name = {p.name: p for p in params}
    values: dict[str, Any] = {}
    for key, raw in pairs:
        if key not in by_name:
            valid = ", ".join(p.name for p in params)
            raise SpecError(f"{family} has no parameter {key!r}; valid: {valid}")
        values[key] = by_name[key].coerce(raw)
    given = tuple(
        (p.name, values[p.name])
        for p in params
        if p.name in values and not _same(values[p.name], p.default)
    )
    return Spec(family, given)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (isinstance(a, float) and isinstance(b, int) and a == b)


def format_spec(spec: Spec) -> str:
    if not spec.given:
        return spec.family
    return spec.family + ":" + ",".join(f"{k}={_fmt(v)}" for k, v in spec.given)


def fill_defaults(params: tuple[Param, ...], spec: Spec) -> dict[str, Any]:
    given = dict(spec.given)
    return {p.name: given.get(p.name, p.default) for p in params}


def check_values(params: tuple[Param, ...], values: Mapping[str, Any]) -> None:
    """Re-check values after a family's ``resolve`` derived some of them."""
    for p in params:
        if values.get(p.name) is None:
            raise SpecError(f"{p.name} has no value after resolving defaults")
        p.check(values[p.name])
