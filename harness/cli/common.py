"""What every command shares: the error classes that mean bad input, JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

import archs
from harness.run.config import ConfigError
from harness.store import StoreError


class UsageError(Exception):
    """Bad usage found after argument parsing (exit 2)."""


def user_errors() -> tuple[type[Exception], ...]:
    """The exception classes that mean bad input (exit 2), not a bug."""
    from harness.backends.base import BackendError

    return (archs.SpecError, ConfigError, StoreError, UsageError, BackendError)


def store_ref(text: str):
    """argparse type of ``--store`` and compare's sources: a path, ``postgresql://...`` or
    ``env:VAR`` (``harness.store.locator``); anything else URL-like is a usage error (exit 2)."""
    import argparse

    from harness.store import locator

    try:
        return locator.parse(text)
    except StoreError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_store_option(p, what: str = "") -> None:  # noqa: ANN001 - an argparse parser
    """``--store``: a SQLite file or a PostgreSQL URL; default ``$ACCELBENCH_STORE`` or the file."""
    from harness.store import locator

    p.add_argument("--store", type=store_ref, default=locator.default_text(),
                   metavar="PATH|URL|env:VAR",
                   help=f"{what}a SQLite file, postgresql://user@host/db, or env:VAR naming a "
                        f"variable that holds either (default: ${locator.ENV_DEFAULT}, else "
                        f"{locator.DEFAULT_PATH})")


def print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def make_console(*, stderr: bool = False) -> Console:
    """A rich console for a person on a terminal; full-width and unwrapped for a pipe or a file.

    Why: rich assumes 80 columns when it cannot ask a terminal, so a table piped to a log had
    its columns cut to one letter and its reasons folded a character a line. A log is read
    with a pager or grep, where long lines are fine and folded ones are not.
    """
    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True)


PIPE_WIDTH = 400  # wide enough for any table row we print; lines are not padded to it


def plural(n: int, word: str) -> str:
    """``1 cell``, ``2 cells``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def warn(message: str) -> None:
    print(f"accelbench: warning: {message}", file=sys.stderr)


def write_report_files(report: Any, folder: Path) -> dict[str, Path]:
    """``reports.write_report`` with an unwritable folder turned into a clean usage error."""
    import reports

    if folder.exists() and not folder.is_dir():
        raise UsageError(f"cannot write the report to {folder}: it exists and is not a folder; "
                         "give --out a folder (it is created if missing)")
    try:
        return dict(reports.write_report(report, folder))
    except OSError as exc:
        raise UsageError(f"cannot write the report to {folder}: {exc.strerror or exc}") from None
