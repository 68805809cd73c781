"""``accelbench compare A B …``: sessions from different machines, with significance and gates.

Every store is opened read-only (a comparison never changes its inputs). A store written by an
older accelbench is upgraded in a temporary copy, never in place. Exit codes: 0 no gate failed,
1 a ``--fail-on-regression`` rule found a regression (each regressed cell is named), 2 bad
input (a malformed rule, a missing store or session).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="compare sessions from different machines, with significance",
        description="Join the cells of several sessions (stores, or STORE#SESSION) on identity "
                    "and show per-machine speed-ups and latencies with 95%% intervals of their "
                    "ratios. The first source is the reference.")
    p.add_argument("sources", nargs="+", metavar="STORE[#SESSION]",
                   help="a store (its latest session) or a session in it; at least two")
    p.add_argument("--fail-on-regression", action="append", default=[], metavar="RULE",
                   help="e.g. median:5%% or speedup:5%% (repeatable); exit 1 when the whole "
                        "interval of a cell lies beyond the threshold")
    p.add_argument("--noise", default="5%", metavar="PERCENT",
                   help="noise threshold: a change is real only when its whole 95%% interval "
                        "lies beyond ±PERCENT (default 5%%); comparing two sessions of one "
                        "machine (an A/A run) prints the spread it has shown")
    p.add_argument("--out", type=Path, help="write compare.md/.html/.png/.json here")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.cli.common import UsageError, print_json

    try:
        from reports.compare_gates import Rule
        rules = [Rule.parse(r) for r in args.fail_on_regression]
    except ValueError as e:
        raise UsageError(str(e)) from None
    if len(args.sources) < 2:
        raise UsageError("compare needs at least two sources (STORE or STORE#SESSION)")
    sources = read_sources(args.sources)

    from reports.compare import build_comparison
    from reports.compare_gates import regressions
    from reports.compare_render import render_markdown, write_comparison

    cmp = build_comparison(sources, noise=_noise(args.noise))
    bad = regressions(cmp, rules)
    from reports.compare import run_to_run_spread

    spread = run_to_run_spread(cmp)
    if spread:
        seen = max(spread.values())
        shown = ", ".join(f"{k} {v:.1%}" for k, v in spread.items())
        print(f"accelbench: {cmp.sources[0].label} and {cmp.sources[1].label} ran on one machine: "
              f"run-to-run spread (95th percentile of |change|) {shown}"
              + (f"; the noise threshold {cmp.noise:.0%} is below it, so some changes called "
                 f"real may be this machine's noise" if seen > cmp.noise else ""),
              file=sys.stderr)
    if args.out:
        paths = write_comparison(cmp, args.out, regressions=bad)
    if args.json:
        print_json({**cmp.as_json(), "regressions": bad})
    else:
        sys.stdout.write(render_markdown(cmp, regressions=bad))
        if args.out:
            for kind, path in paths.items():
                print(f"{kind}: {path}")
    for line in bad:
        print(f"accelbench: regression: {line}", file=sys.stderr)
    return 1 if bad else 0


def _noise(text: str) -> float:
    from harness.cli.common import UsageError

    t = str(text).strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else None
    except ValueError:
        value = None
    if value is None or not 0 <= value < 1:
        raise UsageError(f"--noise {text!r}: give a percentage from 0% to 99%, e.g. 5%")
    return value


def read_sources(refs: list[str]):
    """Read each ``STORE[#SESSION]`` into a ``reports.compare.Source`` with a unique label."""
    from reports.compare import Source

    read = []
    for ref in refs:
        path_text, _, session = ref.partition("#")
        info, machine, cells = _read(Path(path_text), session or None)
        read.append((Path(path_text), info, machine, cells))
    stems = [p.stem for p, *_ in read]
    out = []
    for (path, info, machine, cells), stem in zip(read, stems, strict=True):
        label = stem if stems.count(stem) == 1 else f"{stem}#{info.id}"
        out.append(Source(label, str(path), info, machine, tuple(cells)))
    labels = [s.label for s in out]
    if len(set(labels)) != len(labels):
        from harness.cli.common import UsageError
        raise UsageError(f"the same session is given twice: {', '.join(refs)}")
    return out


def _read(path: Path, session: str | None):
    from harness.store import Store, StoreError
    from harness.store.schema import SCHEMA_VERSION, check_store, connect_readonly, sniff

    if sniff(path) != "sqlite":
        raise StoreError(f"no store at {path}" if not path.exists() else f"store {path} is empty")
    conn = connect_readonly(path)
    try:
        version = check_store(conn, path)
    finally:
        conn.close()
    with tempfile.TemporaryDirectory(prefix="accelbench-compare-") as tmp:
        if version < SCHEMA_VERSION:  # an older format: upgrade a copy, never the input
            copy = Path(tmp) / path.name
            shutil.copyfile(path, copy)
            store = Store.open(copy, create=False)
        else:
            store = Store.open(path, readonly=True)
        with store:
            info = store.session(session)
            machine = store.machine(info.machine_id) if info.machine_id else None
            return info, machine, store.cells(info.id)
