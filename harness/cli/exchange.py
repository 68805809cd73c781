"""``accelbench export`` / ``import``: sessions to and from pytest-benchmark's JSON format.

``export`` opens the store read-only and writes to standard output unless ``-o`` names a file;
``import`` validates the whole file before it writes anything, then adds the machine, the session
and its cells in the store (a session already there is refused, never overwritten).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli.common import plural


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from harness.cli.common import add_store_option

    p = sub.add_parser("export", help="write a session in another tool's format")
    p.add_argument("session", nargs="?", help="session id or a unique prefix (default: latest)")
    p.add_argument("--format", required=True, choices=["pytest-benchmark"])
    add_store_option(p)
    p.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="add a pytest-benchmark JSON file to a store")
    p.add_argument("file", type=Path, help="a pytest-benchmark JSON file (with raw data)")
    add_store_option(p)
    p.set_defaults(func=cmd_import)


def cmd_export(args: argparse.Namespace) -> int:
    from harness.cli.compare import read_sources
    from harness.pytest_bench.exchange import export_session

    (src,) = read_sources([(args.store, args.session)])
    text = json.dumps(export_session(src.session, src.cells, src.machine), indent=2,
                      default=str) + "\n"
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"{plural(len(src.cells), 'cell')} of session {src.session.id} -> {args.output}",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from harness.cli.common import UsageError
    from harness.pytest_bench.exchange import ExchangeError, import_document
    from harness.store import Store

    try:
        doc = json.loads(args.file.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read {args.file}: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{args.file} is not JSON ({e})") from None
    try:
        info, fingerprint, cells = import_document(doc, source=str(args.file))
    except ExchangeError as e:
        raise UsageError(str(e)) from None
    with Store.open(args.store, create=True) as store:
        if any(s.id == info.id for s in store.sessions()):
            raise UsageError(f"store {args.store} already has session {info.id}; nothing imported")
        try:
            store.add_machine(fingerprint["id"], fingerprint)
            store.begin_session(info)
            for c in cells:
                store.put_cell(info.id, c)
        except ValueError as e:  # a value the store's format cannot hold
            raise UsageError(f"{args.file}: {e}") from None
        if info.status != "running":
            store.finish_session(info.id, info.status if info.status in ("finished", "interrupted")
                                 else "finished", finished=info.finished)
    print(f"imported session {info.id}: {plural(len(cells), 'cell')}, machine {fingerprint['id']} "
          f"-> {args.store}")
    return 0
