"""Read-only commands leave a store exactly as they found it: its bytes and its folder.

Why it matters: a report is often rendered from a store another machine produced, from a
read-only mount, or while a session writes to it. SQLite's plain ``mode=ro`` would still create
``-wal``/``-shm`` files beside a WAL database, so this is checked on the folder, not the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from harness.store import Store
from tests.conftest import run_cli
from tests.store_support import SID_A, cell, populate


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry of the folder (recursively) with the sha256 of each file's bytes."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                         if p.is_file() else "dir")
            for p in sorted(folder.rglob("*"))}


READ_ONLY = [
    ("sessions",),
    ("sessions", "--json"),
    ("report", "--json"),
    ("report", SID_A[:8]),
]


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_leave_store_bytes_and_folder_unchanged(tmp_path, args):
    store = populate(tmp_path / "results" / "accelbench.sqlite")
    out = tmp_path / "elsewhere"
    extra = ("--out", str(out)) if args[0] == "report" else ()
    before = snapshot(store.parent)
    assert set(before) == {"accelbench.sqlite"}  # a closed WAL store: no side files
    proc = run_cli(*args, "--store", str(store), *extra)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(store.parent) == before
    if args[0] == "report":
        assert (out / "report.md").exists() or any(out.iterdir())


def test_report_beside_the_store_touches_only_its_session_folder(tmp_path):
    store = populate(tmp_path / "results" / "accelbench.sqlite")
    before = snapshot(store.parent)
    proc = run_cli("report", "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    after = snapshot(store.parent)
    assert {k: v for k, v in after.items() if not k.startswith(SID_A)} == before
    assert (store.parent / SID_A).is_dir()


def test_reading_while_a_writer_has_the_store_open(tmp_path):
    """With a writer active the side files exist; a reader sees its rows and changes neither
    the store file nor the write-ahead log, and adds no file."""
    store = populate(tmp_path / "results" / "accelbench.sqlite")
    with Store.open(store) as writer:
        writer.put_cell(SID_A, cell("dwbottleneck:depth=9"))
        names = sorted(p.name for p in store.parent.iterdir())
        assert f"{store.name}-wal" in names
        digests = {n: hashlib.sha256((store.parent / n).read_bytes()).hexdigest()
                   for n in (store.name, f"{store.name}-wal")}
        proc = run_cli("sessions", "--json", "--store", str(store))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)[0]["cells"] == 4  # the uncheckpointed row is seen
        assert sorted(p.name for p in store.parent.iterdir()) == names
        assert digests == {n: hashlib.sha256((store.parent / n).read_bytes()).hexdigest()
                           for n in digests}
