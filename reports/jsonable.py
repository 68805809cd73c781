"""Strict JSON for every report and comparison: one conversion, so ``--json``, report.json and
``compare --json`` write the same things the same way."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def jsonable(obj: Any) -> Any:
    """Strict JSON: NaN/Inf become null (json.dumps would write invalid ``NaN``), tuples lists,
    numpy scalars Python numbers, and anything unknown its ``str`` — never a pickle."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)
