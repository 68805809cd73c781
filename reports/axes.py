"""The design axes of issue 27: how the speed-up moves along one architecture key.

An axis is one resolved parameter (``rank``, ``depth`` of ``mlpdepth``, ``residual``,
``sparsity``, ``act``). A *sweep* is a set of speed-ups whose specs agree on every other
resolved parameter (same family, size, precision, threads and candidate) and differ on that
key, so whatever moves along it is the key's doing. Pure functions of the ``Report``.

The verdict, in the paper section's terms: along an ordered axis the speed-up at the last
point is set beside the first; it *grows* or *shrinks* when their 95% CIs are disjoint
(significant), and otherwise *holds* (any change is within the noise). A categorical axis
(``act``) sets the highest speed-up beside the lowest the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from . import fmt, trends
from .tables import CellRow, Report, SpeedupRow

_ACT_ORDER = ("relu", "relu6", "leakyrelu", "hardswish", "silu", "gelu", "tanh")


@dataclass(frozen=True)
class Axis:
    name: str
    key: str
    title: str
    question: str
    families: tuple[str, ...] | None = None  # None: every family with the key
    ordered: bool = True
    label: Callable[[Any], str] = str
    position: Callable[[Any], float] = float  # where a value sits along the axis


def _rank_label(v: Any) -> str:
    return "whole" if v == 0 else f"rank {v}"


def _rank_position(v: Any) -> float:
    return 0.0 if v == 0 else 1.0 / float(v)  # whole first, then ever lower rank


AXES = (
    Axis("rank", "rank", "Factorised convolutions",
         "Each kxk convolution becomes a 1x1 reduction to rank r, a kxk at rank r and a 1x1 "
         "expansion (archs.factorised): fewer FLOPs in three smaller kernels. Does the "
         "runtime's advantage survive?", label=_rank_label, position=_rank_position),
    Axis("depth", "depth", "Deep against shallow at equal size",
         "mlpdepth spends one size (the hidden units, or the parameters, of one layer of "
         "`units`) on 1 to n equal hidden layers (An et al.).", families=("mlpdepth",)),
    Axis("residual", "residual", "Residual against plain, same layers",
         "The same hidden layers with and without identity shortcuts (one Add per layer, no "
         "parameters).", families=("mlpdepth",), label=lambda v: "residual" if v else "plain"),
    Axis("sparsity", "sparsity", "Wide layers with switched-off neurons",
         "wide: very wide hidden layers with a share of whole neurons zeroed (rows of one "
         "weight, columns of the next). The shapes and FLOPs stay dense; only a runtime that "
         "notices the zeros can gain.", families=("wide",), label=lambda v: f"{float(v):g}"),
    Axis("act", "act", "The activation function",
         "The same network with each activation: ReLU fuses everywhere; GELU, SiLU, tanh "
         "and leaky ReLU cost differently in eager PyTorch and in fused kernels.",
         ordered=False,
         position=lambda v: float(_ACT_ORDER.index(v)) if v in _ACT_ORDER else 99.0),
)


@dataclass(frozen=True)
class Point:
    row: SpeedupRow
    value: Any
    params: Mapping[str, Any]
    base: CellRow | None
    cand: CellRow | None


@dataclass(frozen=True)
class Sweep:
    axis: Axis
    family: str
    label: str  # what the group holds fixed, where several groups differ
    points: tuple[Point, ...]  # along the axis


def _cell(report: Report, row: SpeedupRow, backend: str) -> CellRow | None:
    return next((c for c in report.cells if c.key.spec == row.spec and c.key.backend == backend
                 and c.key.precision == row.precision and c.key.threads == row.threads), None)


def sweeps(report: Report, axis: Axis) -> list[Sweep]:
    """Every sweep of ``axis`` in the session (groups with two or more values on it)."""
    groups: dict[tuple, list[Point]] = {}
    for p in trends.points(report):
        if axis.key not in p.params or (axis.families and p.family not in axis.families):
            continue
        rest = tuple(sorted((k, _show(v)) for k, v in p.params.items() if k != axis.key))
        key = (p.family, rest, p.row.candidate, p.row.precision, p.row.threads)
        groups.setdefault(key, []).append(Point(
            p.row, p.params[axis.key], p.params, _cell(report, p.row, p.row.baseline),
            _cell(report, p.row, p.row.candidate)))
    found = [(k, sorted(ps, key=lambda q: axis.position(q.value))) for k, ps in groups.items()
             if len({repr(q.value) for q in ps}) >= 2]
    varying = _varying([dict(k[1]) for k, _ in found])
    out = []
    for (fam, rest, cand, prec, thr), ps in found:
        fixed = dict(rest)
        held = ", ".join(f"{k}={fixed[k]}" for k in varying if k in fixed)
        extra = [x for x, n in ((cand, "candidate"), (prec, "precision"), (str(thr), "threads"))
                 if len({_part(k, n) for k, _ in found}) > 1]
        out.append(Sweep(axis, fam, ", ".join(x for x in (fam, held, *extra) if x), tuple(ps)))
    return sorted(out, key=lambda s: s.label)


def _show(v: Any) -> str:
    """A parameter value as a spec spells it (the group key and the label)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _part(key: tuple, name: str) -> Any:
    return {"candidate": key[2], "precision": key[3], "threads": key[4]}[name]


def _varying(dicts: list[dict[str, str]]) -> list[str]:
    """Keys whose value differs between groups: what a group's label must name."""
    keys = sorted({k for d in dicts for k in d})
    return [k for k in keys if len({d.get(k) for d in dicts}) > 1]


def _disjoint(a: SpeedupRow, b: SpeedupRow) -> bool:
    return a.ci95[0] > b.ci95[1] or a.ci95[1] < b.ci95[0]


def _say(row: SpeedupRow) -> str:
    return f"{fmt.times(row.speedup)} {fmt.ci(*row.ci95, fmt=fmt.ratio)}"


def verdict(sweep: Sweep) -> tuple[str, str]:
    """``(word, sentence)``: grows / shrinks / holds along an ordered axis; for a categorical
    one, differs / holds between its highest and lowest point."""
    ax, pts = sweep.axis, sweep.points
    if ax.ordered:
        a, b = pts[0], pts[-1]
        sig = _disjoint(a.row, b.row)
        word = ("grows" if b.row.speedup > a.row.speedup else "shrinks") if sig else "holds"
        how = ("significant: the 95% CIs do not overlap" if sig else
               "not significant: the 95% CIs overlap")
        return word, (f"{sweep.label}: the speed-up {word} from {_say(a.row)} at "
                      f"{ax.label(a.value)} to {_say(b.row)} at {ax.label(b.value)} ({how}).")
    hi = max(pts, key=lambda q: q.row.speedup)
    lo = min(pts, key=lambda q: q.row.speedup)
    sig = _disjoint(hi.row, lo.row)
    word = "differs" if sig else "holds"
    how = ("significant: the 95% CIs do not overlap" if sig else
           "not significant: the 95% CIs overlap")
    return word, (f"{sweep.label}: the speed-up is highest with {ax.label(hi.value)} "
                  f"({_say(hi.row)}) and lowest with {ax.label(lo.value)} ({_say(lo.row)}) "
                  f"over {len(pts)} activations; it {word} ({how}).")


def subset(report: Report, sweeps_: list[Sweep]) -> Report:
    """The report restricted to the cells of these sweeps (for the latency-vs-FLOPs figure)."""
    specs = {q.row.spec for s in sweeps_ for q in s.points}
    return replace(report, cells=tuple(c for c in report.cells if c.key.spec in specs),
                   speedups=tuple(r for r in report.speedups if r.spec in specs), summary=())
