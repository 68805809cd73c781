"""``run --dry-run``'s deeper check: build every user model once and ask every backend whether it
can run here, in a throwaway process.

Why a separate process: building a user's model runs the user's code (which may crash, hang or
leak), and asking OpenVINO for its devices loads its plugins; neither belongs in the process that
then prints the plan. The child answers one JSON object on stdout: ``{"problems": [...]}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

PREFLIGHT_TIMEOUT_S = 300


def preflight(workloads: list[str], backends: list[str], prefix: str) -> list[str]:
    """Problems found by building each ``prefix``-marked user model and checking each backend."""
    request = {"models": [w[len(prefix):] for w in workloads if w.startswith(prefix)],
               "backends": list(backends)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "harness.cli.preflight"], input=json.dumps(request),
            capture_output=True, text=True, timeout=PREFLIGHT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return [f"building the models took over {PREFLIGHT_TIMEOUT_S} s (a factory that hangs?)"]
    try:
        return list(json.loads(proc.stdout.strip().splitlines()[-1])["problems"])
    except (ValueError, IndexError, KeyError, TypeError):
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        return [f"the check process died (exit {proc.returncode}) while building the models: {tail}"]


def _check(request: dict[str, Any]) -> list[str]:
    from archs import SpecError
    from archs.custom import load_model
    from harness.backends import get_backend

    problems = []
    for ref in request["models"]:
        try:
            load_model(ref)
        except SpecError as exc:
            problems.append(str(exc))
    for text in request["backends"]:
        ok, why = get_backend(text).availability()
        if not ok:
            problems.append(f"backend {text}: {why}")
    return problems


def main() -> None:
    request = json.loads(sys.stdin.read())
    problems = _check(request)
    sys.stdout.write("\n" + json.dumps({"problems": problems}) + "\n")


if __name__ == "__main__":
    main()
