"""The store: one SQLite file holding machines, sessions and their cells (raw samples + meta).

Why SQLite: a benchmark session runs for hours and may be killed at any moment, and two sessions
may share one store. WAL journaling with one short ``BEGIN IMMEDIATE`` transaction per write
means a ``kill -9`` loses at most the cell in flight, readers never block the writer, and a
second writer waits (``busy_timeout``) instead of failing. ``synchronous=NORMAL`` is enough for
that: in WAL mode it survives any process crash; only a power cut may drop the last commits,
and even then the file stays consistent.

Why so much checking: a store is also input. Files arrive from other machines (``merge_from``,
``compare``) and may be truncated, from a newer accelbench, or not stores at all. ``open``
validates read-only before anything could write, and every row is type-checked as it is loaded,
so a bad file gives a one-line ``StoreError`` naming it, never a traceback or a wrong figure.
Format, version history and row rules live in ``harness.store.schema``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.measure.results import FINISHED, INTERRUPTED, RUNNING, CellKey, CellResult, SessionInfo
from harness.store import merge as store_merge
from harness.store import schema as store_schema
from harness.store.schema import (
    CELL_COLS,
    PEAK_COLS,
    SCHEMA_VERSION,
    SESSION_COLS,
    RowError,
    StoreError,
    cell_from_row,
    cell_row,
    check_store,
    connect_readonly,
    create_schema,
    machine_from_row,
    machine_row,
    migrate,
    peak_from_row,
    peak_row,
    session_from_row,
    session_row,
    sniff,
)

__all__ = ["DEFAULT_PATH", "SCHEMA_VERSION", "Store", "StoreError"]

DEFAULT_PATH = Path("results") / "accelbench.sqlite"
BUSY_TIMEOUT_S = 30.0


def _accelbench_version() -> str:
    try:
        return metadata.version("accelbench")
    except metadata.PackageNotFoundError:
        return "unknown"


def _is_blank(conn: sqlite3.Connection) -> bool:
    try:
        return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    except sqlite3.DatabaseError:
        return False  # check_store reports what is wrong


class Store:
    """An open store. Build it with ``Store.open``; use it as a context manager.

    Read methods raise StoreError for rows that break the format; write methods raise
    ValueError for values the format cannot hold (a caller's bug, so a traceback is right)
    and StoreError for store trouble (locked past the timeout, disk full, read-only).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, *, readonly: bool) -> None:
        self._conn = conn
        self.path = path
        self.readonly = readonly

    # ------------------------------------------------------------------ open / close

    @classmethod
    def open(cls, path: str | os.PathLike[str] = DEFAULT_PATH, *, create: bool = True,
             readonly: bool = False) -> Store:
        """Open (creating when ``create`` and the file is missing or zero bytes) and validate.

        Validation runs on a read-only connection first; only a file that passes it, or a
        new one, is ever opened for writing. ``readonly`` keeps it that way (reports, compare).
        """
        p = Path(path)
        kind = sniff(p)
        if kind != "sqlite" and (readonly or not create):
            raise StoreError(f"no store at {p}" if kind == "missing" else f"store {p} is empty")
        version = None
        if kind == "sqlite":
            ro = connect_readonly(p)
            try:
                # A database with no schema yet is a store another process is creating right
                # now (or an empty file): _prepare creates the schema under the write lock.
                if not (create and not readonly and _is_blank(ro)):
                    version = check_store(ro, p)
            finally:
                ro.close()
        if readonly:
            conn = connect_readonly(p)
            if version != SCHEMA_VERSION and version not in store_schema.READ_COMPATIBLE:
                conn.close()
                raise StoreError(f"store {p} has schema v{version}; open it once for writing "
                                 f"to upgrade it to v{SCHEMA_VERSION}")
            return cls(conn, p, readonly=True)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(p, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open store {p}: {e}") from None
        store = cls(conn, p, readonly=False)
        try:
            store._prepare()
        except BaseException:
            conn.close()
            raise
        return store

    def _prepare(self) -> None:
        """Set up the connection; create or upgrade the schema under the write lock.

        The state is re-read inside the transaction: another process may have created or
        upgraded the store since we looked (two sessions started at once on a new path).
        """
        with self._errors():
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._set_wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")
        with self._write() as c:
            tables = c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables == 0:
                create_schema(c, _accelbench_version())
                return
            version = check_store(c, self.path, integrity=False)  # checked in open()
            if version < SCHEMA_VERSION:
                migrate(c, version)

    def _set_wal(self) -> None:
        """Switch to WAL; a concurrent opener can hold the lock briefly, so retry a little."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError:
                mode = None
            if mode == "wal":
                return
            if time.monotonic() > deadline:
                raise StoreError(f"store {self.path}: cannot switch to WAL journal mode "
                                 f"(got {mode!r}); is it on a network filesystem?")
            time.sleep(0.05)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite trouble becomes a StoreError naming the file; row trouble names the row."""
        try:
            yield
        except sqlite3.Error as e:
            raise StoreError(f"store {self.path}: {e}") from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, committed at once; rolled back on any exception."""
        if self.readonly:
            raise StoreError(f"store {self.path} was opened read-only")
        with self._errors():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several queries see one snapshot, and bad rows become StoreError."""
        with self._errors():
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            except RowError as e:
                raise StoreError(f"store {self.path} holds a malformed row: {e}") from None
            finally:
                if self._conn.in_transaction:  # nothing was written: this only ends the snapshot
                    self._conn.execute("COMMIT")

    def _require_session(self, c: sqlite3.Connection, session_id: str) -> None:
        if c.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
            raise StoreError(f"store {self.path} has no session {session_id!r}")

    # ------------------------------------------------------------------ machines

    def add_machine(self, machine_id: str, fingerprint: dict[str, Any]) -> None:
        """Record a machine once; a later call with the same id keeps the first fingerprint."""
        row = _checked(machine_row, machine_id, fingerprint)
        with self._write() as c:
            c.execute("INSERT OR IGNORE INTO machines (id, fingerprint) VALUES (?, ?)", row)

    def machine(self, machine_id: str) -> dict[str, Any] | None:
        """The machine's fingerprint, with its latest measured ``peaks`` when it has any.

        Why joined here: every reader of a machine (reports' header and roofline, compare)
        wants the roofs with it, and the fingerprint itself stays as it was recorded.
        """
        with self._read() as c:
            row = c.execute("SELECT id, fingerprint FROM machines WHERE id = ?",
                            (machine_id,)).fetchone()
            found = None if row is None else machine_from_row(row)[1]
        if found is not None:
            peaks = self.peaks(machine_id)
            if peaks is not None:
                found["peaks"] = peaks
        return found

    def put_peak(self, machine_id: str, peak: dict[str, Any], *, measured: float | None = None) -> None:
        """Record one ``accelbench peak`` measurement; earlier ones are kept (history)."""
        row = _checked(peak_row, machine_id, time.time() if measured is None else measured, peak)
        with self._write() as c:
            c.execute(f"INSERT OR REPLACE INTO peaks ({PEAK_COLS}) VALUES (?, ?, ?)", row)

    def peaks(self, machine_id: str) -> dict[str, Any] | None:
        """The latest measured peaks of a machine (None if never measured, or a v1 store)."""
        with self._read() as c:
            if c.execute("SELECT 1 FROM sqlite_master WHERE name = 'peaks'").fetchone() is None:
                return None
            row = c.execute(f"SELECT {PEAK_COLS} FROM peaks WHERE machine_id = ? "
                            "ORDER BY measured DESC, id DESC LIMIT 1", (machine_id,)).fetchone()
            return None if row is None else peak_from_row(row)[2]

    # ------------------------------------------------------------------ sessions

    def begin_session(self, info: SessionInfo) -> None:
        row = _checked(session_row, info)
        with self._write() as c:
            if c.execute("SELECT 1 FROM sessions WHERE id = ?", (info.id,)).fetchone():
                raise StoreError(f"store {self.path} already has a session {info.id!r}")
            c.execute(f"INSERT INTO sessions ({SESSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    def finish_session(self, session_id: str, status: str, *, finished: float | None = None) -> None:
        """Mark a session finished or interrupted (a later ``--resume`` may run it again)."""
        if status not in (FINISHED, INTERRUPTED):
            raise ValueError(f"a session ends {FINISHED!r} or {INTERRUPTED!r}, not {status!r}")
        t = time.time() if finished is None else finished
        with self._write() as c:
            self._require_session(c, session_id)
            c.execute("UPDATE sessions SET status = ?, finished = ? WHERE id = ?",
                      (status, t, session_id))

    def resume_session(self, session_id: str) -> None:
        """Mark a session running again, for ``--resume``; ``finish_session`` closes it later."""
        with self._write() as c:
            self._require_session(c, session_id)
            c.execute("UPDATE sessions SET status = ?, finished = NULL WHERE id = ?",
                      (RUNNING, session_id))

    def sessions(self) -> list[SessionInfo]:
        """All sessions, oldest first (by start time, not by when they were merged in)."""
        with self._read() as c:
            rows = c.execute(f"SELECT {SESSION_COLS} FROM sessions ORDER BY started, id")
            return [session_from_row(r) for r in rows]

    def session(self, ref: str | None = None) -> SessionInfo:
        """The latest session (``ref`` None), or the one whose id is ``ref`` or starts with it."""
        found = self.sessions()
        if not found:
            raise StoreError(f"store {self.path} has no sessions yet")
        if ref is None:
            return found[-1]
        exact = [s for s in found if s.id == ref]
        hits = exact or ([s for s in found if s.id.startswith(ref)] if ref else [])
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise StoreError(f"store {self.path} has no session matching {ref!r}")
        shown = ", ".join(s.id for s in hits[:5]) + (", ..." if len(hits) > 5 else "")
        raise StoreError(f"session prefix {ref!r} is ambiguous in {self.path}: {shown}")

    # ------------------------------------------------------------------ cells

    def put_cell(self, session_id: str, result: CellResult) -> None:
        """Insert or replace the cell (session, key), committed before returning.

        A replaced cell keeps its original position in ``cells()``.
        """
        row = _checked(cell_row, session_id, result)
        updates = ", ".join(f"{c} = excluded.{c}" for c in
                            ("status", "reason", "warmup_ms", "samples", "meta", "started",
                             "finished"))
        with self._write() as c:
            self._require_session(c, session_id)
            c.execute(f"INSERT INTO cells ({CELL_COLS}) VALUES ({', '.join('?' * 12)}) "
                      f"ON CONFLICT (session_id, spec, backend, precision, threads) "
                      f"DO UPDATE SET {updates}", row)

    def cells(self, session_id: str) -> list[CellResult]:
        """The session's cells in the order they were first recorded."""
        with self._read() as c:
            self._require_session(c, session_id)
            rows = c.execute(f"SELECT {CELL_COLS} FROM cells WHERE session_id = ? ORDER BY id",
                             (session_id,))
            return [cell_from_row(r)[1] for r in rows]

    def done_keys(self, session_id: str, *, exclude: Iterable[str] = ()) -> set[CellKey]:
        """Keys of the recorded cells, which ``--resume`` skips.

        Every recorded status is an outcome (a cell in flight is never written), so all count,
        unless listed in ``exclude`` (e.g. ``{FAILED}`` to retry failures).
        """
        skip = set(exclude)
        return {r.key for r in self.cells(session_id) if r.status not in skip}

    # ------------------------------------------------------------------ merging

    def merge_from(self, other_path: str | os.PathLike[str]) -> dict[str, int]:
        """Add another store's machines, sessions and cells; return how many of each were new.

        The other store is opened read-only and validated whole before anything is written,
        then inserted in one transaction, keeping what is already here on any clash (so
        merging twice adds nothing). See ``harness.store.merge``.
        """
        other = Path(other_path)
        with contextlib.suppress(OSError):
            if other.exists() and os.path.samefile(other, self.path):
                raise StoreError(f"cannot merge store {self.path} into itself")
        snap = store_merge.read_all(other)
        with self._write() as c:
            return store_merge.insert_all(c, snap)


def _checked(make_row: Any, *args: Any) -> tuple:
    """Encode a row for writing; a value the format cannot hold is the caller's ValueError."""
    try:
        return make_row(*args)
    except RowError as e:
        raise ValueError(str(e)) from None
