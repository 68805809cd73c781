"""SQLite stores on a full disk and in a read-only folder: a clear error, nothing half-written.

Where this process may mount (root with CAP_SYS_ADMIN), the faults are real: a 192 KiB tmpfs
filled until SQLite meets ENOSPC, and a tmpfs remounted read-only. Elsewhere the full-disk case
is injected inside SQLite (``PRAGMA max_page_count``: SQLite then answers SQLITE_FULL, the very
code it gives for ENOSPC), and the read-only folder uses permissions (not binding on root).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.measure.results import DONE, CellKey, CellResult
from harness.store import Store, StoreError
from tests.conftest import run_cli
from tests.store_support import SID_A, populate, session, sha


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _big_cell(i: int) -> CellResult:
    return CellResult(CellKey(f"spec{i}", "torch", "f32", 1), DONE,
                      samples_ms=[i + j / 7 for j in range(2000)], meta={"i": i})


def _integrity(path: Path) -> str:
    c = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return c.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        c.close()


def test_full_disk_injected_rolls_the_cell_back(db: Path) -> None:
    populate(db)
    with Store.open(db) as s:
        pages = s._conn.execute("PRAGMA page_count").fetchone()[0]
        s._conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StoreError, match=r"full.*rolled back.*--resume"):
            s.put_cell(SID_A, _big_cell(99))
    with Store.open(db, readonly=True) as s:
        assert [c.key.spec for c in s.cells(SID_A)] == [f"dwbottleneck:depth={i}" for i in (1, 2, 3)]
    assert _integrity(db) == "ok"


def test_full_tmpfs_gives_a_clear_error_and_keeps_every_committed_cell(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "tiny", "192k") as folder:
        db = folder / "store.sqlite"
        written = 0
        with Store.open(db) as s:
            s.begin_session(session(SID_A))
            with pytest.raises(StoreError) as err:
                for i in range(1000):
                    s.put_cell(SID_A, _big_cell(i))
                    written += 1
        assert "disk is full" in str(err.value) and "No space left on device" in str(err.value)
        assert written >= 1
        with Store.open(db, readonly=True) as s:
            got = s.cells(SID_A)
        assert [c.key.spec for c in got] == [f"spec{i}" for i in range(written)]
        assert all(len(c.samples_ms) == 2000 for c in got)
        assert _integrity(db) == "ok"


@contextlib.contextmanager
def readonly_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder holding a store, then made read-only: a remounted tmpfs as root, else chmod."""
    if os.geteuid() == 0:
        with tmpfs(tmp_path / "ro", "4m") as folder:
            populate(folder / "store.sqlite")
            out = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True,
                                 text=True)
            if out.returncode != 0:
                pytest.skip(f"cannot remount read-only: {out.stderr.strip()}")
            yield folder
        return
    folder = tmp_path / "ro"
    folder.mkdir()
    populate(folder / "store.sqlite")
    for p in folder.iterdir():
        p.chmod(0o444)
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


def test_read_only_folder(tmp_path: Path) -> None:
    with readonly_folder(tmp_path) as folder:
        db = folder / "store.sqlite"
        before = sha(db)
        names = sorted(p.name for p in folder.iterdir())
        # Writing: a clear one-line error (exit 2), nothing created or changed.
        out = run_cli("run", "plain:depth=1,width=8,res=32", "--store", str(folder / "new.sqlite"),
                      "--no-report", cwd=tmp_path)
        assert out.returncode == 2 and "cannot open store" in out.stderr, out.stderr
        with pytest.raises(StoreError, match=f"cannot open store {db} for writing: .*read-only"):
            Store.open(db)
        # Reading needs no write access: a report goes elsewhere.
        out = run_cli("sessions", "--store", str(db), "--json", cwd=tmp_path)
        assert out.returncode == 0 and SID_A in out.stdout, out.stderr
        assert sorted(p.name for p in folder.iterdir()) == names and sha(db) == before
