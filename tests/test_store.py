"""The store: round trips, refusal of bad files without touching them, crash and concurrency safety.

The concurrency and kill tests use real subprocesses, because what they guard (SQLite locking
and WAL recovery across processes) does not happen inside one interpreter.
"""


from __future__ import annotations

import math
import os
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.measure.results import (
    DONE,
    FAILED,
    FINISHED,
    FLAGGED,
    INTERRUPTED,
    RUNNING,
    SKIPPED,
)
from harness.store import Store, StoreError
from harness.store import schema as store_schema
from tests.store_support import (
    SID_A,
    SID_B,
    cell,
    key,
    populate,
    session,
    sha,
)

# ---------------------------------------------------------------------------- round trips


def test_round_trip_machines_sessions_cells(db: Path) -> None:
    fp = {"cpu": {"brand": "Xeon", "flags": ["avx2", "avx512f"]}, "caches": {"l3": 32 << 20}}
    info = session(SID_A, machine_id="m1", config={"threads": [1, 4], "budget_s": 2.5},
                   argv=["accelbench", "run", "--preset", "quick"], version="0.1.0")
    nasty = [0.5, float("nan"), float("inf"), 0.0, 1e-300]
    cells = [
        cell("mobilenetv2", "torch", samples_ms=nasty, warmup_ms=30.5, started=10.0, finished=12.0,
             meta={"parity": {"max_abs": float("nan")}, "props": {"hint": "LATENCY"}, "n": [1, 2]}),
        cell("mobilenetv2", "openvino", FLAGGED, reason="outputs hold NaN", samples_ms=[]),
        cell("darts", "openvino", FAILED, reason="conversion failed: élan", samples_ms=[]),
    ]
    with Store.open(db) as s:
        assert db.exists()  # parent directory created
        s.add_machine("m1", fp)
        s.begin_session(info)
        for c in cells:
            s.put_cell(SID_A, c)
    with Store.open(db, create=False) as s:
        assert s.machine("m1") == fp
        assert s.machine("nope") is None
        assert s.sessions() == [info]
        got = s.cells(SID_A)
    assert [c.key for c in got] == [c.key for c in cells]
    assert got[1:] == cells[1:]
    first = got[0]
    assert first.meta["props"] == {"hint": "LATENCY"} and math.isnan(first.meta["parity"]["max_abs"])
    assert first.samples_ms[0] == 0.5 and math.isnan(first.samples_ms[1])
    assert first.samples_ms[2:] == [float("inf"), 0.0, 1e-300]
    assert (first.warmup_ms, first.started, first.finished) == (30.5, 10.0, 12.0)


def test_nan_scalar_reads_back_as_none(db: Path) -> None:
    """SQLite keeps a NaN REAL as NULL; the store says so rather than inventing a number."""
    with Store.open(db) as s:
        s.begin_session(session(SID_A))
        s.put_cell(SID_A, cell(warmup_ms=float("nan")))
        assert s.cells(SID_A)[0].warmup_ms is None


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=0) | st.just(float("nan")), max_size=50))
def test_samples_round_trip_bit_for_bit(samples: list[float]) -> None:
    with tempfile.TemporaryDirectory() as d, Store.open(Path(d) / "s.sqlite") as s:
        s.begin_session(session(SID_A))
        s.put_cell(SID_A, cell(samples_ms=samples))
        back = s.cells(SID_A)[0].samples_ms
    assert [repr(x) for x in back] == [repr(x) for x in samples]


def test_put_cell_upserts_in_place(db: Path) -> None:
    with Store.open(db) as s:
        s.begin_session(session(SID_A))
        s.put_cell(SID_A, cell("a", status=FAILED, reason="oom", samples_ms=[]))
        s.put_cell(SID_A, cell("b"))
        s.put_cell(SID_A, cell("a", samples_ms=[9.0], meta={"retry": 1}))
        got = s.cells(SID_A)
    assert [c.key.spec for c in got] == ["a", "b"]  # first position kept
    assert (got[0].status, got[0].reason, got[0].samples_ms, got[0].meta) == (DONE, None, [9.0],
                                                                              {"retry": 1})


def test_done_keys(db: Path) -> None:
    with Store.open(db) as s:
        s.begin_session(session(SID_A))
        s.begin_session(session(SID_B))
        s.put_cell(SID_A, cell("a"))
        s.put_cell(SID_A, cell("b", status=FAILED, reason="x", samples_ms=[]))
        s.put_cell(SID_A, cell("c", status=SKIPPED, reason="no openvino", samples_ms=[]))
        s.put_cell(SID_B, cell("z"))
        assert s.done_keys(SID_A) == {key("a"), key("b"), key("c")}
        assert s.done_keys(SID_A, exclude={FAILED}) == {key("a"), key("c")}
        assert s.done_keys(SID_B) == {key("z")}
        with pytest.raises(StoreError, match="no session"):
            s.done_keys("missing")


def test_session_lookup(db: Path) -> None:
    with Store.open(db) as s:
        with pytest.raises(StoreError, match="no sessions"):
            s.session()
        s.begin_session(session("20240107-ccc", started=3.0))  # newest, inserted first
        s.begin_session(session(SID_A, started=1.0))
        s.begin_session(session("20240105T101010-aaaa9999", started=2.0))
        assert [x.id for x in s.sessions()] == [SID_A, "20240105T101010-aaaa9999", "20240107-ccc"]
        assert s.session().id == "20240107-ccc"
        assert s.session(SID_A).id == SID_A
        assert s.session("20240107").id == "20240107-ccc"
        with pytest.raises(StoreError, match="ambiguous.*aaaa1111"):
            s.session("20240105T101010-aaaa")
        with pytest.raises(StoreError, match="no session matching"):
            s.session("1999")
        with pytest.raises(StoreError, match="no session matching"):
            s.session("")


def test_session_lifecycle(db: Path) -> None:
    with Store.open(db) as s:
        s.begin_session(session(SID_A))
        assert s.session().status == RUNNING
        s.finish_session(SID_A, INTERRUPTED, finished=5.0)
        assert (s.session().status, s.session().finished) == (INTERRUPTED, 5.0)
        s.resume_session(SID_A)
        assert (s.session().status, s.session().finished) == (RUNNING, None)
        s.finish_session(SID_A, FINISHED)
        assert s.session().status == FINISHED and s.session().finished is not None
        with pytest.raises(ValueError, match="ends"):
            s.finish_session(SID_A, RUNNING)
        with pytest.raises(StoreError, match="no session"):
            s.finish_session("nope", FINISHED)
        with pytest.raises(StoreError, match="already has a session"):
            s.begin_session(session(SID_A))


def test_bad_values_are_refused_before_writing(db: Path) -> None:
    with Store.open(db) as s:
        s.begin_session(session(SID_A))
        with pytest.raises(StoreError, match="no session"):
            s.put_cell("nope", cell())
        for bad in (cell(samples_ms=[1.0, "2"]), cell(samples_ms=[True]), cell(samples_ms=[-1.0]),
                    cell(meta={"x": object()})):
            with pytest.raises(ValueError):
                s.put_cell(SID_A, bad)
        with pytest.raises(ValueError, match="argv"):
            s.begin_session(session(SID_B, argv=["run", 3]))
        with pytest.raises(ValueError, match="finite"):
            s.begin_session(session(SID_B, started=float("nan")))
        assert s.cells(SID_A) == [] and [x.id for x in s.sessions()] == [SID_A]


# ---------------------------------------------------------------------------- opening


def test_missing_and_empty_files(db: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        Store.open(db, create=False)
    assert not db.exists()
    db.parent.mkdir(parents=True)
    db.write_bytes(b"")
    with pytest.raises(StoreError, match="empty"):
        Store.open(db, create=False)
    with Store.open(db) as s:  # a zero-byte file is a new store
        s.begin_session(session(SID_A))
    with Store.open(db, create=False) as s:
        assert s.session().id == SID_A
    with pytest.raises(StoreError, match="directory"):
        Store.open(db.parent)


def _garbage(p: Path) -> None:
    p.write_bytes(b"id,latency\n1,2.0\n" * 100)


def _sqlite_header_then_garbage(p: Path) -> None:
    p.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))


def _other_sqlite(p: Path) -> None:
    c = sqlite3.connect(p)
    c.execute("CREATE TABLE results (x)")
    c.execute("INSERT INTO results VALUES (1)")
    c.commit()
    c.close()


def _newer_schema(p: Path) -> None:
    populate(p)
    c = sqlite3.connect(p)
    newer = store_schema.SCHEMA_VERSION + 1
    c.execute(f"PRAGMA user_version = {newer}")
    c.execute(f"UPDATE meta SET value = '{newer}' WHERE key = 'schema_version'")
    c.commit()
    c.close()


def _truncated(p: Path) -> None:
    populate(p, n_cells=300)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _scribbled(p: Path) -> None:
    """Same size, the second half overwritten: only the integrity check at open can see it."""
    populate(p, n_cells=300)
    data = p.read_bytes()
    half = len(data) // 2
    p.write_bytes(data[:half] + bytes(range(256)) * ((len(data) - half) // 256))


def _meta_gone(p: Path) -> None:
    populate(p)
    c = sqlite3.connect(p)
    c.execute("DROP TABLE cells")
    c.commit()
    c.close()


BAD_FILES = {
    "garbage": (_garbage, "not an accelbench store"),
    "header-then-garbage": (_sqlite_header_then_garbage, "corrupt"),
    "other-sqlite": (_other_sqlite, "not an accelbench store"),
    "newer-schema": (_newer_schema,
                     rf"has schema v{store_schema.SCHEMA_VERSION + 1}, this accelbench reads up to "
                     rf"v{store_schema.SCHEMA_VERSION}; upgrade"),
    "truncated": (_truncated, "corrupt"),
    "scribbled": (_scribbled, "is corrupt"),
    "table-dropped": (_meta_gone, "damaged: missing cells"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
@pytest.mark.parametrize("how", ["create", "existing", "readonly", "merge"])
def test_bad_files_are_refused_untouched(tmp_path: Path, name: str, how: str) -> None:
    make, message = BAD_FILES[name]
    bad = tmp_path / "bad.sqlite"
    make(bad)
    before = sha(bad)
    with pytest.raises(StoreError, match=message) as err:
        if how == "merge":
            with Store.open(tmp_path / "target.sqlite") as s:
                s.merge_from(bad)
        else:
            Store.open(bad, create=how == "create", readonly=how == "readonly")
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    assert sha(bad) == before


# ---------------------------------------------------------------------------- malformed rows

MALFORMED = {
    "sample-string": ("samples", '[1.0, "2"]'),
    "samples-object": ("samples", '{"a": 1}'),
    "samples-bad-json": ("samples", "[1.0,"),
    "samples-negative": ("samples", "[-3.0]"),
    "samples-blob": ("samples", b"[1.0]"),
    "meta-list": ("meta", "[]"),
    "meta-duplicate-key": ("meta", '{"a": 1, "a": 2}'),
    "meta-deep": ("meta", "[" * 100_000 + "]" * 100_000),
    "status": ("status", "great"),
    "threads-text": ("threads", "two"),
    "threads-real": ("threads", 2.5),
    "spec-empty": ("spec", ""),
    "warmup-text": ("warmup_ms", "fast"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_rows_give_store_error(db: Path, name: str) -> None:
    column, value = MALFORMED[name]
    populate(db)
    c = sqlite3.connect(db)
    c.execute(f"UPDATE cells SET {column} = ? WHERE id = 2", (value,))
    c.commit()
    c.close()
    with Store.open(db) as s, pytest.raises(StoreError, match="malformed row"):
        s.cells(SID_A)


def test_invalid_utf8_gives_store_error(db: Path) -> None:
    populate(db)
    c = sqlite3.connect(db)
    c.execute("UPDATE sessions SET version = CAST(X'FFFE' AS TEXT)")
    c.commit()
    c.close()
    with Store.open(db) as s, pytest.raises(StoreError, match=str(db)):
        s.sessions()


def test_readonly_refuses_writes(db: Path) -> None:
    populate(db)
    before = sha(db)
    with Store.open(db, readonly=True) as s:
        assert len(s.cells(SID_A)) == 3
        with pytest.raises(StoreError, match="read-only"):
            s.put_cell(SID_A, cell("new"))
    assert sha(db) == before


def test_migration_hook(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The hook one version ahead of the real format (v3 since the throughput issue).
    populate(db)
    now, ahead = store_schema.SCHEMA_VERSION, store_schema.SCHEMA_VERSION + 1
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", ahead)
    monkeypatch.setattr("harness.store.database.SCHEMA_VERSION", ahead)
    before = sha(db)
    with pytest.raises(StoreError, match=f"has schema v{now}, which this accelbench cannot upgrade"):
        Store.open(db)
    assert sha(db) == before

    def next_version(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE cells ADD COLUMN note TEXT")

    monkeypatch.setitem(store_schema.MIGRATIONS, now, next_version)
    with pytest.raises(StoreError, match="open it once for writing"):
        Store.open(db, readonly=True)
    with Store.open(db) as s:
        assert len(s.cells(SID_A)) == 3
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA user_version").fetchone()[0] == ahead
    assert c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(ahead)
    assert "note" in [r[1] for r in c.execute("PRAGMA table_info(cells)")]
    c.close()


def test_a_rows_samples_are_checked_in_bulk_with_the_same_errors() -> None:
    """Samples are read in bulk (a kernel preset's cells hold millions), with the checks one
    sample at a time made: a bool, a None or a string is no number, a negative sample is
    refused, a NaN passes (a flagged cell's data) and ints read as floats."""
    import math

    from harness.store.rows import RowError, _samples

    for bad, says in (([1.0, True], "a number"), ([1.0, None], "a number"),
                      ([1.0, "2"], "a number"), ([1.0, -2.0], "not be negative"),
                      ([3, -1], "not be negative")):
        with pytest.raises(RowError, match=says):
            _samples(bad)
    got = _samples([1, 2.5, float("nan")])
    assert got[:2] == [1.0, 2.5] and all(type(v) is float for v in got) and math.isnan(got[2])


def test_sqlite_faults_are_explained_by_their_primary_code_and_by_message() -> None:
    """A full disk and a store that cannot be written say what to do. Python 3.11 gives the
    extended code (1032: read-only because the database file moved), whose low byte is the
    primary one (8: read-only); Python 3.10 gives no code, and the message decides."""
    from harness.store.database import _explain

    def fault(message: str, code: int | None = None) -> sqlite3.Error:
        e = sqlite3.OperationalError(message)
        if code is not None:
            e.sqlite_errorcode = code  # type: ignore[attr-defined]
        return e

    for e in (fault("boom", 1032), fault("boom", 8), fault("attempt to write a readonly database")):
        assert "cannot be written" in _explain(e)
    for e in (fault("boom", 13), fault("database or disk is full")):
        assert "free space, then --resume" in _explain(e)
    assert _explain(fault("boom", 1)) == "boom"
