"""Store schema v2: the ``peaks`` table, and v1 stores (the real stores in tests/data/stores)
opening read-only as they are and migrating without losing data."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from harness.store import Store
from harness.store import schema as store_schema
from tests.compare_support import real_store
from tests.store_support import SID_A, populate

REAL = sorted(p.stem for p in (Path(__file__).parent / "data" / "stores").glob("*.sql"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_v1(path: Path) -> None:
    """A v1 store: v1's layout is v2's without ``peaks``, and its version marks say 1."""
    populate(path)
    c = sqlite3.connect(path)
    c.execute("DROP TABLE peaks")
    c.execute("PRAGMA user_version = 1")
    c.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    c.commit()
    c.close()


# The cells' columns of every version (v3 adds ``scenario``, checked on its own).
CELL_V1 = ("id, session_id, spec, backend, precision, threads, status, reason, warmup_ms, samples, "
           "meta, started, finished")


def dump(path: Path) -> dict[str, list]:
    c = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {t: c.execute(f"SELECT {CELL_V1 if t == 'cells' else '*'} FROM {t} "
                             "ORDER BY rowid").fetchall()
                for t in ("machines", "sessions", "cells")}
    finally:
        c.close()


def test_peaks_round_trip_latest_wins(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    with Store.open(db) as s:
        assert s.peaks("m1") is None
        s.put_peak("m1", {"gflops": {"torch": 10.0}, "bandwidth_gbs": 5.0}, measured=1.0)
        s.put_peak("m1", {"gflops": {"torch": 12.0}, "bandwidth_gbs": 6.0}, measured=2.0)
        s.put_peak("m2", {"gflops": {"torch": 99.0}, "bandwidth_gbs": 9.0}, measured=3.0)
    with Store.open(db, readonly=True) as s:
        assert s.peaks("m1") == {"gflops": {"torch": 12.0}, "bandwidth_gbs": 6.0}
        assert s.peaks("m2")["gflops"]["torch"] == 99.0
        with pytest.raises(store_schema.StoreError, match="read-only"):
            s.put_peak("m1", {})


def test_v1_store_reads_untouched_then_migrates_without_loss(tmp_path: Path) -> None:
    db = tmp_path / "v1.sqlite"
    make_v1(db)
    before, rows = sha(db), dump(db)
    with Store.open(db, readonly=True) as s:  # reports on an old store need no upgrade
        assert len(s.cells(SID_A)) == 3 and s.peaks("any") is None
    assert sha(db) == before
    with Store.open(db) as s:  # opening for writing migrates
        assert s.peaks("any") is None
        s.put_peak("any", {"gflops": {"torch": 1.0}, "bandwidth_gbs": 2.0})
    c = sqlite3.connect(db)
    now = store_schema.SCHEMA_VERSION
    assert c.execute("PRAGMA user_version").fetchone()[0] == now
    assert c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(now)
    assert {r[0] for r in c.execute("SELECT scenario FROM cells")} == {"latency"}
    c.close()
    assert dump(db) == rows


def test_merge_accepts_v1_and_carries_peaks(tmp_path: Path) -> None:
    old, new, into = tmp_path / "old.sqlite", tmp_path / "new.sqlite", tmp_path / "into.sqlite"
    make_v1(old)
    with Store.open(new) as s:
        s.put_peak("mx", {"gflops": {"openvino": 3.0}, "bandwidth_gbs": 1.0}, measured=5.0)
    with Store.open(into) as s:
        assert s.merge_from(old)["cells"] > 0
        s.merge_from(new)
        assert s.peaks("mx") == {"gflops": {"openvino": 3.0}, "bandwidth_gbs": 1.0}


@pytest.mark.parametrize("name", REAL)
def test_real_stores_open_and_migrate(tmp_path: Path, name: str) -> None:
    """Stores written by real sessions on other machines (v1 and v2), from the project's own
    test data: read-only they stay as they are; opened for writing they migrate, rows intact."""
    original = real_store(name)
    copy = tmp_path / original.name
    shutil.copyfile(original, copy)
    rows, before = dump(copy), sha(copy)
    assert rows["cells"], name
    with Store.open(copy, readonly=True) as s:
        sessions = s.sessions()
    assert sha(copy) == before and sessions
    with Store.open(copy) as s:
        assert [x.id for x in s.sessions()] == [x.id for x in sessions]
        assert sum(len(s.cells(x.id)) for x in sessions) == len(rows["cells"])
        assert s.peaks("none") is None
    assert dump(copy) == rows
    c = sqlite3.connect(copy)
    assert c.execute("PRAGMA user_version").fetchone()[0] == store_schema.SCHEMA_VERSION
    assert {r[0] for r in c.execute("SELECT scenario FROM cells")} == {"latency"}
    c.close()


def test_the_real_stores_span_the_old_schema_versions() -> None:
    versions = set()
    for name in REAL:
        c = sqlite3.connect(f"{real_store(name).resolve().as_uri()}?mode=ro", uri=True)
        versions.add(c.execute("PRAGMA user_version").fetchone()[0])
        c.close()
    # The migration test above sees v1 and v2 stores, not only current ones, and no store is
    # newer than this code reads.
    assert {1, 2} <= versions and max(versions) <= store_schema.SCHEMA_VERSION
