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
import errno
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from harness.store import locator
from harness.store import schema as store_schema
from harness.store.base import Store, accelbench_version, register
from harness.store.schema import (
    SCHEMA_VERSION,
    RowError,
    StoreError,
    check_store,
    connect_readonly,
    create_schema,
    migrate,
    sniff,
)

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

BUSY_TIMEOUT_S = 30.0


def _is_blank(conn: sqlite3.Connection) -> bool:
    try:
        return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    except sqlite3.DatabaseError:
        return False  # check_store reports what is wrong


class SqliteStore(Store):
    """A store in one SQLite file (``harness.store.base.Store`` is the interface)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, readonly: bool,
                 ref: locator.StoreRef | None = None) -> None:
        self._conn = conn
        self.path = path
        self.readonly = readonly
        self.ref = ref or locator.StoreRef("sqlite", str(path), path=path)

    # ------------------------------------------------------------------ open / close

    @classmethod
    def open_file(cls, ref: locator.StoreRef, *, create: bool = True,
                  readonly: bool = False) -> SqliteStore:
        """Open (creating when ``create`` and the file is missing or zero bytes) and validate.

        Validation runs on a read-only connection first; only a file that passes it, or a
        new one, is ever opened for writing. ``readonly`` keeps it that way (reports, compare).
        """
        assert ref.path is not None
        p = ref.path
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
            return cls(conn, p, readonly=True, ref=ref)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            locked = ("it" if kind == "sqlite" and not os.access(p, os.W_OK)
                      else "its folder" if not os.access(p.parent, os.W_OK) else None)
            if locked:  # else SQLite opens it and fails later, talking of journal modes
                raise StoreError(f"cannot open store {p} for writing: {locked} is read-only "
                                 "(SQLite writes its journal beside the file); pass a writable "
                                 "--store, or copy the store elsewhere")
            conn = sqlite3.connect(p, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open store {p}: {e}") from None
        store = cls(conn, p, readonly=False, ref=ref)
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
                create_schema(c, accelbench_version())
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
            except sqlite3.OperationalError as e:
                if "readonly" in str(e) or "read-only" in str(e):
                    raise StoreError(f"store {self.path}: {_explain(e)}") from None
                mode = None
            if mode == "wal":
                return
            if time.monotonic() > deadline:
                raise StoreError(f"store {self.path}: cannot switch to WAL journal mode "
                                 f"(got {mode!r}); is it on a network filesystem?")
            time.sleep(0.05)

    def close(self) -> None:
        self._conn.close()

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite trouble becomes a StoreError naming the file; row trouble names the row."""
        try:
            yield
        except sqlite3.Error as e:
            raise StoreError(f"store {self.path}: {_explain(e)}") from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, committed at once; rolled back on any exception."""
        self._check_writable()
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

    def _has_table(self, c: sqlite3.Connection, name: str) -> bool:
        return c.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None

    def _has_column(self, c: sqlite3.Connection, table: str, column: str) -> bool:
        return any(r[1] == column for r in c.execute(f"PRAGMA table_info({table})"))

    def same_store(self, other: Store) -> bool:
        if not isinstance(other, SqliteStore):
            return False
        with contextlib.suppress(OSError):
            return os.path.samefile(other.path, self.path)
        return False


register("sqlite", SqliteStore.open_file)


# SQLite's result codes (fixed by SQLite; the ``sqlite3`` names exist from Python 3.11 on)
_SQLITE_FULL = getattr(sqlite3, "SQLITE_FULL", 13)
_SQLITE_READONLY = getattr(sqlite3, "SQLITE_READONLY", 8)


def _explain(e: sqlite3.Error) -> str:
    """SQLite's message, with what to do for the faults a user can fix (full disk, read-only)."""
    # Python 3.11's code, extended (1032: read-only, the database moved) over its primary one in
    # the low byte; 3.10 has none and matches the message
    code = getattr(e, "sqlite_errorcode", None)
    code = code & 0xFF if isinstance(code, int) else None
    if code == _SQLITE_FULL or "disk is full" in str(e):
        return (f"{e} ({os.strerror(errno.ENOSPC)}): the write was rolled back, nothing of it is "
                "in the store; free space, then --resume the session")
    if code == _SQLITE_READONLY or "readonly" in str(e) or "read-only" in str(e):
        return (f"{e}: the file or its folder cannot be written (SQLite needs to create its "
                "journal beside the file); pass a writable --store")
    return str(e)
