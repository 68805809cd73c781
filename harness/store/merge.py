"""Merging one store into another: results from several machines gathered into one file.

Why it is all-or-nothing: a store that arrives from elsewhere may be truncated, hand-edited or
from another accelbench. Every row of it is decoded and checked (the same rules as reading, in
``harness.store.schema``) before the first insert, so a bad file is refused whole and the target
is left exactly as it was. The rows inserted are re-encoded from the checked values, never
copied as raw text.

Why INSERT OR IGNORE: session ids are globally unique (timestamp + random hex), so the same id
in both stores is the same session; what the target already holds wins, and merging the same
file twice adds nothing. A session present in both still gains the cells only the other has.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from harness.store.schema import (
    CELL_COLS,
    PEAK_COLS,
    READ_COMPATIBLE,
    SCHEMA_VERSION,
    SESSION_COLS,
    RowError,
    StoreError,
    cell_from_row,
    cell_row,
    check_store,
    connect_readonly,
    machine_from_row,
    machine_row,
    peak_from_row,
    peak_row,
    session_from_row,
    session_row,
    sniff,
)


@dataclass
class Snapshot:
    """Another store's rows, checked and re-encoded, ready to insert."""

    path: Path
    machines: list[tuple] = field(default_factory=list)
    sessions: list[tuple] = field(default_factory=list)
    cells: list[tuple] = field(default_factory=list)
    peaks: list[tuple] = field(default_factory=list)


def read_all(path: Path) -> Snapshot:
    """Read and check every row of the store at ``path`` through a read-only connection."""
    kind = sniff(path)
    if kind != "sqlite":
        raise StoreError(f"no store at {path}" if kind == "missing" else f"store {path} is empty")
    conn = connect_readonly(path)
    try:
        version = check_store(conn, path)
        if version != SCHEMA_VERSION and version not in READ_COMPATIBLE:
            raise StoreError(f"cannot merge store {path}: it has schema v{version}; open it once "
                             f"with this accelbench to upgrade it to v{SCHEMA_VERSION}")
        conn.execute("BEGIN")  # one snapshot, even while a session is still writing it
        return _snapshot(conn, path)
    except sqlite3.Error as e:
        raise StoreError(f"cannot merge store {path}: {e}") from None
    finally:
        conn.close()


def _snapshot(conn: sqlite3.Connection, path: Path) -> Snapshot:
    snap = Snapshot(path)
    where = ""
    try:
        for rowid, *row in conn.execute("SELECT rowid, id, fingerprint FROM machines ORDER BY rowid"):
            where = f"machine row {rowid}"
            snap.machines.append(machine_row(*machine_from_row(tuple(row))))
        session_ids = set()
        for rowid, *row in conn.execute(f"SELECT rowid, {SESSION_COLS} FROM sessions "
                                        "ORDER BY rowid"):
            where = f"session row {rowid}"
            info = session_from_row(tuple(row))
            session_ids.add(info.id)
            snap.sessions.append(session_row(info))
        for rowid, *row in conn.execute(f"SELECT id, {CELL_COLS} FROM cells ORDER BY id"):
            where = f"cell row {rowid}"
            sid, cell = cell_from_row(tuple(row))
            if sid not in session_ids:
                raise RowError(f"it belongs to session {sid!r}, which the store does not hold")
            snap.cells.append(cell_row(sid, cell))
        has_peaks = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'peaks'").fetchone()
        for rowid, *row in conn.execute(f"SELECT id, {PEAK_COLS} FROM peaks ORDER BY id"
                                        if has_peaks else "SELECT 1 WHERE 0"):
            where = f"peak row {rowid}"
            snap.peaks.append(peak_row(*peak_from_row(tuple(row))))
    except RowError as e:
        raise StoreError(f"cannot merge store {path}: {where} is malformed ({e}); "
                         "nothing was merged") from None
    return snap


def insert_all(conn: sqlite3.Connection, snap: Snapshot) -> dict[str, int]:
    """Insert a checked snapshot; the caller holds the write transaction. Returns rows added."""
    added: dict[str, int] = {}
    for name, cols, rows in (("machines", "id, fingerprint", snap.machines),
                             ("sessions", SESSION_COLS, snap.sessions),
                             ("cells", CELL_COLS, snap.cells),
                             ("peaks", PEAK_COLS, snap.peaks)):
        before = conn.total_changes
        marks = ", ".join("?" * len(cols.split(",")))
        conn.executemany(f"INSERT OR IGNORE INTO {name} ({cols}) VALUES ({marks})", rows)
        added[name] = conn.total_changes - before
    return {"sessions": added["sessions"], "cells": added["cells"], "machines": added["machines"]}
