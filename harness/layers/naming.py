"""How a functional op's call site is named, here and by OpenVINO, and how one maps to the other.

Why call sites and not ops: a forward that calls ``F.relu`` four times has four ReLUs, which
OpenVINO may fuse into four different primitives. Named ``block::relu`` once, they collapsed into
one unit that showed up in several fused groups and could not be told apart. So each call site
of an op in a module's forward is a unit of its own, numbered in call order within one forward
pass: ``block::relu``, ``block::relu#2``, ... (the first keeps the bare name, so a forward that
calls an op once reads as before). Ops called in the model's own ``forward`` are named
``<model>::relu`` rather than ``::relu``.

OpenVINO's PyTorch frontend names a node ``__module.block/aten::relu/Relu`` and makes repeated
names unique by suffixing ``_1``, ``_2``... per full name (so per node type an op makes), in the
order of its topological sort, not in call order: depth first from the outputs, the last output
first, a node's inputs in order (seen on OpenVINO 2026.4: in ``relu(b) ... relu(a) ... a + b``
the ReLU on ``a`` is ``Relu``, the one on ``b`` ``Relu_1``). So the tracers also record each
unit's place in that order (``order``, from ``topological_order`` over PyTorch's data flow), and
the ``k``-th suffix goes to the call site ranked ``k``-th. Names whose numbers cannot be divided
evenly among the call sites are left unresolved, and ``matching`` places them by data flow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from harness.layers.kinds import normalize_op

ROOT = "<model>"  # the scope of ops called in the model's own forward; no module path looks so

_NAME = re.compile(r"^__module(?:\.(?P<path>[^/]*))?/(?P<rest>.*)$")
_ATEN = re.compile(r"aten::(?P<op>\w+)(?:/(?P<node>.*))?")
_SUFFIX = re.compile(r"^(?P<base>.*?)(?:_(?P<n>\d+))?$")
# The aten op TorchScript records for a Python-level call PyTorch's function mode sees.
_ALIASES = {"slice": "getitem", "select": "getitem", "index": "getitem", "reshape": "view",
            "concat": "cat"}


def op_unit(scope: str, op: str, site: int = 1) -> str:
    """The unit of the ``site``-th call (1-based) of ``op`` in the forward of module ``scope``
    (``""`` for the model itself)."""
    return f"{scope or ROOT}::{op}" + (f"#{site}" if site > 1 else "")


def parse_unit(name: str) -> tuple[str, str, int] | None:
    """``(scope, op, site)`` of a functional unit's name; None for a module's path."""
    scope, sep, tail = name.rpartition("::")
    if not sep:
        return None
    op, _, site = tail.partition("#")
    return ("" if scope in (ROOT, "") else scope), op, int(site) if site.isdigit() else 1


class CallSites:
    """Numbers the calls of each op in each module's forward; ``reset`` at each forward pass so
    that every pass gives the same call the same name."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], int] = {}

    def name(self, scope: str, op: str) -> str:
        site = self._seen[scope, op] = self._seen.get((scope, op), 0) + 1
        return op_unit(scope, op, site)

    def reset(self) -> None:
        self._seen.clear()


def topological_order(units: list[dict[str, Any]], outputs: list[str]) -> dict[str, int]:
    """Each unit's rank in OpenVINO's topological order, over the units' data flow (``inputs``)
    from the units that produced the model's outputs. Units no output depends on have none:
    the converted model has no node for them."""
    inputs = {u["name"]: u["inputs"] for u in units}
    rank: dict[str, int] = {}
    entered: set[str] = set()
    for root in reversed(outputs):  # OpenVINO's stack takes the last output first
        if root not in inputs or root in entered:
            continue
        entered.add(root)
        stack: list[tuple[str, int]] = [(root, 0)]  # (unit, next input to look at)
        while stack:
            name, i = stack[-1]
            deps = inputs[name]
            if i < len(deps):
                stack[-1] = (name, i + 1)
                dep = deps[i]
                if dep in inputs and dep not in entered:  # a module called twice may loop
                    entered.add(dep)
                    stack.append((dep, 0))
            else:
                stack.pop()
                rank[name] = len(rank)
    return rank


class Resolver:
    """Maps a backend's original node names onto unit names.

    ``units``: dicts with ``name`` and, from the tracers, ``order`` (``topological_order``);
    without it the call sites are taken in call order. ``originals`` are all the names one
    backend's rows mention: how many nodes of one type a call made is read off the highest
    suffix seen (``Multiply_3`` over two call sites: two Multiplies per call).
    """

    def __init__(self, units: Iterable[dict[str, Any]], originals: Iterable[str] = ()) -> None:
        units = list(units)
        self.names = {u["name"] for u in units}
        self.sites: dict[tuple[str, str], list[str]] = {}
        rank: dict[str, tuple[float, int]] = {}
        for u in units:
            parsed = parse_unit(u["name"])
            if parsed is not None:
                self.sites.setdefault(parsed[:2], []).append(u["name"])
                order = u.get("order")
                rank[u["name"]] = (float("inf") if order is None else order, parsed[2])
        for names in self.sites.values():
            names.sort(key=rank.__getitem__)
        self.nodes: dict[tuple[str, str, str], int] = {}  # (path, aten op, node base) -> count
        for original in originals:
            parsed_node = _node(original)
            if parsed_node is not None:
                path, op, base, n = parsed_node
                key = (path, op, base)
                self.nodes[key] = max(self.nodes.get(key, 0), n + 1)

    def __call__(self, original: str) -> str | None:
        """The unit an original node name refers to; None when the name follows no convention
        or its call site cannot be told."""
        parsed = _node(original)
        if parsed is None:
            if original in self.names:
                return original
            m = _NAME.match(original)
            path = (m.group("path") or "") if m is not None else None
            return path if path is not None and path in self.names else None
        path, op, base, n = parsed
        if path in self.names:
            return path
        key = (path, op)
        if key not in self.sites and (path, _ALIASES.get(op, op)) in self.sites:
            key = (path, _ALIASES[op])
        sites = self.sites.get(key)
        if not sites:
            return op_unit(path, op)  # a phantom: an op PyTorch did not time on its own
        if len(sites) == 1:
            return sites[0]
        total = self.nodes.get((path, op, base), n + 1)
        per_call = 1 if total <= len(sites) else total // len(sites)
        if total > len(sites) and total % len(sites):
            return None
        index = n // per_call
        return sites[index] if index < len(sites) else None


def op_of_node(original: str) -> set[tuple[str, str]]:
    """The ``(scope, op)`` keys of units an OpenVINO node name may stand for (the op and its
    PyTorch-side alias: ``aten::slice`` is a ``getitem``); empty for a name of no convention."""
    parsed = _node(original)
    if parsed is None:
        return set()
    path, op = parsed[:2]
    return {(path, op), (path, _ALIASES.get(op, op))}


def _node(original: str) -> tuple[str, str, str, int] | None:
    """``(module path, op, node type, suffix)`` of ``__module.P/aten::op/Type_N``; None for a
    name that follows no such convention (``Multiply_3902``)."""
    m = _NAME.match(original)
    if m is not None:
        path, rest = m.group("path") or "", m.group("rest")
    elif original.startswith("aten::"):
        path, rest = "", original
    else:
        return None
    found = _ATEN.search(rest)
    if found is None:
        return None
    suffix = _SUFFIX.match(found.group("node") or "")
    assert suffix is not None  # the pattern matches every string
    return path, normalize_op(found.group("op")), suffix.group("base"), int(suffix.group("n") or 0)


__all__ = ["ROOT", "CallSites", "Resolver", "op_of_node", "op_unit", "parse_unit",
           "topological_order"]
