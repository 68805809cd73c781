"""Exit 1 unless the latest session in STORE has at least one cell that is done.

Why: `accelbench run` exits 1 when some cells failed or were skipped (a GPU missing on one
runner is ordinary), so CI accepts exit 1 — but a session whose every cell failed (a broken
install, a backend that never loads) must not pass as a result. Usage, from the repository's
virtual environment: `python .github/scripts/require-done-cells.py STORE [-- COMMAND ...]`.
With a command (the session's `accelbench run ...`), it is run first: any exit status above 1
(bad usage, a crash, Ctrl-C) is passed on; 0 and 1 go on to the check.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    if len(argv) != 1 or ("--" in sys.argv[1:] and not command):
        print("usage: require-done-cells.py STORE [-- COMMAND ...]", file=sys.stderr)
        return 2
    if command:
        rc = subprocess.run(command).returncode
        if rc > 1 or rc < 0:
            print(f"{command[0]} exited {rc}: not a session whose cells can be judged",
                  file=sys.stderr)
            return rc if rc > 1 else 1
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "report", "--store", argv[0],
                               "--json", "--out", out], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"accelbench report failed (exit {proc.returncode}): {proc.stderr.strip()}",
              file=sys.stderr)
        return 1
    cells = json.loads(proc.stdout)["cells"]
    done = [c for c in cells if c["status"] == "done"]
    if not done:
        reasons = sorted({f"{c['status']}: {c.get('reason') or 'no reason given'}" for c in cells})
        print(f"no cell of the session is done ({len(cells)} cells): " + "; ".join(reasons),
              file=sys.stderr)
        return 1
    print(f"{len(done)} of {len(cells)} cells done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
