"""DARTS genotypes as data: ``(op, input)`` pairs per cell plus the states each cell concatenates.

One format for everything, as in the DARTS code: the published cells, cells a user registers and
cells read from a config file are all a ``Genotype``, so a search result can be benchmarked
without writing a line of PyTorch. Cells come from user data, so every genotype is checked here,
once, before any module is built; a bad one is refused with a ``SpecError`` that says which pair
is wrong and what would be valid, rather than failing later as a shape error deep in ``forward``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from .darts_ops import OPS
from .spec import SpecError


class Genotype(NamedTuple):
    """Node ``k`` of a cell (k = 0, 1, ...) sums the two ops at pairs ``2k`` and ``2k+1``; each
    pair's input is a state index: 0 and 1 are the cell's two inputs, ``2+j`` is node ``j``.
    The cell's output concatenates the states listed in ``*_concat``."""

    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]


# Transcribed from quark0/darts cnn/genotypes.py: DARTS_V1 is the first-order search result,
# DARTS_V2 the second-order one (the paper's "DARTS" network, 4.7M params on ImageNet).
DARTS_V1 = Genotype(
    normal=(
        ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
        ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0), ("skip_connect", 2),
    ),
    normal_concat=(2, 3, 4, 5),
    reduce=(
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("skip_connect", 2), ("max_pool_3x3", 0),
        ("max_pool_3x3", 0), ("skip_connect", 2),
        ("skip_connect", 2), ("avg_pool_3x3", 0),
    ),
    reduce_concat=(2, 3, 4, 5),
)

DARTS_V2 = Genotype(
    normal=(
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1), ("skip_connect", 0),
        ("skip_connect", 0), ("dil_conv_3x3", 2),
    ),
    normal_concat=(2, 3, 4, 5),
    reduce=(
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("skip_connect", 2), ("max_pool_3x3", 1),
        ("max_pool_3x3", 0), ("skip_connect", 2),
        ("skip_connect", 2), ("max_pool_3x3", 1),
    ),
    reduce_concat=(2, 3, 4, 5),
)

BUILTIN = {"DARTS_V1": DARTS_V1, "DARTS_V2": DARTS_V2}
_GENOTYPES: dict[str, Genotype] = dict(BUILTIN)

# A name must be writable as a spec value (``darts:genotype=NAME``), so it follows that grammar.
_GENOTYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_FIELDS = Genotype._fields


def genotype_names() -> list[str]:
    return sorted(_GENOTYPES)


def get_genotype(name: str) -> Genotype:
    """The genotype registered as ``name`` (built-in or user-registered)."""
    try:
        return _GENOTYPES[name]
    except KeyError:
        raise SpecError(
            f"unknown DARTS genotype {name!r}; valid: {', '.join(genotype_names())} "
            "(or register one with archs.darts.register_genotype)"
        ) from None


def register_genotype(name: str, genotype: Genotype | Mapping[str, Any]) -> Genotype:
    """Make ``genotype`` buildable as ``darts:genotype=name``; returns the checked genotype.

    Registration lives in this process only: a benchmark worker started by spawning must
    register the same genotype itself. Re-registering a name with the same cells is allowed
    (so a module that registers at import can be imported twice); with different cells it is
    an error, since two results stored under one name would then mean two networks.
    """
    if not isinstance(name, str) or not _GENOTYPE_NAME.match(name):
        raise SpecError(
            f"genotype name {name!r}: expected a letter then letters, digits or _ (at most 64)"
        )
    checked = genotype_from_data(genotype)
    existing = _GENOTYPES.get(name)
    if existing is not None and existing != checked:
        raise SpecError(f"genotype {name!r} is already registered with different cells")
    _GENOTYPES[name] = checked
    return checked


def genotype_from_data(data: Genotype | Mapping[str, Any]) -> Genotype:
    """A checked ``Genotype`` from a mapping with exactly the keys normal, normal_concat,
    reduce, reduce_concat (as JSON or TOML would give it: lists of ``[op, input]`` pairs)."""
    if isinstance(data, Genotype):
        data = data._asdict()
    if not isinstance(data, Mapping):
        raise SpecError(f"a genotype must be a mapping with keys {', '.join(_FIELDS)}")
    keys = set(data)
    if keys != set(_FIELDS):
        extra, missing = sorted(map(str, keys - set(_FIELDS))), sorted(set(_FIELDS) - keys)
        raise SpecError(
            f"genotype keys must be exactly {', '.join(_FIELDS)}"
            + (f"; unknown: {', '.join(extra)}" if extra else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    normal = _pairs("normal", data["normal"])
    reduce = _pairs("reduce", data["reduce"])
    return Genotype(
        normal=normal,
        normal_concat=_concat("normal_concat", data["normal_concat"], len(normal) // 2, lowest=0),
        reduce=reduce,
        # A reduction cell's inputs (states 0, 1) keep the full resolution while its nodes are
        # halved, so concatenating an input would be a shape error: only nodes may be output.
        reduce_concat=_concat("reduce_concat", data["reduce_concat"], len(reduce) // 2, lowest=2),
    )


def _pairs(cell: str, raw: Any) -> tuple[tuple[str, int], ...]:
    if not _is_list(raw) or not raw:
        raise SpecError(f"genotype {cell}: expected a non-empty list of [op, input] pairs")
    if len(raw) % 2:
        raise SpecError(
            f"genotype {cell}: {len(raw)} pairs; each node takes exactly two, so it must be even"
        )
    out = []
    for i, pair in enumerate(raw):
        where = f"genotype {cell}[{i}] (node {i // 2})"
        if not _is_list(pair) or len(pair) != 2:
            raise SpecError(f"{where}: expected an [op, input] pair, got {pair!r}")
        op, index = pair
        if not isinstance(op, str) or op not in OPS:
            raise SpecError(f"{where}: unknown op {op!r}; valid: {', '.join(OPS)}")
        highest = i // 2 + 1  # inputs 0, 1 and the nodes before this one
        if not _is_int(index) or not 0 <= index <= highest:
            raise SpecError(
                f"{where}: input {index!r} is not a state this node can read; "
                f"valid: an integer 0..{highest} (0, 1 = cell inputs, 2+ = earlier nodes)"
            )
        out.append((op, int(index)))
    return tuple(out)


def _concat(key: str, raw: Any, steps: int, *, lowest: int) -> tuple[int, ...]:
    highest = steps + 1
    valid = f"distinct integers {lowest}..{highest}"
    if not _is_list(raw) or not raw:
        raise SpecError(f"genotype {key}: expected a non-empty list of {valid}")
    for index in raw:
        if not _is_int(index) or not lowest <= index <= highest:
            raise SpecError(f"genotype {key}: {index!r} is not a state of this cell; valid: {valid}")
    if len(set(raw)) != len(raw):
        raise SpecError(f"genotype {key}: {list(raw)} repeats a state; valid: {valid}")
    return tuple(int(i) for i in raw)


def _is_list(value: Any) -> bool:
    # range is accepted because the DARTS code writes concat lists as range(2, 6).
    return isinstance(value, (list, tuple, range)) and not isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_data(genotype: Genotype) -> dict[str, Any]:
    """The JSON-ready form ``genotype_from_data`` reads back (lists, not tuples)."""
    return {
        "normal": [list(p) for p in genotype.normal],
        "normal_concat": list(genotype.normal_concat),
        "reduce": [list(p) for p in genotype.reduce],
        "reduce_concat": list(genotype.reduce_concat),
    }
