"""Join per-layer tables of several backends into the per-kind explanation of a speed-up.

Charging rules (why the figures add up): every row's time is charged once. On each backend a
row goes to the kind of the heaviest unit it absorbed (``kinds.anchor_kind``): a convolution
that absorbed its batch norm and ReLU is charged, whole, to ``conv``. PyTorch's rows are single
units, so there each unit keeps its own kind; a kind's ``saved_ms`` is therefore "what PyTorch
spent on it minus what OpenVINO spent on it", and the batch norms OpenVINO folds away show as
batch-norm time saved entirely. Rows that absorbed nothing recognisable are ``other`` and are
listed in ``unmatched``; so are units a backend has no row for (a Dropout it removed).

Coverage is the layer sum over the whole-model median measured in the same worker; outside
80-120% the per-layer figures do not describe what the whole model does and a warning says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.layers.kinds import KINDS, anchor_kind
from harness.layers.matching import duplicate_of, match

COVERAGE_OK = (0.8, 1.2)


@dataclass
class Explanation:
    spec: str
    backends: list[str]
    whole_ms: dict[str, float]
    layer_ms: dict[str, float]
    kinds: list[dict[str, Any]]
    fused: list[dict[str, Any]]
    unmatched: list[dict[str, Any]]
    recovered: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    # Per backend, each row and the units it absorbed, single ones too: which primitive ran a
    # given call site (``layer1.0::add#2``), which ``fused`` alone cannot say.
    claims: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def coverage(self) -> dict[str, float | None]:
        return {b: (self.layer_ms[b] / self.whole_ms[b] if self.whole_ms.get(b) else None)
                for b in self.backends}

    def as_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "backends": self.backends, "coverage": self.coverage,
                "whole_ms": self.whole_ms, "layer_ms": self.layer_ms, "kinds": self.kinds,
                "fused": self.fused, "unmatched": self.unmatched, "recovered": self.recovered,
                "claims": self.claims, "warnings": self.warnings}


def explain(spec: str, units: list[dict[str, Any]], tables: dict[str, dict[str, Any]],
            baseline: str | None = None) -> Explanation:
    """``units``: the model's units (``units.trace_units``); ``tables``: per backend
    ``{"layers": rows, "whole_ms": median}``. The first backend is the baseline by default."""
    backends = list(tables)
    if not backends:
        raise ValueError("explain needs at least one backend's layer table")
    base = baseline if baseline in tables else backends[0]
    backends.remove(base)
    backends.insert(0, base)
    known = {u["name"]: u for u in units}
    charged: dict[str, dict[str, float]] = {}
    unit_cost: dict[str, dict[str, float]] = {}
    fused: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    recovered: list[dict[str, Any]] = []
    absorbed: dict[str, dict[str, list[str]]] = {}
    for b in backends:
        rows = tables[b]["layers"]
        m = match(units, rows)
        absorbed[b] = {row: list(us) for row, us in m.claims.items() if us}
        for name, info in m.phantoms.items():
            known.setdefault(name, info)
        recovered += [{"backend": b, "module": u, "primitive": r, "how": how}
                      for u, r, how in m.recovered]
        row_ms = {r["name"]: float(r["ms"]) for r in rows}
        total = dict(row_ms)
        for guest, host in m.host.items():
            total[host] += total.pop(guest)
        charged[b] = dict.fromkeys(KINDS, 0.0)
        costs = unit_cost[b] = {}
        row_by_name = {r["name"]: r for r in rows}
        for name, ms in total.items():
            claims = m.claims[name]
            charged[b][anchor_kind({known[u]["kind"] for u in claims}) if claims else "other"] += ms
            for u in claims:
                costs[u] = costs.get(u, 0.0) + ms / len(claims)
            if not claims:
                row = row_by_name[name]
                unmatched.append({"backend": b, "what": "primitive", "name": name,
                                  "type": row.get("type"), "ms": {b: ms},
                                  "original_names": row.get("original_names") or []})
            elif len(claims) > 1:
                fused.append({"backend": b, "primitive": name, "type": row_by_name[name].get("type"),
                              "kind": anchor_kind({known[u]["kind"] for u in claims}),
                              "units": claims, "kinds": [known[u]["kind"] for u in claims],
                              "ms": {b: ms}})
        claimed = {u for us in m.claims.values() for u in us}
        for name in m.unclaimed(units):
            twin = duplicate_of(known[name], units, claimed)
            why = (f"computed once with its twin {twin} (same op on the same input)" if twin
                   else "no primitive names it: removed, or fused beyond recovery")
            unmatched.append({"backend": b, "what": "module", "name": name, "why": why,
                              "duplicate_of": twin, "type": known[name]["type"],
                              "kind": known[name]["kind"], "ms": {}})
    for entry in fused + unmatched:  # what the same units cost on every backend
        if entry.get("what") == "primitive":
            continue
        group = entry.get("units") or [entry["name"]]
        for b in backends:
            if b != entry["backend"] or entry.get("what") == "module":
                entry["ms"][b] = sum(unit_cost[b].get(u, 0.0) for u in group)
    layer_ms = {b: sum(charged[b].values()) for b in backends}
    whole = {b: float(tables[b].get("whole_ms") or 0.0) for b in backends}
    kinds = _kind_rows(backends, charged, layer_ms)
    warnings = []
    for b in backends:
        cov = layer_ms[b] / whole[b] if whole[b] else None
        if cov is None or not COVERAGE_OK[0] <= cov <= COVERAGE_OK[1]:
            warnings.append(
                f"{b}: the layer times add up to {layer_ms[b]:.3g} ms against a whole-model "
                f"median of {whole[b]:.3g} ms (coverage {_pct(cov)}, outside 80-120%): the "
                "per-layer figures describe this model's run only roughly")
    return Explanation(spec, backends, whole, layer_ms, kinds, fused, unmatched, recovered,
                       warnings, absorbed)


def _kind_rows(backends: list[str], charged: dict[str, dict[str, float]],
               layer_ms: dict[str, float]) -> list[dict[str, Any]]:
    base, cand = backends[0], (backends[1] if len(backends) > 1 else None)
    saved_total = layer_ms[base] - layer_ms[cand] if cand else 0.0
    rows = []
    for kind in KINDS:
        ms = {b: charged[b][kind] for b in backends}
        if not any(ms.values()):
            continue
        saved = ms[base] - ms[cand] if cand else None
        rows.append({
            "kind": kind, "ms": ms,
            "share": {b: (ms[b] / layer_ms[b] if layer_ms[b] else None) for b in backends},
            "saved_ms": saved,
            "saved_share": (saved / saved_total if saved is not None and saved_total else None),
        })
    return rows


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"
