"""Where a machine's measured roofs live, so every store on the machine finds them.

Why not only in the store: peaks describe the machine, not a session, yet a store is per
project (``results/accelbench.sqlite`` under the current directory). A user who ran
``accelbench peak`` in one project saw "this machine's peaks were never measured" in a report
from another (issue 28). So ``accelbench peak`` writes the roofs to its store (history, merged
with the store) *and* to one file per machine id in the user's cache folder:
``$ACCELBENCH_PEAKS``, else ``$XDG_CACHE_HOME/accelbench/peaks``, else
``~/.cache/accelbench/peaks``, named ``<machine id>.json``. Readers take the store's peaks when
it has them (the store travels with its sessions, to other machines too) and this file
otherwise; a report without either names both places and how to fill them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def peaks_dir() -> Path:
    if os.environ.get("ACCELBENCH_PEAKS"):
        return Path(os.environ["ACCELBENCH_PEAKS"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "accelbench" / "peaks"


def peaks_file(machine_id: str) -> Path:
    return peaks_dir() / f"{machine_id}.json"


def save(machine_id: str, peaks: dict[str, Any]) -> Path | None:
    """Write the machine's latest peaks beside every store; None when the folder is not
    writable (the store still has them)."""
    return write_json(peaks_file(machine_id), peaks)


def write_json(path: Path, data: dict[str, Any]) -> Path | None:
    """Replace ``path`` whole (written beside it, then renamed: a reader never sees half a
    file); None when the folder is not writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError:
        return None
    return path


def load(machine_id: str) -> dict[str, Any] | None:
    try:
        found = json.loads(peaks_file(machine_id).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def machine_with_peaks(store: Any, machine_id: str | None, store_path: Any = None
                       ) -> dict[str, Any] | None:
    """``store.machine(id)`` with ``peaks`` from the store, else from the per-machine file
    (``peaks_from`` says which); without either, ``peaks_searched`` names both places."""
    if not machine_id:
        return None
    machine = store.machine(machine_id)
    if machine is None:
        return None
    if machine.get("peaks"):
        machine["peaks_from"] = f"store {store_path}" if store_path else "the store"
        return machine
    home = load(machine_id)
    if home is not None:
        machine["peaks"] = home
        machine["peaks_from"] = str(peaks_file(machine_id))
    else:
        machine["peaks_searched"] = [str(store_path or "the store"), str(peaks_file(machine_id))]
    return machine


def peaks_for(store: Any, machine_id: str) -> dict[str, Any] | None:
    """The roofs a run joins into its cells: the store's, else the per-machine file's."""
    return store.peaks(machine_id) or load(machine_id)
