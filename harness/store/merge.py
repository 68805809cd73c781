"""Merging one store into another: results from several machines gathered into one file or database.

Why it is all-or-nothing: a store that arrives from elsewhere may be truncated, hand-edited or
from another accelbench. Every row of it is decoded and checked (the same rules as reading, in
``harness.store.schema``) before the first insert, so a bad file is refused whole and the target
is left exactly as it was. The rows inserted are re-encoded from the checked values, never
copied as raw text.

Why ON CONFLICT DO NOTHING: session ids are globally unique (timestamp + random hex), so the same id
in both stores is the same session; what the target already holds wins, and merging the same
file twice adds nothing. A session present in both still gains the cells only the other has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.store.schema import (
    CELL_COLS,
    PEAK_COLS,
    SESSION_COLS,
    RowError,
    StoreError,
    cell_from_row,
    cell_row,
    machine_from_row,
    machine_row,
    peak_from_row,
    peak_row,
    session_from_row,
    session_row,
)


@dataclass
class Snapshot:
    """Another store's rows, checked and re-encoded, ready to insert."""

    where: str
    machines: list[tuple] = field(default_factory=list)
    sessions: list[tuple] = field(default_factory=list)
    cells: list[tuple] = field(default_factory=list)
    peaks: list[tuple] = field(default_factory=list)


def snapshot(src: Any, conn: Any, machine: str | None) -> Snapshot:
    """Every row of the open store ``src`` (read through ``conn``, one read snapshot), checked
    and re-encoded; only ``machine``'s when given. A bad row refuses the whole store."""
    snap = Snapshot(src.where)
    where = ""
    try:
        for n, row in enumerate(conn.execute("SELECT id, fingerprint FROM machines ORDER BY id")):
            where = f"machine row {n + 1}"
            mid, fp = machine_from_row(tuple(row))
            if machine is None or mid == machine:
                snap.machines.append(machine_row(mid, fp))
        session_ids = set()
        for n, row in enumerate(conn.execute(f"SELECT {SESSION_COLS} FROM sessions "
                                             "ORDER BY started, id")):
            where = f"session row {n + 1}"
            info = session_from_row(tuple(row))
            if machine is None or info.machine_id == machine:
                session_ids.add(info.id)
                snap.sessions.append(session_row(info))
        known = {r[0] for r in conn.execute("SELECT id FROM sessions")}
        for rowid, *row in conn.execute(f"SELECT id, {src._cell_columns(conn)} FROM cells "
                                        "ORDER BY id"):
            where = f"cell row {rowid}"
            sid, cell = cell_from_row(tuple(row))
            if sid not in known:
                raise RowError(f"it belongs to session {sid!r}, which the store does not hold")
            if sid in session_ids:
                snap.cells.append(cell_row(sid, cell))
        if src._has_table(conn, "peaks"):
            for rowid, *row in conn.execute(f"SELECT id, {PEAK_COLS} FROM peaks ORDER BY id"):
                where = f"peak row {rowid}"
                mid, when, peak = peak_from_row(tuple(row))
                if machine is None or mid == machine:
                    snap.peaks.append(peak_row(mid, when, peak))
    except RowError as e:
        raise StoreError(f"cannot merge store {src.where}: {where} is malformed ({e}); "
                         "nothing was merged") from None
    return snap


def insert_all(conn: Any, snap: Snapshot) -> dict[str, int]:
    """Insert a checked snapshot; the caller holds the write transaction. Returns rows added.

    ``ON CONFLICT DO NOTHING`` (standard in SQLite and PostgreSQL alike) on each table's
    unique key: what the target holds wins."""
    added: dict[str, int] = {}
    for name, cols, rows in (("machines", "id, fingerprint", snap.machines),
                             ("sessions", SESSION_COLS, snap.sessions),
                             ("cells", CELL_COLS, snap.cells),
                             ("peaks", PEAK_COLS, snap.peaks)):
        marks = ", ".join("?" * len(cols.split(",")))
        sql = f"INSERT INTO {name} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"
        added[name] = sum(max(conn.execute(sql, row).rowcount, 0) for row in rows)
    return {"sessions": added["sessions"], "cells": added["cells"], "machines": added["machines"]}
