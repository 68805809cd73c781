"""Map each backend's layer rows (primitives) onto the model's units.

Names first, data flow where names fail. OpenVINO's PyTorch frontend names a node after the
module that made it (``__module.features.0/aten::_convolution/Convolution``), and a compiled
primitive lists the nodes it absorbed in ``originalLayersNames``. That is a convention, not an
API, and it breaks exactly where fusion happens: with batch norm folded into a convolution the
primitive is called ``Multiply_3902`` and lists the batch norm and the ReLU but not the
convolution. So a primitive with such an unresolved name takes, in addition, the units that no
row claimed and whose output (in PyTorch's data flow) went into a unit it did claim; then, for
what is still unclaimed, units fed by the units of its input primitives. Rows that absorbed no
name at all (OpenVINO's inserted Reorders) are charged to the primitive they feed. A repeated
call of one op in one forward (``aten::add/Add_1``) goes to its own call site's unit
(``layer1.0::add#2``) as ``naming.Resolver`` numbers them; a name whose call site cannot be told
is unresolved, and so is placed by data flow as a renamed primitive is.

Nothing is dropped: rows that claim no unit and units no row claims are returned with their time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.layers.kinds import CONVOLUTION_KINDS, VANISHING, kind_of_op
from harness.layers.naming import Resolver, op_of_node, parse_unit

_WEIGHTLESS = {"pooling", "activation", "add", "concat"}
# The kinds a convolution or linear primitive computes; one that claims none of them has lost
# its name (``_recover``). With the batch norms they absorb: the kinds that hold weights.
_COMPUTING_KINDS = {*CONVOLUTION_KINDS, "linear"}
_WEIGHTED_KINDS = _COMPUTING_KINDS | {"batchnorm"}
_WEIGHTED = {"PReLU"}  # an activation module with a learned slope
_WEIGHTED_PRIMITIVES = {"Convolution", "GroupConvolution", "FullyConnected"}


@dataclass
class Match:
    """``claims[row]``: the units a row absorbed; ``host[row]``: the row an unnamed row (a
    Reorder) is charged to; ``recovered``: ``(unit, row, how)`` for units found by data flow;
    ``phantoms``: units only a backend's names mention (an op PyTorch did not time separately)."""

    claims: dict[str, list[str]] = field(default_factory=dict)
    host: dict[str, str] = field(default_factory=dict)
    recovered: list[tuple[str, str, str]] = field(default_factory=list)
    phantoms: dict[str, dict[str, Any]] = field(default_factory=dict)
    unresolved: dict[str, list[str]] = field(default_factory=dict)

    def unclaimed(self, units: list[dict[str, Any]]) -> list[str]:
        taken = {u for us in self.claims.values() for u in us}
        return [u["name"] for u in units if u["name"] not in taken]


def resolve(original: str, unit_names: set[str],
            originals: list[str] | None = None) -> str | None:
    """The unit an original node name refers to, or None when the name follows no convention.
    ``originals``: every name the backend's rows mention (how repeated calls are numbered);
    by default just this one."""
    return Resolver([{"name": n} for n in unit_names],
                    originals if originals is not None else [original])(original)


def match(units: list[dict[str, Any]], rows: list[dict[str, Any]]) -> Match:
    """Which units each row of one backend absorbed. ``units`` as from ``units.trace_units``
    (name, type, kind, inputs, order); ``rows`` as a backend's ``layer_times`` (name,
    original_names, inputs)."""
    names = {u["name"] for u in units}
    resolve_name = Resolver(units, [o for row in rows for o in row.get("original_names") or []])
    out = Match()
    for row in rows:
        claimed: list[str] = []
        unresolved: list[str] = []
        for original in row.get("original_names") or []:
            unit = resolve_name(original)
            if unit is None:
                unresolved.append(original)
                continue
            if unit not in names and unit not in out.phantoms:
                op = unit.rpartition("::")[2]
                out.phantoms[unit] = {"name": unit, "type": f"fn:{op}", "kind": kind_of_op(op),
                                      "inputs": [], "ms": 0.0}
            if unit not in claimed:
                claimed.append(unit)
        out.claims[row["name"]] = claimed
        if unresolved:
            out.unresolved[row["name"]] = unresolved
    _host_unnamed(rows, out)
    _recover(units, rows, out)
    return out


def _host_unnamed(rows: list[dict[str, Any]], out: Match) -> None:
    """Rows that absorbed no node of the model go to the row they feed (else the one feeding
    them): a Reorder before a convolution is part of that convolution's cost."""
    consumers: dict[str, list[str]] = {}
    for row in rows:
        for src in row.get("inputs") or []:
            consumers.setdefault(src, []).append(row["name"])
    for row in rows:
        name = row["name"]
        if out.claims[name] or out.unresolved.get(name):
            continue
        seen, frontier = {name}, list(consumers.get(name, [])) + list(row.get("inputs") or [])
        while frontier:
            cand = frontier.pop(0)
            if cand in seen or cand not in out.claims:
                continue
            seen.add(cand)
            if out.claims[cand]:
                out.host[name] = cand
                break
            frontier.extend(consumers.get(cand, []))


def _recover(units: list[dict[str, Any]], rows: list[dict[str, Any]], out: Match) -> None:
    """Give renamed primitives the units their names lost, following PyTorch's data flow.

    Each unresolved name stands for one node the primitive lost the module of, so a primitive
    recovers at most that many units: first units whose output feeds a unit it claims by name
    (the convolution before the batch norm it absorbed), then units fed by what its input
    primitives hold, then call sites of an op its unresolved names name, fed by what it holds
    itself (the second of two multiplies whose numbers could not be shared out).
    """
    named: dict[str, list[str]] = {}
    for row, claimed in out.claims.items():
        for name in claimed:
            named.setdefault(name, []).append(row)
    owner = {name: list(rs) for name, rs in named.items()}
    consumers: dict[str, list[str]] = {}
    for u in units:
        for src in u["inputs"]:
            consumers.setdefault(src, []).append(u["name"])
    inputs = {row["name"]: set(row.get("inputs") or []) for row in rows}
    budget = {row: len(names) for row, names in out.unresolved.items()}

    def free(u: dict[str, Any]) -> bool:
        return u["name"] not in owner and u["type"] not in VANISHING

    def claim(unit: str, row: str, how: str) -> None:
        out.claims[row].append(unit)
        owner.setdefault(unit, []).append(row)
        budget[row] -= 1
        out.recovered.append((unit, row, how))

    def fed(u: dict[str, Any], held: dict[str, list[str]]) -> set[str]:
        """The rows with names left to recover that hold (in ``held``) a unit ``u`` feeds."""
        return {r for c in consumers.get(u["name"], []) for r in held.get(c, [])
                if budget.get(r, 0) > 0}

    for u in filter(free, units):  # downstream: its output went into a renamed primitive
        cands = fed(u, named)
        if len(cands) == 1:
            claim(u["name"], cands.pop(), "its output feeds this primitive")
    # A convolution primitive that still holds no convolution lost that name as well: a batch
    # norm with a mean and shift of 0 (an untrained model's) leaves no node of its own, and the
    # primitive names only its multiply and the add it absorbed. Follow the data flow back
    # through what was recovered (convolution -> batch norm -> named add), weighted units only.
    kind_of = {u["name"]: u.get("kind") for u in units}
    bonus = [row["name"] for row in rows
             if row["name"] in budget and row.get("type") in _WEIGHTED_PRIMITIVES
             and not any(kind_of.get(n) in _COMPUTING_KINDS for n in out.claims[row["name"]])]
    for r in bonus:
        budget[r] += 1
    recovered = True
    while recovered:
        recovered = False
        for u in (u for u in units if free(u) and u.get("kind") in _WEIGHTED_KINDS):
            cands = fed(u, owner)
            if len(cands) == 1:
                claim(u["name"], cands.pop(), "its output feeds this primitive")
                recovered = True
    for r in bonus:  # what the lost convolution did not use goes back
        budget[r] = max(0, budget[r] - 1)
    for u in filter(free, units):  # upstream: fed by what a renamed primitive's inputs hold
        fed_by = {r for src in u["inputs"] for r in owner.get(src, [])}
        cands = {r for r, left in budget.items() if left > 0 and fed_by & inputs.get(r, set())}
        if len(cands) == 1:
            claim(u["name"], cands.pop(), "it consumes this primitive's input")
    pending = {row: {key for name in names for key in op_of_node(name)}
               for row, names in out.unresolved.items()}
    for u in filter(free, units):  # chained: a call site its row's names could not tell apart
        site = parse_unit(u["name"])
        fed_by = {r for src in u["inputs"] for r in owner.get(src, [])}
        cands = {r for r in fed_by if budget.get(r, 0) > 0
                 and site is not None and site[:2] in pending[r]}
        if len(cands) == 1:
            claim(u["name"], cands.pop(), "it consumes what this primitive computes")


def duplicate_of(unit: dict[str, Any], units: list[dict[str, Any]], claimed: set[str]) -> str | None:
    """A claimed unit of the same type on the same inputs: OpenVINO computes such twins once
    (common subexpression elimination), so the unit has no primitive of its own. Inputs count
    as the same when they are twins themselves: in a DARTS reduction cell ``s2 + pool(s1)`` is
    computed twice through different (twin) pooling modules, and OpenVINO keeps one add."""
    if unit["type"] in VANISHING:
        return None  # removed, not computed once: no twin to name
    twin = _twins(units)
    for other in units:
        if (other["name"] in claimed and other["name"] != unit["name"]
                and twin[other["name"]] == twin[unit["name"]]):
            return other["name"]
    return None


def _twins(units: list[dict[str, Any]]) -> dict[str, str]:
    """Each unit's first twin (itself if none): the first unit of its type on the same inputs.
    For units that hold no weights (pooling, activations, adds, concats, functional ops) the
    inputs are compared as their own first twins, and a module that computes nothing
    (``Identity``) is its input's twin. A convolution, linear layer or batch norm has none:
    two of them on one tensor differ by their weights."""
    first: dict[tuple[Any, ...], str] = {}
    twin: dict[str, str] = {}
    for u in units:
        name, inputs = u["name"], u["inputs"]
        if u["type"] in VANISHING:
            twin[name] = twin.get(inputs[0], inputs[0]) if len(inputs) == 1 else name
            continue
        if u.get("kind") in _WEIGHTED_KINDS or u["type"] in _WEIGHTED:
            twin[name] = name
            continue
        free = u["type"].startswith("fn:") or u.get("kind") in _WEIGHTLESS
        key = (u["type"], *((twin.get(i, i) for i in inputs) if free else inputs))
        twin[name] = first.setdefault(key, name)
    return twin
