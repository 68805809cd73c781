"""Issue 25's benchmark: a fleet database under many writers, and reading it back. Not a test
(it wants a quiet machine and a PostgreSQL server):

    ACCELBENCH_TEST_PG_DSN=postgresql://postgres@127.0.0.1:5432/postgres \\
        PYTHONPATH=$PWD python -m tests.benchmarks.fleet_store [--writers 8] [--cells 20]

(1) ``--writers`` processes start at once, each writing one session of ``--cells`` cells with
their raw samples (``--samples`` each) into one fresh database: wall time from the first start
to the last exit, cells per second, and a check that every cell of every session is there.
(2) ``--sessions`` sessions (the real AMD EPYC session's 8 cells, re-identified, over two
machines) in a SQLite file and, merged from it, in a fresh database; then the wall time of
``accelbench report`` (latest session) and ``accelbench compare`` (two sessions of different
machines) on each, as a user runs them (a new process each: imports included), best of
``--repeat``, plus the store reads alone (open, session, cells, machine) in this process.
Prints one JSON document; the databases it made are dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent("""
    import sys, time
    from harness.measure.results import CellKey, CellResult, SessionInfo
    from harness.store import Store
    url, sid, n, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    t0 = time.time()
    with Store.open(url) as s:
        s.add_machine("bench-" + sid[-6:], {"id": sid})
        s.begin_session(SessionInfo(id=sid, started=1.0, machine_id="bench-" + sid[-6:]))
        for i in range(n):
            s.put_cell(sid, CellResult(CellKey(f"spec{i}", "torch", "f32", 2), "done",
                                       samples_ms=[1.0 + (i * k + j) % 97 / 100 for j in range(k)],
                                       meta={"i": i}))
        s.finish_session(sid, "finished")
    print(t0, time.time())
""")


def _db(admin: str, name: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path="/" + name))


def _sql(url: str, query: str) -> list:
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        cur = c.execute(query)
        return cur.fetchall() if cur.description else []


def writers(admin: str, n: int, cells: int, samples: int) -> dict:
    name = "bench_" + secrets.token_hex(4)
    _sql(admin, f"CREATE DATABASE {name}")
    url = _db(admin, name)
    try:
        sids = [f"20260101-000000-{i:06x}" for i in range(n)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, sid, str(cells), str(samples)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for sid in sids]
        done = [(p.wait(), *p.communicate()) for p in procs]
        wall = time.perf_counter() - t0
        errors = [err for rc, _, err in done if rc != 0]
        spans = [tuple(map(float, out.split())) for rc, out, _ in done if rc == 0]
        writing = max(e for _, e in spans) - min(b for b, _ in spans) if spans else float("nan")
        rows = _sql(url, "SELECT session_id, count(*) FROM cells GROUP BY session_id")
        got = dict(rows)
        missing = sum(max(cells - got.get(sid, 0), 0) for sid in sids)
        return {"writers": n, "cells_each": cells, "samples_per_cell": samples,
                "wall_s": round(wall, 3), "cells_per_s": round(n * cells / wall, 1),
                # from the first writer's Store.open to the last one's finish: no imports
                "writing_s": round(writing, 3), "cells_per_s_writing": round(n * cells / writing, 1),
                "cells_stored": sum(got.values()), "cells_missing": missing,
                "writer_errors": [e.strip().splitlines()[-1] for e in errors]}
    finally:
        _sql(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def build_sqlite(path: Path, n: int) -> list[tuple[str, str]]:
    """``n`` sessions of the real AMD session's cells over two machine ids; (sid, machine)."""
    from harness.store import Store
    from tests.compare_support import AMD

    with Store.open(AMD, readonly=True) as src:
        info = src.session()
        cells = src.cells(info.id)
        fp = src.machine(info.machine_id) or {}
    out = []
    with Store.open(path) as s:
        for m in ("fleet-a", "fleet-b"):
            s.add_machine(m, {**fp, "id": m})
        for i in range(n):
            sid, machine = f"20260201-{i:06d}-{i:06x}", ("fleet-a", "fleet-b")[i % 2]
            s.begin_session(type(info)(id=sid, started=1.8e9 + i, machine_id=machine,
                                       config=info.config, argv=info.argv, version=info.version))
            for c in cells:
                s.put_cell(sid, c)
            s.finish_session(sid, "finished", finished=1.8e9 + i + 60)
            out.append((sid, machine))
    return out


def _best(cmd: list[str], repeat: int, cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr[-500:]}")
    return round(min(times), 3)


def _reads(ref: str, sid: str, repeat: int) -> float:
    from harness.store import Store

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with Store.open(ref, readonly=True) as s:
            info = s.session(sid)
            s.cells(info.id)
            s.machine(info.machine_id or "")
            s.sessions()
        times.append(time.perf_counter() - t0)
    return round(min(times), 4)


def reading(admin: str, n: int, repeat: int) -> dict:
    from harness.store import Store

    name = "bench_" + secrets.token_hex(4)
    _sql(admin, f"CREATE DATABASE {name}")
    url = _db(admin, name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            lite = Path(tmp) / "fleet.sqlite"
            sessions = build_sqlite(lite, n)
            t0 = time.perf_counter()
            with Store.open(url) as s:
                added = s.merge_from(lite)
            merge_s = time.perf_counter() - t0
            (a, _), (b, _) = sessions[-2], sessions[-1]
            out: dict = {"sessions": n, "cells": added["cells"], "merge_sqlite_into_pg_s":
                         round(merge_s, 3)}
            cli = [sys.executable, "-m", "harness.cli"]
            for kind, ref in (("sqlite", str(lite)), ("postgresql", url)):
                out[kind] = {
                    "report_s": _best([*cli, "report", "--json", "--store", ref, "--out",
                                       str(Path(tmp) / f"rep-{kind}")], repeat, Path(tmp)),
                    "compare_s": _best([*cli, "compare", f"{ref}#{a}", f"{ref}#{b}", "--json"],
                                       repeat, Path(tmp)),
                    "sessions_s": _best([*cli, "sessions", "--json", "--store", ref], repeat,
                                        Path(tmp)),
                    "store_reads_s": _reads(ref, b, repeat),
                }
            return out
    finally:
        _sql(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default=os.environ.get("ACCELBENCH_TEST_PG_DSN"))
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--cells", type=int, default=20)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not args.dsn:
        raise SystemExit("give --dsn or set ACCELBENCH_TEST_PG_DSN (a server to create databases on)")
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "load_1m": os.getloadavg()[0]},
                      "writers": writers(args.dsn, args.writers, args.cells, args.samples),
                      "reading": reading(args.dsn, args.sessions, args.repeat)}, indent=2))


if __name__ == "__main__":
    main()
