"""How the stores here were made: a subset of a real session copied through the Store API and
kept as SQL text (tests build the .sqlite from it: ``tests.compare_support.real_store``).

    python tests/data/stores/make_subset.py SRC.sqlite[#SESSION] DST.sql SPEC [SPEC ...]

Kept so the test data can be re-made (or extended with a new kind of machine) the same way.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

from harness.cli.compare import read_sources
from harness.store import Store


def main(argv: list[str]) -> None:
    src, dst, *specs = argv
    (source,) = read_sources([src])
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "subset.sqlite"
        with Store.open(db) as out:
            if source.machine:
                out.add_machine(source.session.machine_id, dict(source.machine))
            out.begin_session(source.session)
            for cell in source.cells:
                if cell.key.spec in specs:
                    out.put_cell(source.session.id, cell)
            out.finish_session(source.session.id, source.session.status,
                               finished=source.session.finished)
        conn = sqlite3.connect(db)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]  # not in iterdump's text
        lines = [f"-- {Path(dst).stem}: a real accelbench store (schema v{version}) as SQL text; "
                 "tests/compare_support.py builds the .sqlite",
                 f"PRAGMA application_id={app_id};", f"PRAGMA user_version={version};",
                 *conn.iterdump()]
        conn.close()
    Path(dst).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
