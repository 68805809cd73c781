"""What every command shares: the error classes that mean bad input, JSON output."""

from __future__ import annotations

import json
import sys

import archs
from harness.config import ConfigError
from harness.store import StoreError


class UsageError(Exception):
    """Bad usage found after argument parsing (exit 2)."""


def user_errors() -> tuple[type[Exception], ...]:
    """The exception classes that mean bad input (exit 2), not a bug."""
    from harness.backends.base import BackendError

    return (archs.SpecError, ConfigError, StoreError, UsageError, BackendError)


def print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
