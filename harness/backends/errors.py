"""How a backend says no: a backend string that names nothing, or a model it could not prepare.

Why a module of its own: the backend interface (``base``) and the option parser (``options``)
both raise ``BackendError``, and ``base`` builds on ``options``; with the errors here the arrows
run one way (``base`` -> ``options`` -> ``errors``). ``harness.backends.base`` re-exports both
names, where backends and callers have always found them.
"""

from __future__ import annotations

from harness.run.protocol import CONVERSION


class BackendError(ValueError):
    """A backend string that names nothing runnable (unknown name, malformed device)."""


class PrepareError(RuntimeError):
    """Preparation failed. ``kind`` says at which stage: conversion/compilation or running."""

    def __init__(self, message: str, kind: str = CONVERSION) -> None:
        super().__init__(message)
        self.kind = kind
