"""The store's on-disk format: schema, version history, file checks, and row (de)coding.

Why a separate module: everything that decides whether bytes on disk may be trusted lives here,
so the rules for "is this a store we can read?" and "is this row well-formed?" are one
reading, shared by ``Store.open`` and ``Store.merge_from`` (see ``harness.store``).

Store format history (pyperf-style; bump ``SCHEMA_VERSION`` and add a migration for each):

* v1 (accelbench 0.1): tables ``meta``, ``machines``, ``sessions``, ``cells``; JSON in TEXT
  columns, where non-finite floats are written as the tokens ``NaN``, ``Infinity`` and
  ``-Infinity`` (Python's json and JSON5 read them; strict JSON has no way to say NaN).

* v2 (accelbench counters): adds table ``peaks`` - the machine's measured GEMM GFLOP/s and
  triad bandwidth (``accelbench peak``), one row per measurement, keyed by machine id. A v1
  store reads as a v2 store without peaks, so read-only commands accept it as it is
  (``READ_COMPATIBLE``); opening it for writing adds the empty table.

* v3 (accelbench throughput): adds ``cells.scenario`` (``latency`` or ``throughput``) to a
  cell's identity, so one session may hold both figures of a spec. Every older row is a latency
  cell: read-only commands read v1 and v2 stores as they are (the column reads as
  ``'latency'``, ``cell_columns``); opening one for writing rebuilds ``cells`` with the wider
  unique key (SQLite cannot alter a constraint), row ids and order kept.

Changes between versions must keep an old row's meaning (new tables, new columns with a default
that says what old rows were), so that an old store reads the same after its migration.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

# Row coding lives in harness.store.rows; re-exported here, where every reader has found it.
from harness.store.rows import (  # noqa: F401
    SESSION_STATES,
    RowError,
    cell_from_row,
    cell_row,
    dumps,
    machine_from_row,
    machine_row,
    peak_from_row,
    peak_row,
    session_from_row,
    session_row,
)

SCHEMA_VERSION = 3
FORMAT_NAME = "accelbench-store"
# Written into the SQLite header (offset 68) so `file` and other tools can tell what this is.
APPLICATION_ID = 0x61636362  # "accb"
SQLITE_MAGIC = b"SQLite format 3\x00"
TABLES = ("meta", "machines", "sessions", "cells")  # in every version; v2 adds "peaks"

# ``cells.id`` aliases the rowid so insertion order survives VACUUM (a bare rowid may not).
DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
CREATE TABLE machines (id TEXT PRIMARY KEY NOT NULL, fingerprint TEXT NOT NULL);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    machine_id TEXT,
    config TEXT NOT NULL,
    argv TEXT NOT NULL,
    version TEXT NOT NULL
);
CREATE TABLE cells (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    spec TEXT NOT NULL,
    backend TEXT NOT NULL,
    precision TEXT NOT NULL,
    threads INTEGER NOT NULL,
    scenario TEXT NOT NULL DEFAULT 'latency',
    status TEXT NOT NULL,
    reason TEXT,
    warmup_ms REAL,
    samples TEXT NOT NULL,
    meta TEXT NOT NULL,
    started REAL,
    finished REAL,
    UNIQUE (session_id, spec, backend, precision, threads, scenario)
);
"""
# v2: created with the schema (create_schema) or added by the v1 -> v2 migration.

PEAKS_DDL = """
CREATE TABLE IF NOT EXISTS peaks (
    id INTEGER PRIMARY KEY,
    machine_id TEXT NOT NULL,
    measured REAL NOT NULL,
    peak TEXT NOT NULL,
    UNIQUE (machine_id, measured)
)
"""
PEAK_COLS = "machine_id, measured, peak"

MACHINE_COLS = "id, fingerprint"
SESSION_COLS = "id, started, finished, status, machine_id, config, argv, version"
CELL_COLS = ("session_id, spec, backend, precision, threads, scenario, status, reason, "
             "warmup_ms, samples, meta, started, finished")
# A cell's identity: the unique key of ``cells`` (``ON CONFLICT`` names it).
CELL_IDENTITY = "session_id, spec, backend, precision, threads, scenario"


def cell_columns(has_scenario: bool) -> str:
    """What to SELECT for ``cell_from_row``: stores before v3 hold latency cells only."""
    return CELL_COLS if has_scenario else CELL_COLS.replace("scenario", "'latency'")

# Migration from version v to v+1, run inside one write transaction. None exist yet: v1 is the
# first format. Keep each one additive (see the module docstring).
def _v1_to_v2(conn: sqlite3.Connection) -> None:
    conn.execute(PEAKS_DDL)


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    """Rebuild ``cells`` with ``scenario`` in its unique key; ids (and so order) kept."""
    table = DDL[DDL.index("CREATE TABLE cells"):].rstrip().rstrip(";")
    conn.execute(table.replace("CREATE TABLE cells", "CREATE TABLE cells_v3", 1))
    old = cell_columns(False)
    conn.execute(f"INSERT INTO cells_v3 (id, {CELL_COLS}) SELECT id, {old} FROM cells ORDER BY id")
    conn.execute("DROP TABLE cells")
    conn.execute("ALTER TABLE cells_v3 RENAME TO cells")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3}
# Older versions whose bytes a reader of the current version understands as they are (what
# they lack reads as empty, or as its default: ``cell_columns``), so read-only opens and merges
# need not upgrade them.
READ_COMPATIBLE: set[int] = {1, 2}


class StoreError(Exception):
    """A store that cannot be opened, read or written as asked. The message is shown verbatim."""




# ---------------------------------------------------------------------------- file checks


def sniff(path: Path) -> str:
    """'missing', 'empty' or 'sqlite', from the filesystem alone: nothing is opened for writing.

    The 16-byte header is checked before SQLite ever sees the file, because connecting
    read-write to a non-SQLite file and setting a pragma could overwrite someone's data.
    """
    try:
        if not path.exists():
            return "missing"
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a store file")
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        raise StoreError(f"cannot read store {path}: {e.strerror or e}") from None
    if not head:
        return "empty"
    if head != SQLITE_MAGIC:
        raise StoreError(f"{path} is not an accelbench store (not a SQLite database)")
    return "sqlite"


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot modify the file or its folder: how any store is only read.

    Why two modes: SQLite's ``mode=ro`` on a WAL database creates the ``-wal`` and ``-shm``
    files beside it (and leaves them), so a "read-only" command would change the folder. When no
    ``-wal`` file exists, no process has the database open in WAL mode and every committed page
    is in the main file, so ``immutable=1`` (no locks, no side files) reads it exactly. When a
    ``-wal`` exists, a writer is active (or crashed before a checkpoint): the side files are
    already there and ``mode=ro`` must use them to see the committed rows.
    """
    quiet = _is_wal_file(path) and not Path(f"{path}-wal").exists()
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if quiet else "")
    try:
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open store {path}: {e}") from None


def _is_wal_file(path: Path) -> bool:
    """The header's read/write format versions (bytes 18-19) are 2 for a WAL database."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return len(head) == 20 and head[18] == 2 and head[19] == 2


def check_store(conn: sqlite3.Connection, path: Path, *, integrity: bool = True) -> int:
    """Validate an open store's integrity and format; return its schema version.

    Raises StoreError for anything that is not an accelbench store this code may read or
    upgrade. Only reads: callers run it on a read-only connection before any write.
    """
    try:
        problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)")] if integrity else ["ok"]
        if problems != ["ok"]:  # the report spans lines; the message must not
            detail = " ".join(" ".join(map(str, problems)).split())[:160]
            raise StoreError(f"store {path} is corrupt ({detail})")
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app_id != APPLICATION_ID or "meta" not in tables:
            raise StoreError(f"{path} is a SQLite database but not an accelbench store")
        if version > SCHEMA_VERSION:
            raise StoreError(f"store {path} has schema v{version}, this accelbench reads up to "
                             f"v{SCHEMA_VERSION}; upgrade accelbench")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as e:  # "file is not a database", "malformed", I/O errors
        raise StoreError(f"store {path} is corrupt or unreadable ({e})") from None
    missing = [t for t in TABLES if t not in tables]
    if meta.get("format") != FORMAT_NAME or missing:
        raise StoreError(f"store {path} is damaged: missing "
                         f"{', '.join(missing) if missing else 'its format record'}")
    if meta.get("schema_version") != str(version) or version < 1:
        raise StoreError(f"store {path} is damaged: schema version {version} disagrees with "
                         f"its meta table ({meta.get('schema_version')!r})")
    if version < SCHEMA_VERSION and any(v not in MIGRATIONS for v in range(version, SCHEMA_VERSION)):
        raise StoreError(f"store {path} has schema v{version}, which this accelbench cannot upgrade")
    return version


def create_schema(conn: sqlite3.Connection, accelbench_version: str) -> None:
    """Lay down v``SCHEMA_VERSION`` in an empty database; the caller holds a write transaction."""
    for stmt in DDL.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    conn.execute(PEAKS_DDL)
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
        ("format", FORMAT_NAME),
        ("schema_version", str(SCHEMA_VERSION)),
        ("created_by", f"accelbench {accelbench_version}"),
    ])
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Upgrade in place from ``version``; the caller holds a write transaction (all or nothing)."""
    for v in range(version, SCHEMA_VERSION):
        MIGRATIONS[v](conn)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(v + 1),))
        conn.execute(f"PRAGMA user_version = {v + 1}")
