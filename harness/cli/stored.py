"""Commands that read or combine stores: ``report``, ``sessions``, ``merge``.

They never write to a store they could not validate. ``report`` and ``sessions`` open it truly
read-only (``Store.open(readonly=True)``): no lock, no ``-wal``/``-shm`` files, no migration, so
the store's bytes and its folder are exactly as they were (a report's files go elsewhere).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.backends import DEFAULT_BASELINE
from harness.cli.common import add_store_option, store_ref


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render a stored session (default: the latest)")
    p.add_argument("session", nargs="?", help="session id or a unique prefix of one")
    add_store_option(p)
    p.add_argument("--out", type=Path, help="output folder (default: beside the store, by session id)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("sessions", help="list the sessions in a store")
    add_store_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_sessions)

    p = sub.add_parser("merge", help="copy sessions from other stores (other machines) into one")
    p.add_argument("sources", nargs="+", type=store_ref, metavar="SOURCE",
                   help="stores to read (validated first): files or postgresql:// URLs; "
                        "URL?machine=ID copies one machine's sessions")
    add_store_option(p, "the target: ")
    p.set_defaults(func=cmd_merge)


def _open_existing(ref):  # noqa: ANN001 - a StoreRef
    from harness.store import Store, StoreError

    if ref.path is not None and not ref.path.exists():
        raise StoreError(f"no store at {ref} (run `accelbench run` first, or pass --store)")
    return Store.open(ref, create=False, readonly=True)


def cmd_report(args: argparse.Namespace) -> int:
    from harness.cli.common import make_console, print_json, write_report_files
    from harness.measure.results import DONE, INTERRUPTED

    with _open_existing(args.store) as store:
        info = store.session(args.session)
        cells = store.cells(info.id)
        from harness.machine.peaks_home import machine_with_peaks

        machine = machine_with_peaks(store, info.machine_id, args.store.cli)
        from harness.machine.noise import with_session_level

        machine = with_session_level(machine)
    import reports  # after the store is known good: a bad one is refused without the plotting stack

    config = info.config if isinstance(info.config, dict) else {}
    baseline = str(config.get("baseline", DEFAULT_BASELINE))
    report = reports.build_report(info, cells, machine, baseline=baseline, store=str(args.store))
    out_dir = args.out or args.store.home / info.id
    paths = write_report_files(report, out_dir)
    if args.json:
        print_json(reports.report_json(report))
        return 0
    console = make_console()
    reports.render_terminal(report, console)
    if info.status == INTERRUPTED and not any(c.status == DONE for c in cells):
        console.print(f"session {info.id} was interrupted before any cell finished; finish it "
                      f"with `accelbench run --resume {info.id} --store {args.store.cli}`",
                      highlight=False)
    for kind, path in paths.items():
        console.print(f"{kind}: {path}", highlight=False)
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    from harness.cli.common import plural, print_json

    with _open_existing(args.store) as store:
        rows = []
        for info in store.sessions():
            cells = store.cells(info.id)
            config = info.config if isinstance(info.config, dict) else {}
            rows.append({"session": info.id, "status": info.status, "started": info.started,
                         "started_epoch_s": info.started, "finished_epoch_s": info.finished,
                         "machine": info.machine_id, "cells": len(cells),
                         "preset": config.get("name"),
                         "specs": sorted({c.key.spec for c in cells})
                         or list(config.get("workloads") or [])})
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(r["started"]))
        cells = plural(r["cells"], "cell")
        specs = ", ".join(r["specs"][:3]) + (f" and {len(r['specs']) - 3} more"
                                            if len(r["specs"]) > 3 else "")
        preset = f"preset {r['preset']}: " if r["preset"] else ""
        print(f"{r['session']}  {when}  {r['status']:<11} {cells:>9}  machine {r['machine']}  "
              f"{preset}{specs or '-'}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from harness.cli.common import plural
    from harness.store import Store

    with Store.open(args.store, create=True) as store:
        for src in args.sources:
            if src.path is not None and args.store.path is not None and \
                    src.path.resolve() == args.store.path.resolve():
                raise_usage(f"{src} is the target store itself")
            added = store.merge_from(src)
            print(f"{src}: added {plural(added.get('sessions', 0), 'session')}, "
                  f"{plural(added.get('cells', 0), 'cell')}, "
                  f"{plural(added.get('machines', 0), 'machine')}")
    return 0


def raise_usage(msg: str) -> None:
    from harness.cli.common import UsageError

    raise UsageError(msg)
