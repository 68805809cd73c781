"""How the stores here were made: a subset of a real session copied through the Store API.

    python tests/data/stores/make_subset.py SRC.sqlite[#SESSION] DST.sqlite SPEC [SPEC ...]

Kept so the test data can be re-made (or extended with a new kind of machine) the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.cli.compare import read_sources
from harness.store import Store


def main(argv: list[str]) -> None:
    src, dst, *specs = argv
    (source,) = read_sources([src])
    with Store.open(Path(dst)) as out:
        if source.machine:
            out.add_machine(source.session.machine_id, dict(source.machine))
        out.begin_session(source.session)
        for cell in source.cells:
            if cell.key.spec in specs:
                out.put_cell(source.session.id, cell)
        out.finish_session(source.session.id, source.session.status,
                           finished=source.session.finished)
        out._conn.execute("VACUUM")


if __name__ == "__main__":
    main(sys.argv[1:])
