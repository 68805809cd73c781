"""The header's facts: what machine, which CPU features, versions, precision, threads, counters.

Why these: the speed-up OpenVINO gets over PyTorch depends on the instructions the CPU offers
(AVX-512, AVX512-BF16, AMX), on the libraries' versions, on the precision actually run (OpenVINO
may silently pick bf16) and on the threads; a reader comparing two reports must see them first.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from harness.counters.roofs import gemm_roofs, machine_roof
from reports import fmt

_FEATURES = (("AVX-512", ("avx512f",)), ("AVX512-VNNI", ("avx512_vnni",)),
             ("AVX512-BF16", ("avx512_bf16",)), ("AMX", ("amx_tile", "amx_bf16")))


def _m(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def cpu_features(machine: Mapping[str, Any]) -> str | None:
    isa = _m(machine.get("isa"))
    flags = set(_m(machine.get("cpu")).get("flags") or ())
    if not isa and not flags:
        return None
    have = lambda names: any(isa.get(n) or n in flags for n in names)  # noqa: E731
    return ", ".join(f"{label} {'yes' if have(names) else 'no'}" for label, names in _FEATURES)


def llc_bytes(machine: Mapping[str, Any]) -> float | None:
    caches = _m(machine.get("caches"))
    for k in ("l3", "llc", "l2"):
        if isinstance(caches.get(k), (int, float)) and caches[k] > 0:
            return float(caches[k])
    return None


def peaks(machine: Mapping[str, Any], cells) -> str | None:
    """Measured roofs (``accelbench peak``: ``{"gemm_gflops": {precision: {backend: x}},
    "bandwidth_gbs": y, "<key>_ci95": ...}``; older peaks ``{"gflops": {backend: x}}``, f32),
    from the fingerprint or any cell's meta; CIs shown where stored, and per precision the
    machine's roof (the best any runtime reached)."""
    found = _m(machine.get("peaks") or machine.get("peak"))
    if not found:
        found = next((_m(c.meta.get("peaks")) for c in cells if _m(c.meta.get("peaks"))), {})
    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731

    def ci(v: Any) -> str:
        return f" [{v[0]:.4g}, {v[1]:.4g}]" if isinstance(v, (list, tuple)) and len(v) == 2 \
            and all(num(x) for x in v) else ""

    parts = []
    cis = _m(found.get("gemm_gflops_ci95")) or {"f32": _m(found.get("gflops_ci95"))}
    for p, by in gemm_roofs(found).items():  # old peaks: f32 only, under "gflops"
        inner = [f"{b} {x:.4g}{ci(_m(cis.get(p)).get(b))}" for b, x in by.items()]
        best = machine_roof(found, p)
        top = f" (machine's roof {best[0]:.4g}, {best[1]})" if best and len(by) > 1 else ""
        parts.append(f"GEMM GFLOP/s {p}: " + ", ".join(inner) + top)
    if num(bw := found.get("bandwidth_gbs")):
        parts.append(f"bandwidth_gbs {bw:.4g}{ci(found.get('bandwidth_ci95'))}")
    levels = _m(found.get("cache_bandwidth_gbs"))
    inner = [f"{lv.upper()} {x:.4g}{ci(_m(found.get('cache_bandwidth_ci95')).get(lv))}"
             for lv, x in sorted(levels.items()) if num(x)]
    if inner:
        parts.append("cache triads GB/s: " + ", ".join(inner))
    how = [f"{found['threads']} threads" if num(found.get("threads")) else "",
           f"best of {found['rounds']} rounds" if num(found.get("rounds")) else "",
           time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(found["measured_at"]))
           if num(found.get("measured_at")) else ""]
    if parts and any(how):  # how the roofs were measured; the rounds themselves stay in the store
        parts.append("measured with " + ", ".join(h for h in how if h))
    if parts and machine.get("peaks_from"):
        parts.append(f"from {machine['peaks_from']}")
    return "; ".join(parts) or None


def header_fields(report) -> list[tuple[str, str]]:
    m = _m(report.machine)
    cpu = _m(m.get("cpu"))
    machine = report.machine_brand or "unknown CPU"
    if cpu.get("count"):
        machine += f", {cpu['count']} logical cores"
    if report.machine_id:
        machine += f" (id {report.machine_id})"
    out = [("Machine", machine)]
    if (feat := cpu_features(m)) is not None:
        out.append(("CPU features", feat))
    caches = _m(m.get("caches"))
    if caches:
        out.append(("Caches", ", ".join(f"{k.upper()} {fmt.si(v, 'B')}" for k, v in caches.items()
                                        if isinstance(v, (int, float)))))
    versions = _m(m.get("versions"))
    if versions:
        out.append(("Versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    cells = report.cells
    precs = sorted({c.key.precision for c in cells})
    eff = sorted({f"{c.key.backend} ran {c.meta.get('precision_effective')}" for c in cells
                  if c.meta.get("precision_effective") not in (None, c.key.precision)})
    if precs:
        out.append(("Precision", ", ".join(precs) + (f" (but {'; '.join(eff)})" if eff else
                                                     " (read back from every backend)")))
    threads = sorted({c.key.threads for c in cells})
    if threads:
        out.append(("Threads", ", ".join(map(str, threads))))
    scenarios = sorted({c.key.scenario for c in cells}, key=lambda s: (s != "latency", s))
    batches = sorted({c.batch for c in cells})
    if scenarios not in ([], ["latency"]) or batches not in ([], [1]):
        # issue 24: say up front that this session is not one request at a time only
        out.append(("Scenarios", ", ".join(scenarios) + f"; batch {', '.join(map(str, batches))}"))
    sources = sorted({str(_m(c.meta.get("counters")).get("source")) for c in cells
                      if _m(c.meta.get("counters")).get("source")})
    if sources:
        avail = _m(m.get("counters"))
        hw = _m(avail.get("perf"))
        note = "" if not hw or hw.get("ok") else " (hardware counters unavailable here)"
        out.append(("Counter source", ", ".join(sources) + note))
    if (pk := peaks(m, cells)) is not None:
        out.append(("Measured peaks", pk))
    return out
