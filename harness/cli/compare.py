"""``accelbench compare A B …``: sessions from different machines, with significance and gates.

Every store is opened read-only (a comparison never changes its inputs). A source is a file or a
PostgreSQL URL; ``URL?machine=ID`` takes that machine's latest session from a fleet database. A store written by an
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
                    "and show per-machine speed-ups and latencies with 95% intervals of their "
                    "ratios. The first source is the reference.")
    p.add_argument("sources", nargs="+", metavar="STORE[#SESSION]",
                   help="a store (its latest session) or a session in it; at least two. A "
                        "store is a file, postgresql://host/db (?machine=ID: that machine's "
                        "sessions only) or env:VAR")
    p.add_argument("--fail-on-regression", action="append", default=[], metavar="RULE",
                   help="median:5%% (latency up 5%%), median:2ms or median:0.002s, speedup:5%% "
                        "or speedup:0.2x (repeatable); a unit is required (%%, ms, s; x for "
                        "speedup): a bare number is refused. Exit 1 when the whole interval of "
                        "a cell lies beyond the threshold")
    p.add_argument("--noise", default="5%", metavar="PERCENT",
                   help="noise threshold: a change is real only when its whole 95%% interval "
                        "lies beyond ±PERCENT (default 5%%); comparing two sessions of one "
                        "machine (an A/A run) prints the spread it has shown")
    p.add_argument("--record-noise", action="store_true",
                   help="the sessions are an A/A run (the same command two or more times on "
                        "one machine, best hours apart; every pair of sessions counts): keep "
                        "their run-to-run spread with the machine, so later "
                        "comparisons warn when their threshold is below it, and fit the "
                        "session level (how far a whole session lands from the next) that "
                        "later comparisons and reports of this machine add to their intervals")
    p.add_argument("--within-session", action="store_true",
                   help="judge changes by the sessions' own intervals only, without the "
                        "session-level term of their machines' A/A records")
    p.add_argument("--out", type=Path, help="write compare.md/.html/.png/.json here")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.cli.common import UsageError, print_json

    try:
        from reports.compare.gates import Rule
        rules = [Rule.parse(r) for r in args.fail_on_regression]
    except ValueError as e:
        raise UsageError(str(e)) from None
    if len(args.sources) < 2:
        raise UsageError("compare needs at least two sources (STORE or STORE#SESSION)")
    sources = read_sources(args.sources)

    from reports.compare.analysis import build_comparison
    from reports.compare.gates import regressions
    from reports.compare.render import render_markdown, write_comparison

    cmp = build_comparison(sources, noise=_noise(args.noise), session_terms=_terms(args, sources))
    bad = regressions(cmp, rules)
    from reports.compare.aa import run_to_run_spread

    spread = run_to_run_spread(cmp)
    _noise_record(args, cmp, spread)
    if spread:
        seen = max(spread.values())
        shown = ", ".join(f"{k} {v:.1%}" for k, v in spread.items())
        print(f"accelbench: {', '.join(s.label for s in cmp.sources)} ran on one machine: "
              f"run-to-run spread (95th percentile of |change|) {shown}"
              + (f"; the noise threshold {cmp.noise:.0%} is below it, so some changes called "
                 f"real may be this machine's noise" if seen > cmp.noise else ""),
              file=sys.stderr)
        _print_repeats(cmp)
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


def _print_repeats(cmp) -> None:  # noqa: ANN001 - a reports.compare.analysis.Comparison
    """An A/A's check of its own intervals: does a repeat land inside them?"""
    from harness.machine import noise
    from reports.compare.aa import repeats_sentence

    got = cmp.repeats
    if not got:
        return
    recorded = set((noise.load(cmp.sources[0].session.machine_id) or {}).get("sessions") or [])
    own = cmp.machine_terms() and recorded & {s.session.id for s in cmp.sources}
    print(f"accelbench: {repeats_sentence(got)}"
          + ("; in-sample: the session level was fitted on these sessions (--within-session "
             "leaves it out)" if own else ""), file=sys.stderr)


def _noise_record(args: argparse.Namespace, cmp, spread) -> None:  # noqa: ANN001
    """``--record-noise``: keep an A/A spread with the machine; otherwise warn when the
    threshold is below a spread recorded for a compared machine (``harness.machine.noise``)."""
    from harness.cli.common import UsageError, warn
    from harness.machine import noise

    if args.record_noise:
        if not spread:
            raise UsageError("--record-noise needs two or more sessions of one machine (an A/A "
                             "run: the same command repeated), with cells in common")
        from reports.compare.aa import session_terms_of

        a = cmp.sources[0]
        procs = max((e.processes for r in cmp.latencies for e in r.latency if e), default=None)
        terms = session_terms_of(cmp)
        path = noise.save(a.session.machine_id, spread, [s.session.id for s in cmp.sources],
                          procs, terms)
        print(f"accelbench: run-to-run spread of machine {a.session.machine_id} kept in "
              f"{path or 'nowhere (its folder is not writable)'}", file=sys.stderr)
        if terms:
            said = ", ".join(f"{k} ±{t.sd:.1%} (covers {t.covered} of {t.cells} cells)"
                             for k, t in terms.items())
            print(f"accelbench: session level (one sd, log scale) {said}: later comparisons "
                  f"and reports of this machine add it to their intervals", file=sys.stderr)
        else:
            print("accelbench: no session level fitted (these sessions' cells carry no "
                  "process-level errors: they were timed in one process each)", file=sys.stderr)
        return
    for mid in dict.fromkeys(s.session.machine_id for s in cmp.sources):
        said = noise.below_noise(mid, cmp.noise)
        if said:
            warn(said)


def _terms(args: argparse.Namespace, sources) -> dict:  # noqa: ANN001
    """Each compared machine's session-level terms, from its A/A record; none with
    --within-session, or when this comparison is the A/A being recorded (its changes are the
    data the term is fitted to, judged on their own intervals)."""
    from harness.machine import noise

    if args.within_session or args.record_noise:
        return {}
    return {str(m): t for m in dict.fromkeys(s.session.machine_id for s in sources)
            if m and (t := noise.session_terms(m))}


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


def read_sources(refs: list):
    """Read each ``STORE[#SESSION]`` (text, or a parsed (StoreRef, session) pair) into a
    ``reports.compare.analysis.Source`` with a unique label."""
    from harness.store import locator
    from reports.compare.analysis import Source

    read = []
    for ref in refs:
        if isinstance(ref, tuple):
            where, session = ref
        else:
            store_text, session = locator.split_session(ref)
            where = locator.parse(store_text)
        info, machine, cells = _read(where, session)
        read.append((where, info, machine, cells))
    stems = [w.stem for w, *_ in read]
    out = []
    for (where, info, machine, cells), stem in zip(read, stems, strict=True):
        label = stem if stems.count(stem) == 1 else f"{stem}#{info.id}"
        out.append(Source(label, str(where), info, machine, tuple(cells)))
    labels = [s.label for s in out]
    if len(set(labels)) != len(labels):
        from harness.cli.common import UsageError
        raise UsageError(f"the same session is given twice: {', '.join(map(str, refs))}")
    _warn_same_session(out)
    return out


def _warn_same_session(sources) -> None:
    """One session read from two stores (a merged copy): its "change" is no change at all."""
    from harness.cli.common import warn

    seen: dict[str, str] = {}
    for s in sources:
        if s.session.id in seen:
            warn(f"{seen[s.session.id]} and {s.path} hold the same session {s.session.id} (a "
                 f"merged or copied store?): comparing it with itself shows no change by "
                 f"construction")
        else:
            seen[s.session.id] = s.path


def _read(where, session: str | None):  # noqa: ANN001 - a StoreRef
    from harness.store import Store, StoreError
    from harness.store.schema import SCHEMA_VERSION, check_store, connect_readonly, sniff

    if where.path is None:  # a database: read in place (a newer schema is refused, an older one read)
        with Store.open(where, create=False, readonly=True) as store:
            info = store.session(session)
            machine = store.machine(info.machine_id) if info.machine_id else None
            return info, machine, store.cells(info.id)
    path = where.path
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
