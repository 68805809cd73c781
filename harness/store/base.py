"""The store interface: machines, sessions and cells, one implementation per database.

Why one class holds the logic: SQLite (one file per machine) and PostgreSQL (one database for
a fleet) keep the same tables, the same JSON columns and the same row rules
(``harness.store.schema``), and the SQL both need is the same standard SQL, upserts included.
So every read and write is written once here, with ``?`` placeholders; an implementation
supplies only what differs - how a connection opens, validates and upgrades, and what a read
snapshot and a short write transaction are (``_read``/``_write``). The contract tests
(tests/test_store_contract.py) hold both to the same behaviour.

Guarantees every implementation keeps: each write is one short transaction committed before it
returns (a session survives a crash cell by cell); a read sees one snapshot; a store opened
read-only cannot write; rows are type-checked on the way in and out (a malformed one is a
``StoreError`` naming it, never a wrong figure).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.measure.results import FINISHED, INTERRUPTED, RUNNING, CellKey, CellResult, SessionInfo
from harness.store import locator
from harness.store import merge as store_merge
from harness.store.schema import (
    CELL_COLS,
    CELL_IDENTITY,
    PEAK_COLS,
    SESSION_COLS,
    RowError,
    StoreError,
    cell_columns,
    cell_from_row,
    cell_row,
    machine_from_row,
    machine_row,
    peak_from_row,
    peak_row,
    session_from_row,
    session_row,
)

# Implementations by the kind of store a locator names ("sqlite", "postgresql"): each module
# registers its opener when imported (``harness.store`` imports both), so this interface never
# imports an implementation and no import runs in a circle.
OPENERS: dict[str, Any] = {}


def register(kind: str, opener: Any) -> None:
    """``opener(ref, create=, readonly=)`` opens a store of ``kind``."""
    OPENERS[kind] = opener


_CELL_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in (
    "status", "reason", "warmup_ms", "samples", "meta", "started", "finished"))


def accelbench_version() -> str:
    try:
        return metadata.version("accelbench")
    except metadata.PackageNotFoundError:
        return "unknown"


class Store:
    """An open store. Build one with ``Store.open``; use it as a context manager.

    Read methods raise StoreError for rows that break the format; write methods raise
    ValueError for values the format cannot hold (a caller's bug, so a traceback is right)
    and StoreError for store trouble (locked or unreachable, disk full, read-only).
    """

    readonly: bool
    ref: locator.StoreRef

    # ------------------------------------------------------------------ open / close

    @classmethod
    def open(cls, ref: str | os.PathLike[str] | locator.StoreRef = locator.DEFAULT_PATH, *,
             create: bool = True, readonly: bool = False) -> Store:
        """Open the store ``ref`` names (a path, ``postgresql://...``, ``env:VAR``); see
        ``harness.store.locator``. ``create`` makes a missing store; ``readonly`` never writes."""
        where = ref if isinstance(ref, locator.StoreRef) else locator.parse(ref)
        return OPENERS[where.kind](where, create=create, readonly=readonly)

    @property
    def where(self) -> str:
        """How messages name this store (a path, or the URL without its password)."""
        return self.ref.text

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ what differs

    def _write(self) -> contextlib.AbstractContextManager[Any]:
        """One short write transaction, committed on exit, rolled back on any exception."""
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[Any]:
        """A read transaction: its queries see one snapshot; bad rows become StoreError."""
        raise NotImplementedError

    def _has_table(self, c: Any, name: str) -> bool:
        raise NotImplementedError

    def _has_column(self, c: Any, table: str, column: str) -> bool:
        raise NotImplementedError

    def _cell_columns(self, c: Any) -> str:
        """The cell columns to read: a store opened read-only may be older than v3."""
        return cell_columns(self._has_column(c, "cells", "scenario"))

    def same_store(self, other: Store) -> bool:
        raise NotImplementedError

    # ------------------------------------------------------------------ shared helpers

    @contextlib.contextmanager
    def _rows_checked(self) -> Iterator[None]:
        try:
            yield
        except RowError as e:
            raise StoreError(f"store {self.where} holds a malformed row: {e}") from None

    def _require_session(self, c: Any, session_id: str) -> None:
        if c.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
            raise StoreError(f"store {self.where} has no session {session_id!r}")

    def _check_writable(self) -> None:
        if self.readonly:
            raise StoreError(f"store {self.where} was opened read-only")

    # ------------------------------------------------------------------ machines

    def add_machine(self, machine_id: str, fingerprint: dict[str, Any]) -> None:
        """Record a machine once; a later call with the same id keeps the first fingerprint.

        Machines are keyed by their fingerprint's id, so many hosts writing one database each
        add their own row, and two sessions of one host share it."""
        row = _checked(machine_row, machine_id, fingerprint)
        with self._write() as c:
            c.execute("INSERT INTO machines (id, fingerprint) VALUES (?, ?) "
                      "ON CONFLICT (id) DO NOTHING", row)

    def machine(self, machine_id: str) -> dict[str, Any] | None:
        """The machine's fingerprint, with its latest measured ``peaks`` when it has any.

        Why joined here: every reader of a machine (reports' header and roofline, compare)
        wants the roofs with it, and the fingerprint itself stays as it was recorded.
        """
        with self._read() as c:
            row = c.execute("SELECT id, fingerprint FROM machines WHERE id = ?",
                            (machine_id,)).fetchone()
            found = None if row is None else machine_from_row(tuple(row))[1]
        if found is not None:
            peaks = self.peaks(machine_id)
            if peaks is not None:
                found["peaks"] = peaks
        return found

    def machines(self) -> list[str]:
        """Ids of the machines recorded here, sorted."""
        with self._read() as c:
            return sorted(str(r[0]) for r in c.execute("SELECT id FROM machines"))

    def put_peak(self, machine_id: str, peak: dict[str, Any], *, measured: float | None = None) -> None:
        """Record one ``accelbench peak`` measurement; earlier ones are kept (history)."""
        row = _checked(peak_row, machine_id, time.time() if measured is None else measured, peak)
        with self._write() as c:
            c.execute(f"INSERT INTO peaks ({PEAK_COLS}) VALUES (?, ?, ?) ON CONFLICT "
                      "(machine_id, measured) DO UPDATE SET peak = excluded.peak", row)

    def peaks(self, machine_id: str) -> dict[str, Any] | None:
        """The latest measured peaks of a machine (None if never measured, or a v1 store)."""
        with self._read() as c:
            if not self._has_table(c, "peaks"):
                return None
            row = c.execute(f"SELECT {PEAK_COLS} FROM peaks WHERE machine_id = ? "
                            "ORDER BY measured DESC, id DESC LIMIT 1", (machine_id,)).fetchone()
            return None if row is None else peak_from_row(tuple(row))[2]

    # ------------------------------------------------------------------ sessions

    def begin_session(self, info: SessionInfo) -> None:
        row = _checked(session_row, info)
        with self._write() as c:
            if c.execute("SELECT 1 FROM sessions WHERE id = ?", (info.id,)).fetchone():
                raise StoreError(f"store {self.where} already has a session {info.id!r}")
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
        """All sessions (of the selected machine, with ``?machine=``), oldest first by start
        time, not by when they were merged in."""
        with self._read() as c:
            rows = c.execute(f"SELECT {SESSION_COLS} FROM sessions ORDER BY started, id")
            found = [session_from_row(tuple(r)) for r in rows]
        selected = self.selected_machine()
        return found if selected is None else [s for s in found if s.machine_id == selected]

    def selected_machine(self) -> str | None:
        """The full id the ``?machine=`` selector names (None without one); StoreError when
        it names no machine here, or several."""
        wanted = self.ref.machine
        if wanted is None:
            return None
        ids = self.machines()
        hits = [m for m in ids if m == wanted] or [m for m in ids if m.startswith(wanted)]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise StoreError(f"store {self.where} has no machine matching {wanted!r} "
                             f"(machines: {', '.join(ids) or 'none'})")
        raise StoreError(f"machine prefix {wanted!r} is ambiguous in {self.where}: "
                         f"{', '.join(hits)}")

    def session(self, ref: str | None = None) -> SessionInfo:
        """The latest session (``ref`` None), or the one whose id is ``ref`` or starts with it."""
        found = self.sessions()
        if not found:
            raise StoreError(f"store {self.where} has no sessions yet")
        if ref is None:
            return found[-1]
        exact = [s for s in found if s.id == ref]
        hits = exact or ([s for s in found if s.id.startswith(ref)] if ref else [])
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise StoreError(f"store {self.where} has no session matching {ref!r}")
        shown = ", ".join(s.id for s in hits[:5]) + (", ..." if len(hits) > 5 else "")
        raise StoreError(f"session prefix {ref!r} is ambiguous in {self.where}: {shown}")

    # ------------------------------------------------------------------ cells

    def put_cell(self, session_id: str, result: CellResult) -> None:
        """Insert or replace the cell (session, key), committed before returning.

        A replaced cell keeps its original position in ``cells()``.
        """
        row = _checked(cell_row, session_id, result)
        with self._write() as c:
            self._require_session(c, session_id)
            c.execute(f"INSERT INTO cells ({CELL_COLS}) VALUES ({', '.join('?' * len(row))}) "
                      f"ON CONFLICT ({CELL_IDENTITY}) DO UPDATE SET {_CELL_UPDATES}", row)

    def cells(self, session_id: str) -> list[CellResult]:
        """The session's cells in the order they were first recorded."""
        with self._read() as c:
            self._require_session(c, session_id)
            rows = c.execute(f"SELECT {self._cell_columns(c)} FROM cells WHERE session_id = ? "
                             "ORDER BY id", (session_id,))
            return [cell_from_row(tuple(r))[1] for r in rows]

    def cell_counts(self) -> dict[str, int]:
        """Cells per session id, in one query (``sessions`` lists a fleet's hundreds)."""
        with self._read() as c:
            return {str(s): int(n) for s, n in
                    c.execute("SELECT session_id, count(*) FROM cells GROUP BY session_id")}

    def done_keys(self, session_id: str, *, exclude: Iterable[str] = ()) -> set[CellKey]:
        """Keys of the recorded cells, which ``--resume`` skips.

        Every recorded status is an outcome (a cell in flight is never written), so all count,
        unless listed in ``exclude`` (e.g. ``{FAILED}`` to retry failures).
        """
        skip = set(exclude)
        return {r.key for r in self.cells(session_id) if r.status not in skip}

    # ------------------------------------------------------------------ merging

    def merge_from(self, other: str | os.PathLike[str] | locator.StoreRef) -> dict[str, int]:
        """Add another store's machines, sessions and cells; return how many of each were new.

        The other store (a file or a database, any backend) is opened read-only and read whole,
        every row checked, before anything is written; then it is inserted in one transaction,
        keeping what is already here on any clash (so merging twice adds nothing). A
        ``?machine=`` selector on the other store copies only that machine's sessions.
        See ``harness.store.merge``.
        """
        self._check_writable()
        ref = other if isinstance(other, locator.StoreRef) else locator.parse(other)
        try:
            src = Store.open(ref, create=False, readonly=True)
        except StoreError as e:
            raise StoreError(str(e).replace("; open it once", "; cannot merge it: open it once")
                             ) from None
        with src:
            if src.same_store(self):
                raise StoreError(f"cannot merge store {self.where} into itself")
            machine = src.selected_machine()
            with src._read() as conn:  # one snapshot, even while a session is still writing it
                snap = store_merge.snapshot(src, conn, machine)
        with self._write() as c:
            return store_merge.insert_all(c, snap)


def _checked(make_row: Any, *args: Any) -> tuple:
    """Encode a row for writing; a value the format cannot hold is the caller's ValueError."""
    try:
        return make_row(*args)
    except RowError as e:
        raise ValueError(str(e)) from None


def as_path(ref: str | os.PathLike[str] | locator.StoreRef) -> Path | None:
    """The file behind a store argument, or None for a database."""
    where = ref if isinstance(ref, locator.StoreRef) else locator.parse(ref)
    return where.path
