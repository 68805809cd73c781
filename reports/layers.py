"""Where a speed-up comes from, layer kind by layer kind, from cells stored by ``run --layers``.

Pure functions over stored cells (each holds its backend's per-layer table in
``meta["layers"]``): ``layer_kind_rows`` joins the tables of one comparison with
``harness.layers.explain`` (the same charging rules as ``accelbench explain``) and
``plot_layer_kinds`` draws time by kind per backend. Nothing here times anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from harness.layers import KINDS, explain

_COLORS = dict(zip(KINDS, ["#1f77b4", "#17becf", "#aec7e8", "#9467bd", "#ff7f0e", "#2ca02c",
                           "#8c564b", "#d62728", "#e377c2", "#bcbd22", "#7f7f7f"], strict=True))


def layer_kind_rows(cells: Iterable[Any], baseline: str = "torch") -> list[dict[str, Any]]:
    """One row per (spec, precision, threads, kind): ms and share per backend, ``saved_ms``
    (baseline minus the first other backend), ``saved_share`` and each backend's coverage.

    ``cells``: objects with ``key`` (spec, backend, precision, threads) and ``meta`` (a
    ``CellResult`` or a report's ``CellRow``); cells without a layer table are left out.
    """
    groups: dict[tuple[str, str, int], dict[str, Mapping[str, Any]]] = {}
    for cell in cells:
        layers = (cell.meta or {}).get("layers")
        if isinstance(layers, Mapping) and "layers" in layers:
            key = cell.key
            groups.setdefault((key.spec, key.precision, key.threads), {})[key.backend] = layers
    rows: list[dict[str, Any]] = []
    for (spec, precision, threads), tables in groups.items():
        units = next(t["units"] for t in tables.values())
        result = explain(spec, units, {b: {"layers": t["layers"], "whole_ms": t["whole_ms"]}
                                       for b, t in tables.items()}, baseline=baseline)
        for kind in result.kinds:
            rows.append({"spec": spec, "precision": precision, "threads": threads,
                         "backends": result.backends, "coverage": result.coverage, **kind})
    return rows


def plot_layer_kinds(rows: list[dict[str, Any]], path: str | Path, *,
                     source: str = "") -> Path | None:
    """Stacked bars: per (spec, backend) the layer time split by kind. ``source`` (machine,
    precision, threads) goes into the title: every figure says where it comes from."""
    bars: list[tuple[str, str]] = []
    for r in rows:
        for b in r["backends"]:
            if (r["spec"], b) not in bars:
                bars.append((r["spec"], b))
    if not bars:
        return None
    fig = Figure(figsize=(8, 1.2 + 0.4 * len(bars)), layout="constrained")
    ax = fig.add_subplot()
    left = [0.0] * len(bars)
    for kind in KINDS:
        widths = [sum(r["ms"].get(b, 0.0) for r in rows if r["spec"] == s and r["kind"] == kind)
                  for s, b in bars]
        if any(widths):
            ax.barh(range(len(bars)), widths, left=left, color=_COLORS[kind], label=kind)
            left = [x + w for x, w in zip(left, widths, strict=True)]
    ax.set_yticks(range(len(bars)), [f"{s} {b}".replace("$", r"\$") for s, b in bars])
    ax.invert_yaxis()
    ax.set_xlabel("per-layer time, ms (median of profiled passes)")
    ax.set_title(("time by layer kind" + (f" ({source})" if source else "")).replace("$", r"\$"),
                 fontsize=9)
    ax.legend(fontsize=7, ncols=4, loc="lower right")
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
