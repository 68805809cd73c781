"""``accelbench peak``: measure the machine's roofs and store them with the machine.

Also the ``peak`` part of ``accelbench machine --store``: the stored roofs, read-only.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    from harness.cli.common import add_store_option

    p = sub.add_parser("peak", help="measure attainable GEMM GFLOP/s per runtime and precision "
                       "and memory bandwidth from DRAM, L3 and L2 (the roofline's roofs) and store "
                       "them with the machine")
    add_store_option(p)
    p.add_argument("--json", action="store_true", help="print the measured peaks as JSON")
    p.add_argument("--threads", type=int, help="threads (default: the sessions' default, all cores)")
    p.add_argument("--backends", help="comma list (default: every backend and variant this "
                   "install runs, as `accelbench machine` lists them)")
    p.add_argument("--precisions", help="comma list of f32, bf16, int8 (default: all; a backend "
                   "without a path for one, or a CPU without bf16, is skipped with the reason)")
    p.add_argument("--gemm-n", type=int, default=2048, metavar="N", help="GEMM size N x N x N")
    p.add_argument("--seconds", type=float, default=2.0, help="timing per GEMM (at least 10 repeats)")
    p.add_argument("--rounds", type=int, default=3,
                   help="measure every roof this many times, interleaved, and keep the best "
                   "(default 3: on a shared machine one run can land in a slow spell)")
    p.add_argument("--triad-mib", type=float, metavar="MiB",
                   help="triad array size (default: 4x the last-level cache where memory allows)")
    p.set_defaults(func=cmd_peak)


def cmd_peak(args: argparse.Namespace) -> int:
    from harness.backends import PRECISIONS, split_backend_list
    from harness.cli.common import UsageError, print_json
    from harness.machine import peaks_home
    from harness.machine.fingerprint import fingerprint
    from harness.machine.peak import default_backends, measure_peaks
    from harness.run.config import default_threads
    from harness.store import Store

    threads = args.threads or default_threads()
    if threads < 1 or not 64 <= args.gemm_n <= 32768 or args.seconds <= 0 or args.rounds < 1:
        raise UsageError("peak: --threads must be >= 1, --gemm-n from 64 to 32768, --seconds > 0, "
                         "--rounds >= 1")
    precisions = ([p.strip() for p in args.precisions.split(",") if p.strip()]
                  if args.precisions else list(PRECISIONS))
    if not precisions or any(p not in PRECISIONS for p in precisions):
        raise UsageError(f"peak: --precisions takes a comma list of {', '.join(PRECISIONS)}")
    backends = split_backend_list(args.backends) if args.backends else default_backends()
    elements = int(args.triad_mib * 2**20 / 8) if args.triad_mib else None
    machine = fingerprint()
    with Store.open(args.store) as store:  # fails before the minutes of measuring, not after
        store.add_machine(machine["id"], machine)
    peaks = measure_peaks(machine, threads, backends, gemm_n=args.gemm_n,
                          gemm_seconds=args.seconds, rounds=args.rounds,
                          triad_elements_override=elements, precisions=precisions)
    with Store.open(args.store) as store:
        store.put_peak(machine["id"], peaks, measured=peaks["measured_at"])
    home = peaks_home.save(machine["id"], peaks)  # where every other store finds them
    if args.json:
        print_json(peaks)
        return 0
    print(f"machine {machine['id']}: {threads} threads (measured while the machine may be shared; "
          f"1-min load {peaks['detail']['loadavg']})")
    for line in gemm_lines(peaks):
        print(line)
    tri = peaks["detail"]["triad"]
    print(f"  triad DRAM      {_ci(tri['gbs'])} GB/s ({tri['sized']}; {_rounds(tri)})")
    for level, t in (peaks["detail"].get("cache_triads") or {}).items():
        print(f"  triad {level.upper():<9} {_ci(t['gbs'])} GB/s ({t['sized']}; {_rounds(t)})")
    print(f"stored in {args.store}" + (f" and in {home}, where reports from any store on this "
                                       f"machine find them" if home else ""))
    return 0


def gemm_lines(peaks: dict[str, Any]) -> list[str]:
    """The GEMM roofs in words, per precision: each runtime's with its share of the machine's
    roof (the best at that precision), then the pairs skipped and why."""
    from harness.counters.roofs import machine_roof

    out = []
    width = max((len(b) for by in peaks["detail"]["gemm"].values() for b in by), default=10)
    for p, by in peaks["detail"]["gemm"].items():
        best = machine_roof(peaks, p)
        for name, g in by.items():
            if "error" in g or not g.get("gflops"):
                continue
            share = (f", {g['gflops']['median'] / best[0]:.0%} of the machine's"
                     if best and best[1] != name else ", the machine's roof" if best else "")
            out.append(f"  GEMM {p:<4} {name:<{width}} {_ci(g['gflops'])} GFLOP/s "
                       f"({g['n']}^3{share}; {_rounds(g)})")
    for p, by in (peaks.get("gemm_skipped") or {}).items():
        for name, why in by.items():
            out.append(f"  GEMM {p:<4} {name:<{width}} skipped: {why}")
    return out


def _rounds(measured: dict[str, Any]) -> str:
    medians = measured.get("rounds") or []
    if len(medians) < 2:
        return "one round"
    shown = ", ".join("failed" if m is None else f"{m:.1f}" for m in medians)
    return f"best of {len(medians)} rounds: {shown}"


def _ci(summary: dict[str, Any]) -> str:
    ci = summary.get("ci95")
    return f"{summary['median']:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def stored_peak(ref, machine_id: str) -> dict[str, Any] | None:  # noqa: ANN001 - a StoreRef
    """The latest stored peaks of a machine as ``accelbench machine`` shows them — the store's,
    else the per-machine file (``harness.machine.peaks_home``) — or None (also when the store
    does not exist yet: a file not written, a database without tables)."""
    from harness.machine import peaks_home
    from harness.store import Store, StoreError

    peak, where = None, None
    if ref.path is None or ref.path.exists():
        try:
            store = Store.open(ref, create=False, readonly=True)
        except StoreError as e:
            if not str(e).startswith("no store at"):
                raise
        else:
            with store:
                peak, where = store.peaks(machine_id), ref.cli
    if peak is None:
        peak, where = peaks_home.load(machine_id), str(peaks_home.peaks_file(machine_id))
    if peak is None:
        return None
    from harness.counters.roofs import gemm_roofs, machine_roof

    roofs = gemm_roofs(peak)
    machine = {p: machine_roof(peak, p) for p in roofs}
    return {"gflops": peak.get("gflops"), "bandwidth_gbs": peak.get("bandwidth_gbs"),
            "gemm_gflops": roofs, "gemm_skipped": peak.get("gemm_skipped") or {},
            "machine_gflops": {p: {"gflops": v[0], "backend": v[1]}
                               for p, v in machine.items() if v},
            "gflops_ci95": peak.get("gflops_ci95"), "bandwidth_ci95": peak.get("bandwidth_ci95"),
            "cache_bandwidth_gbs": peak.get("cache_bandwidth_gbs"), "from": where,
            "threads": peak.get("threads"), "measured_at": peak.get("measured_at")}
