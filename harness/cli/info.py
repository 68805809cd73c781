"""Commands that describe rather than measure: ``archs``, ``profile``, ``machine``."""

from __future__ import annotations

import argparse
from typing import Any

import archs
from harness.cli.common import UsageError, add_store_option, plural, print_json
from harness.run.workload_text import MODEL_PREFIX, canonical_workload


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("archs", help="list families, their parameters, defaults and ranges")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_archs)

    p = sub.add_parser("profile", help="FLOPs, params, working set and per-layer table of a spec")
    p.add_argument("spec", help="e.g. mobilenetv2:width=0.75,res=160, or @my_net.py:make "
                                "for your own model (as run --model takes it)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--limit", type=int, default=None,
                   help="show at most N layers in the table (default: all)")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("machine", help="the machine fingerprint recorded with every result")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_store_option(p, "where `accelbench peak` stored the machine's roofs: ")
    p.set_defaults(func=cmd_machine)


def cmd_archs(args: argparse.Namespace) -> int:
    families = archs.list_archs()
    if args.json:
        print_json([f.as_json() for f in families])
        return 0
    for fam in families:
        print(f"{fam.name}: {fam.doc}")
        for p in fam.params:
            default = "derived" if p.default is None else p.default
            doc = f"  {p.doc}" if p.doc else ""
            print(f"    {p.describe():<44} default {default}{doc}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from archs.profiling import format_table

    if args.limit is not None and args.limit < 0:
        raise UsageError(f"--limit must be 0 or more, got {args.limit}")
    if args.spec.startswith(MODEL_PREFIX):
        # The user's own model, built and profiled here as `run --model` does in its worker.
        from archs.custom import load_model
        from archs.profiling import profile_module

        ref = canonical_workload(args.spec)[len(MODEL_PREFIX):]
        model, example = load_model(ref)
        prof = profile_module(model, example, MODEL_PREFIX + ref)
    else:
        prof = archs.profile(args.spec)
    if args.json:
        print_json(prof.as_json())
        return 0
    print(format_table(prof, limit=args.limit))
    return 0


def cmd_machine(args: argparse.Namespace) -> int:
    from harness.backends import capabilities
    from harness.cli.peak import stored_peak
    from harness.machine.fingerprint import fingerprint

    fp = fingerprint()
    fp["peak"] = stored_peak(args.store, fp["id"])
    fp["runnable"] = capabilities()  # this install, now: not part of the stored fingerprint
    if args.json:
        print_json(machine_json(fp))
        return 0
    print(machine_text(fp))
    print(peak_text(fp["peak"], args.store.cli))
    return 0


def peak_text(peak: dict[str, Any] | None, store: Any) -> str:
    """The stored roofs in words: GFLOP/s per precision and backend (with the machine's, the
    best of them), GB/s per memory level, when measured."""
    import time

    if not peak:
        return f"peak     not measured (run `accelbench peak --store {store}`)"
    from harness.counters.roofs import gemm_roofs, machine_roof

    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    gemm = "; ".join(  # per precision; the machine's roof is the best any runtime reached
        f"{p} " + ", ".join(f"{b} {v:.4g}" for b, v in by.items())
        + (f" (machine {best[0]:.4g})" if (best := machine_roof(peak, p)) and len(by) > 1 else "")
        for p, by in gemm_roofs(peak).items())
    levels = [("DRAM", peak.get("bandwidth_gbs"))] + [
        (k.upper(), v) for k, v in sorted((peak.get("cache_bandwidth_gbs") or {}).items())]
    triads = ", ".join(f"{k} {v:.4g}" for k, v in levels if num(v))
    when = (time.strftime(" (measured %Y-%m-%d %H:%M UTC", time.gmtime(peak["measured_at"]))
            + (f", {peak['threads']} threads)" if num(peak.get("threads")) else ")")
            if num(peak.get("measured_at")) else "")
    return (f"peak     GEMM GFLOP/s: {gemm or '-'}; triad GB/s: {triads or '-'}{when}"
            + (f"\n         from {peak['from']}" if peak.get("from") else ""))


def machine_json(fp: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint with units in the names a script reads (the stored keys stay as well:
    ``caches.l2`` is bytes, ``cpu.hz`` the clock)."""
    out = dict(fp)
    caches = dict(fp.get("caches") or {})
    for k in ("l1d", "l2", "l3"):
        if k in caches:
            caches[f"{k}_bytes"] = caches[k]
    out["caches"] = caches
    cpu = dict(fp.get("cpu") or {})
    if "hz" in cpu:
        cpu["clock_hz"] = cpu["hz"]
    out["cpu"] = cpu
    return out


def machine_text(fp: dict[str, Any]) -> str:
    """The fingerprint as a person reads it: sizes in KiB/MiB, one device a line, no reprs."""
    cpu = fp.get("cpu", {})
    hz = cpu.get("hz")
    clock = f", {hz / 1e9:.2f} GHz" if isinstance(hz, (int, float)) and hz else ""
    lines = [f"machine  {fp['id']} ({fp.get('hostname')})",
             f"cpu      {cpu.get('brand_raw')}, {plural(cpu.get('count') or 0, 'logical core')}"
             f"{clock}"]
    arch = fp.get("microarch") if isinstance(fp.get("microarch"), dict) else None
    if arch:
        figures = f"{arch.get('vendor')} family {arch.get('family')} model {arch.get('model')}"
        lines.append(f"uarch    {arch.get('name') or 'unknown'} ({figures}, from CPUID)")
    caches = [f"{k} {size_text(v)}" for k, v in fp.get("caches", {}).items() if isinstance(v, int)]
    source = fp.get("caches", {}).get("source")
    lines.append(f"caches   {', '.join(caches) or 'unknown'}" + (f" (from {source})" if source else ""))
    if isinstance(fp.get("memory_bytes"), int):
        lines.append(f"memory   {size_text(fp['memory_bytes'])}")
    isa = [k for k, v in fp.get("isa", {}).items() if v]
    lines.append(f"isa      {' '.join(isa) or '-'}")
    devices = fp.get("openvino_devices") or []
    if not devices:
        lines.append("openvino no devices")
    for i, d in enumerate(devices):
        head = "openvino" if i == 0 else ""
        if isinstance(d, dict):
            caps = ", ".join(map(str, d.get("capabilities") or []))
            lines.append(f"{head:<8} {d.get('name')}: {d.get('full_name') or ''}"
                         + (f" ({caps})" if caps else ""))
        else:
            lines.append(f"{head:<8} {d}")
    versions = fp.get("versions") or {}
    lines.append("versions " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    for i, (name, c) in enumerate((fp.get("runnable") or {}).items()):
        if not c.get("ok"):
            text = f"cannot run: {c.get('why')}"
        else:
            precs = c.get("precisions") or {}
            text = ", ".join(p for p, v in precs.items() if v.get("ok")) or "-"
            nots = [f"{p}: {v.get('why')}" for p, v in precs.items() if not v.get("ok")]
            text += f" (not {'; '.join(nots)})" if nots else ""
        lines.append(f"{'runs' if i == 0 else '':<8} {name}: {text}")
    for name, c in fp.get("counters", {}).items():
        lines.append(f"counters {name}: {'ok' if c.get('ok') else 'unavailable'} - {c.get('why')}")
    return "\n".join(lines)


def size_text(n: int) -> str:
    """``32 KiB``, ``1 MiB``, ``480 MiB``, ``1.5 GiB``: the largest unit that keeps a number >= 1."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            v = n / scale
            return f"{v:.0f} {unit}" if v == int(v) or v >= 100 else f"{v:.1f} {unit}"
    return f"{n} B"
