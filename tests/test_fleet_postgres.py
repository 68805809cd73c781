"""A fleet of machines writing one PostgreSQL database, as users meet it: the CLI and processes.

Against the real server ``.ci/run`` starts (``ACCELBENCH_TEST_PG_DSN``; skipped, saying why,
without one), each test in a database of its own. The server-killed test starts a private server
(``.ci/postgres``) so that it can stop and restart it; it is slow-marked (initdb, real cells).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.store import Store
from tests import pg_support
from tests.compare_support import AMD, INTEL
from tests.conftest import run_cli

INTEL_ID, AMD_ID = "fb5d3c5227e8", "3040189e299c"  # the machines of the two real stores


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_support.fresh_database() as url:
        yield url


# ---------------------------------------------------------------------------- the CLI


def test_a_url_never_becomes_a_path(tmp_path: Path) -> None:
    """`--store mysql://...` once made a folder `mysql:` and a SQLite file in it."""
    for args in (["sessions", "--store", "mysql://u@h/db"],
                 ["run", "plain:depth=1", "--store", "sqlite://x/y", "--dry-run"],
                 ["report", "--store", "postgresql:fleet"],
                 ["compare", "https://example.org/a", "b.sqlite"]):
        out = run_cli(*args, cwd=tmp_path)
        assert out.returncode == 2, out
        assert "scheme" in out.stderr or "not a URL" in out.stderr, out.stderr
    out = run_cli("sessions", "--store", "env:NO_SUCH_VAR", cwd=tmp_path)
    assert out.returncode == 2 and "NO_SUCH_VAR is not set" in out.stderr
    out = run_cli("sessions", "--store", "postgresql://postgres@127.0.0.1:1/none", cwd=tmp_path)
    assert out.returncode == 2 and "cannot connect to store" in out.stderr, out.stderr
    assert list(tmp_path.iterdir()) == []


def test_merge_compare_and_back_through_the_database(pg_url: str, tmp_path: Path) -> None:
    """Two machines' stores merged into the fleet database, compared straight from it by
    machine, and one machine's sessions merged back out into a file, unchanged."""
    env = {"FLEET_DSN": pg_url}
    out = run_cli("merge", str(INTEL), str(AMD), "--store", "env:FLEET_DSN", env=env)
    assert out.returncode == 0, out.stderr
    assert "added 1 session, 8 cells, 1 machine" in out.stdout

    listed = json.loads(run_cli("sessions", "--json", env={"ACCELBENCH_STORE": pg_url}).stdout)
    assert sorted(r["machine"] for r in listed) == sorted([INTEL_ID, AMD_ID])
    assert all(r["cells"] == 8 for r in listed)

    out = run_cli("compare", f"{pg_url}?machine={INTEL_ID[:6]}", f"{pg_url}?machine={AMD_ID}",
                  "--json")
    assert out.returncode == 0, out.stderr
    cmp = json.loads(out.stdout)
    brands = [s["brand"] for s in cmp["sources"]]
    assert brands[1] == "AMD EPYC (Zen 4)", brands  # the brand alone names no generation
    assert "Rocket Lake" not in brands[0]  # a masked model number is not named

    out = run_cli("report", "--store", f"{pg_url}?machine={AMD_ID}", "--json",
                  "--out", str(tmp_path / "rep"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["machine"]["brand"] == "AMD EPYC (Zen 4)"

    back = tmp_path / "amd-back.sqlite"
    out = run_cli("merge", f"{pg_url}?machine={AMD_ID}", "--store", str(back))
    assert out.returncode == 0 and "added 1 session, 8 cells, 1 machine" in out.stdout, out
    with Store.open(back, readonly=True) as b, Store.open(AMD, readonly=True) as a:
        assert b.sessions() == a.sessions()
        assert b.cells(a.session().id) == a.cells(a.session().id)
    out = run_cli("compare", f"{pg_url}?machine=ffff", str(back))
    assert out.returncode == 2 and "no machine matching 'ffff'" in out.stderr


def test_resume_never_touches_another_machines_session(pg_url: str) -> None:
    run_cli("merge", str(AMD), "--store", pg_url)
    before = pg_support.sql(pg_url, "SELECT id, status, finished FROM sessions")
    out = run_cli("run", "--resume", "--store", pg_url)
    assert out.returncode == 2 and "no session of this machine" in out.stderr, out.stderr
    out = run_cli("run", "--resume", "20261128-204212", "--store", pg_url)
    assert out.returncode == 2 and "resumed on the machine that started it" in out.stderr
    assert pg_support.sql(pg_url, "SELECT id, status, finished FROM sessions") == before


# ---------------------------------------------------------------------------- many writers

WRITER = textwrap.dedent("""
    import sys
    from harness.measure.results import CellKey, CellResult, SessionInfo
    from harness.store import Store
    url, sid, machine, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with Store.open(url) as s:
        s.add_machine(machine, {"id": machine})
        s.begin_session(SessionInfo(id=sid, started=1.0, machine_id=machine))
        for i in range(n):
            s.put_cell(sid, CellResult(CellKey(f"spec{i}", "torch", "f32", 1), "done",
                                       samples_ms=[float(i) + j / 1000 for j in range(200)],
                                       meta={"i": i, "sid": sid}))
        s.finish_session(sid, "finished")
""")

READER = textwrap.dedent("""
    import sys, time
    from harness.store import Store, StoreError
    url, until = sys.argv[1], float(sys.argv[2])
    seen = {}
    reads = 0
    while time.time() < until:
        try:
            s = Store.open(url, create=False, readonly=True)
        except StoreError:  # the writers have not created the schema yet
            time.sleep(0.05)
            continue
        with s:
            for info in s.sessions():
                cells = s.cells(info.id)
                n = len(cells)
                assert n >= seen.get(info.id, 0), "a reader saw cells disappear"
                assert [c.key.spec for c in cells] == [f"spec{i}" for i in range(n)], "order"
                assert all(c.meta["sid"] == info.id for c in cells), "interleaved"
                seen[info.id] = n
                reads += 1
        if len(seen) == int(sys.argv[3]) and all(v == int(sys.argv[4]) for v in seen.values()):
            break
    print(reads, sum(seen.values()))
""")


def test_four_writers_and_a_reader_lose_nothing(pg_url: str) -> None:
    """Writers start at once on an empty database (one creates the schema, under a lock), two
    of them as the same machine; a reader checks each snapshot while they write."""
    writers, cells = 5, 25
    sids = [f"20260101-000000-{i:06x}" for i in range(writers)]
    machines = ["m-shared", "m-shared", "m-2", "m-3", "m-4"]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, pg_url, sid, m, str(cells)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for sid, m in zip(sids, machines, strict=True)]
    reader = subprocess.Popen([sys.executable, "-c", READER, pg_url, str(time.time() + 120),
                               str(writers), str(cells)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    out, err = reader.communicate(timeout=180)
    assert reader.returncode == 0, err
    reads, total = map(int, out.split())
    assert reads >= 1 and total == writers * cells
    with Store.open(pg_url, readonly=True) as s:
        assert sorted(x.id for x in s.sessions()) == sids
        assert all(x.status == "finished" for x in s.sessions())
        for sid in sids:
            got = s.cells(sid)
            assert [c.key.spec for c in got] == [f"spec{i}" for i in range(cells)]
            assert all(len(c.samples_ms) == 200 and c.meta["sid"] == sid for c in got)
        assert s.machines() == ["m-2", "m-3", "m-4", "m-shared"]
    assert pg_support.sql(pg_url, "SELECT count(*) FROM cells") == [(writers * cells,)]


# ---------------------------------------------------------------------------- the server dies


@pytest.mark.slow
def test_server_killed_mid_session_then_resume(tmp_path: Path) -> None:
    """The database goes away after the first cells: the run ends with a clear error (exit 2,
    how to resume), the committed cells survive the crash, `--resume` finishes the session."""
    server = pg_support.PrivateServer()
    try:
        with pg_support.fresh_database(server.dsn) as url:
            specs = [f"plain:depth={d},width=8,res=32" for d in (1, 2, 3, 4, 5, 6)]
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            run = subprocess.Popen(
                [sys.executable, "-m", "harness.cli", "run", *specs, "--backends", "torch",
                 "--budget", "0.3", "--store", url, "--no-report"],
                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 240
            while time.time() < deadline:
                if _count(url) >= 2:
                    break
                assert run.poll() is None, run.communicate()
                time.sleep(0.2)
            server.kill()
            _, err = run.communicate(timeout=300)
            assert run.returncode == 2, err
            assert "Traceback" not in err and "lost the database" in err and "--resume" in err
            server.start()
            (sid, status), = pg_support.sql(url, "SELECT id, status FROM sessions")
            saved = _count(url)
            assert status == "running" and 2 <= saved < len(specs)
            out = run_cli("run", "--resume", sid, "--store", url, "--no-report", cwd=tmp_path)
            assert out.returncode in (0, 1), out.stderr  # 1: a cell invalid on a busy machine
            rows = pg_support.sql(url, "SELECT spec FROM cells ORDER BY id")
            assert sorted(r[0] for r in rows) == sorted(specs)
            assert pg_support.sql(url, "SELECT status FROM sessions") == [("finished",)]
    finally:
        server.remove()


def _count(url: str) -> int:
    try:
        return pg_support.sql(url, "SELECT count(*) FROM cells")[0][0]
    except Exception:  # noqa: BLE001 - the schema may not exist yet
        return 0
