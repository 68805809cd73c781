"""Commands that describe rather than measure: ``archs``, ``profile``, ``machine``."""

from __future__ import annotations

import argparse
from pathlib import Path

import archs
from harness.cli.common import DEFAULT_STORE, print_json


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("archs", help="list families, their parameters, defaults and ranges")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_archs)

    p = sub.add_parser("profile", help="FLOPs, params, working set and per-layer table of a spec")
    p.add_argument("spec", help="e.g. mobilenetv2:width=0.75,res=160")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--limit", type=int, default=None, help="show at most N layers in the table")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("machine", help="the machine fingerprint recorded with every result")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--store", type=Path, default=DEFAULT_STORE,
                   help=f"where `accelbench peak` stored the machine's roofs (default {DEFAULT_STORE})")
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

    prof = archs.profile(args.spec)
    if args.json:
        print_json(prof.as_json())
        return 0
    print(format_table(prof, limit=args.limit))
    return 0


def cmd_machine(args: argparse.Namespace) -> int:
    from harness.cli.peak import stored_peak
    from harness.machine import fingerprint

    fp = fingerprint()
    fp["peak"] = stored_peak(args.store, fp["id"])
    if args.json:
        print_json(fp)
        return 0
    cpu = fp.get("cpu", {})
    print(f"machine {fp['id']} ({fp.get('hostname')})")
    print(f"  cpu      {cpu.get('brand_raw')}, {cpu.get('count')} logical cores")
    caches = ", ".join(f"{k} {v // 1024} KiB" for k, v in fp.get("caches", {}).items()
                       if isinstance(v, int))
    print(f"  caches   {caches}")
    isa = [k for k, v in fp.get("isa", {}).items() if v]
    print(f"  isa      {' '.join(isa) or '-'}")
    print(f"  openvino {fp.get('openvino_devices')}")
    print(f"  versions {fp.get('versions')}")
    for name, c in fp.get("counters", {}).items():
        print(f"  counters {name}: {'ok' if c.get('ok') else 'unavailable'} - {c.get('why')}")
    peak = fp["peak"]
    print(f"  peak     {peak['gflops']} GFLOP/s, {peak['bandwidth_gbs']} GB/s" if peak
          else f"  peak     not measured (run `accelbench peak --store {args.store}`)")
    return 0
