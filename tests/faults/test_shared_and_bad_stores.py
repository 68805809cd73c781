"""Two sessions on one store; bad stores refused untouched; merges validated; no pickle/eval."""

from __future__ import annotations

import ast
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from harness.measure.results import CellKey, CellResult, SessionInfo
from harness.store import Store
from tests.conftest import ROOT, run_cli
from tests.faults.support import (
    FAST,
    TINY,
    by_cell,
    main_in_process,
    sessions,
    sha256,
)

# ---------------------------------------------------------------------- 4: two writers


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory) -> dict:
    """Two sessions of the same spec started at once on one new store (and the IR cache beside
    it, which both fill with the same entry)."""
    d = tmp_path_factory.mktemp("shared")
    store = d / "store.sqlite"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = {}
    for k in ("a", "b"):
        with (d / f"{k}.out").open("w") as fo, (d / f"{k}.err").open("w") as fe:
            procs[k] = subprocess.Popen(
                [sys.executable, "-m", "harness.cli", "run", TINY, *FAST, "--store", str(store),
                 "--json", "--no-report"], cwd=d, env=env, stdin=subprocess.DEVNULL,
                stdout=fo, stderr=fe)
    try:
        rcs = {k: p.wait(timeout=600) for k, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    return {"store": store, "rcs": rcs,
            "out": {k: (d / f"{k}.out").read_text() for k in procs},
            "err": {k: (d / f"{k}.err").read_text() for k in procs}}


def test_two_sessions_writing_one_store_at_once_both_complete(shared_store):
    for k, rc in shared_store["rcs"].items():
        assert "Traceback" not in shared_store["err"][k], shared_store["err"][k]
        assert rc == 0, shared_store["err"][k][-3000:]
    runs = {k: json.loads(text) for k, text in shared_store["out"].items()}
    for run in runs.values():
        assert sorted(by_cell(run)) == [(TINY, "openvino:CPU"), (TINY, "torch")]
        assert {c["status"] for c in run["cells"]} == {"done"}
    listed = {s["session"]: s for s in sessions(shared_store["store"])}
    assert {sid: s["cells"] for sid, s in listed.items()} == {r["session"]: 2 for r in runs.values()}
    assert {s["status"] for s in listed.values()} == {"finished"}


# ---------------------------------------------------------------------- 5, 8: bad stores


def _session(i: int) -> SessionInfo:
    return SessionInfo(f"20200101-00000{i}-{i:06x}", started=1.6e9 + i, machine_id="m0",
                       config={"name": "made-by-a-test", "baseline": "torch"},
                       argv=["accelbench", "run"], version="0.1.0")


def make_store(path: Path, ids: range = range(3)) -> list[str]:
    """A valid store with a few sessions, big enough (samples) to span many pages."""
    with Store.open(path) as store:
        store.add_machine("m0", {"id": "m0"})
        for i in ids:
            info = _session(i)
            store.begin_session(info)
            for backend in ("torch", "openvino:CPU"):
                samples = [1.0 + j * 1e-4 for j in range(3000)]
                store.put_cell(info.id, CellResult(CellKey("plain:res=16", backend, "f32", 1),
                                                   "done", None, samples, 2.0, {}, 0.0, 1.0))
            store.finish_session(info.id, "finished")
    return [_session(i).id for i in ids]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "good.sqlite"
    make_store(path)
    return path


def _in_one_file(path: Path) -> None:
    """Fold the WAL into the main file so it alone holds the store (and its hash says all)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()


def bad_store(kind: str, template: Path, path: Path) -> Path:
    data = template.read_bytes()
    rnd = random.Random(kind)
    if kind == "garbage":
        path.write_bytes(bytes(rnd.randrange(256) for _ in range(8192)))
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":  # a b-tree page overwritten
        page = bytearray(data)
        page[8192:12288] = bytes(rnd.randrange(256) for _ in range(4096))
        path.write_bytes(bytes(page))
    elif kind in ("newer", "malformed-row"):
        shutil.copyfile(template, path)
        conn = sqlite3.connect(path)
        if kind == "newer":
            conn.execute("PRAGMA user_version = 99")
            conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        else:
            conn.execute("UPDATE cells SET samples = '[1.0, \"x\"' WHERE id = 3")
        conn.commit()
        conn.close()
        _in_one_file(path)
    elif kind == "not-a-store":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE songs (title TEXT, year INTEGER)")
        conn.execute("INSERT INTO songs VALUES ('x', 1999)")
        conn.commit()
        conn.close()
    return path


BAD_KINDS = ("garbage", "newer", "truncated", "corrupt", "not-a-store")
STORE_COMMANDS = ("run", "report", "sessions", "merge-from", "merge-into")


def store_command(command: str, bad: Path, other: Path) -> tuple[str, ...]:
    return {
        "run": ("run", TINY, *FAST, "--no-report", "--store", str(bad)),
        "report": ("report", "--store", str(bad)),
        "sessions": ("sessions", "--store", str(bad), "--json"),
        "merge-from": ("merge", str(bad), "--store", str(other)),
        "merge-into": ("merge", str(other), "--store", str(bad)),
    }[command]


def assert_refused(args: tuple[str, ...], rc: int, out: str, err: str, bad: Path) -> None:
    assert rc == 2, (args, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("accelbench: error:"), (args, err)
    assert bad.name in lines[0], lines[0]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_a_bad_store_is_refused_in_one_line_and_left_as_it_was(kind, template, tmp_path):
    """Every command on every kind of bad store (in-process: a process start each would cost a
    minute), and one command per kind, in turn, as a real ``accelbench`` process."""
    bad = bad_store(kind, template, tmp_path / f"{kind}.sqlite")
    other = tmp_path / "other.sqlite"
    shutil.copyfile(template, other)
    before = {p: sha256(p) for p in (bad, other)}
    for command in STORE_COMMANDS:
        args = store_command(command, bad, other)
        assert_refused(args, *main_in_process(*args), bad)
    args = store_command(STORE_COMMANDS[BAD_KINDS.index(kind)], bad, other)
    proc = run_cli(*args, timeout=300)
    assert_refused(args, proc.returncode, proc.stdout, proc.stderr, bad)
    assert {p: sha256(p) for p in (bad, other)} == before


def test_merge_validates_every_row_first_and_a_good_store_merges(template, shared_store,
                                                                  tmp_path):
    target = tmp_path / "target.sqlite"
    mine = make_store(target, range(7, 8))
    bad = bad_store("malformed-row", template, tmp_path / "from-elsewhere.sqlite")
    before = sha256(target)
    proc = run_cli("merge", str(bad), "--store", str(target))
    assert proc.returncode == 2
    assert "cell row 3" in proc.stderr and "nothing was merged" in proc.stderr, proc.stderr
    assert sha256(target) == before
    newer = bad_store("newer", template, tmp_path / "newer.sqlite")  # a target is checked too
    newer_before = sha256(newer)
    proc = run_cli("merge", str(target), "--store", str(newer))
    assert proc.returncode == 2 and "schema v99" in proc.stderr, proc.stderr
    assert (sha256(newer), sha256(target)) == (newer_before, before)

    theirs = [json.loads(out)["session"] for out in shared_store["out"].values()]
    proc = run_cli("merge", str(shared_store["store"]), "--store", str(target))
    assert proc.returncode == 0, proc.stderr
    assert "added 2 sessions, 4 cells" in proc.stdout, proc.stdout
    listed = {s["session"]: s["cells"] for s in sessions(target)}
    assert listed == {**{sid: 2 for sid in mine}, **{sid: 2 for sid in theirs}}
    again = run_cli("merge", str(shared_store["store"]), "--store", str(target))
    assert again.returncode == 0 and "added 0 sessions, 0 cells" in again.stdout, again.stdout


def test_no_pickle_or_eval_in_the_product():
    """Results, stores and configs are data; nothing loads code or objects from them."""
    banned_modules = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal",
                      "joblib"}
    found = []
    files = sorted(p for pkg in ("archs", "harness", "reports") for p in (ROOT / pkg).rglob("*.py"))
    assert len(files) > 20
    for path in files:
        where = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            line = f"{where}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                found += [f"{line} imports {a.name}" for a in node.names
                          if a.name.split(".")[0] in banned_modules]
            elif isinstance(node, ast.ImportFrom) and \
                    (node.module or "").split(".")[0] in banned_modules:
                found.append(f"{line} imports from {node.module}")
            elif isinstance(node, ast.Name) and (node.id in ("eval", "exec") or "pickle" in node.id):
                found.append(f"{line} uses {node.id}")
            elif isinstance(node, ast.Attribute) and "pickle" in node.attr:
                found.append(f"{line} uses .{node.attr}")
            elif isinstance(node, ast.Call):
                kw = {k.arg: k.value for k in node.keywords}
                if "allow_pickle" in kw and not (isinstance(kw["allow_pickle"], ast.Constant)
                                                 and kw["allow_pickle"].value is False):
                    found.append(f"{line} passes allow_pickle other than False")
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr == "load" and \
                        isinstance(func.value, ast.Name) and func.value.id == "torch":
                    wo = kw.get("weights_only")
                    if not (isinstance(wo, ast.Constant) and wo.value is True):
                        found.append(f"{line} calls torch.load without weights_only=True")
    assert not found, "\n".join(found)
    text = "\n".join(p.read_text(encoding="utf-8") for p in files)
    assert not re.search(r"(?<![\w.])eval\(", text)
