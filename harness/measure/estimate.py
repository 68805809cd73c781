"""A cell's figures from its raw samples: the nested interval when the cell was timed in several
processes, the one-process interval (with a note saying what it cannot tell) otherwise.

Every report, table, comparison and gate reads a cell through these two functions, so a store
written before processes were recorded and one written after are read by the same rules. Those
that read a whole session first fit its priors (``latency_priors``, ``speedup_prior``): the
process-level variance its cells share, which each cell's interval borrows
(``harness.measure.moderate``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from harness.measure import moderate, nested, slowed, stats
from harness.measure.scenarios import LATENCY, THROUGHPUT

ONE_PROCESS_NOTE = ("timed in one worker process: the interval covers the blocks of that "
                    "process only, not the variation between processes or minutes of a session, "
                    "so a repeat run may land outside it")


def images_per_sample(cell: Any) -> int:
    """Images one sample of the cell finished (1 for stores from before throughput cells)."""
    meta = cell.meta if isinstance(cell.meta, dict) else {}
    n = meta.get("images_per_sample")
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 1


def per_image(cell: Any) -> Any:
    """A throughput cell seen in ms per image (its samples divided by the images each
    finished), so that medians, intervals and speed-ups compare backends that finish different
    numbers of images per sample (OpenVINO's queue against a batched call); any other cell as
    it is. images/s = 1000 / the median of this view."""
    n = images_per_sample(cell)
    if getattr(cell.key, "scenario", LATENCY) != THROUGHPUT or n == 1:
        return cell
    return dataclasses.replace(cell, samples_ms=[s / n for s in cell.samples_ms])


def process_parts(cell: Any) -> list[list[Any]] | None:
    """The cell's clean blocks grouped by process, or None without process structure."""
    meta = cell.meta if isinstance(cell.meta, dict) else {}
    return nested.by_process(cell.samples_ms, meta.get("blocks"), meta.get("disturbed"),
                             meta.get("block_process"))


def processes_of(cell: Any) -> int:
    """How many worker processes timed the cell (1 for stores without process structure)."""
    parts = process_parts(cell)
    return len(parts) if parts else 1


def latency_priors(cells: Any) -> dict[str, moderate.Prior]:
    """One prior per backend from a session's done cells (the caller's choice of cells) timed in
    several processes (a backend's process-level spread is its own: PyTorch's OpenMP threads
    suffer more from a neighbour)."""
    by_backend: dict[str, list[tuple[float, float]]] = {}
    for cell in cells:
        parts = process_parts(cell) if cell.samples_ms else None
        own = nested.process_variance(nested.process_medians(parts)) if parts and len(parts) >= 2 \
            else None
        if own is not None:
            by_backend.setdefault(cell.key.backend, []).append(own)
    priors = {}
    for backend, got in by_backend.items():
        prior = moderate.fit_prior([v for v, _ in got], [d for _, d in got])
        if prior is not None:
            priors[backend] = prior
    return priors


def speedup_prior(pairs: Any, q: float = nested.SPEEDUP_QUANTILE) -> moderate.Prior | None:
    """The prior of a session's speed-ups from its (baseline cell, candidate cell) pairs, each
    read at ``q`` (as ``cell_speedup`` reads them)."""
    got = []
    for base, cand in pairs:
        bp, cp, _ = paired_parts(base, cand)
        if bp and cp and len(bp) == len(cp) >= 2:
            own = nested.process_variance(nested.pair_ratios(bp, cp, q))
            if own is not None:
                got.append(own)
    return moderate.fit_prior([v for v, _ in got], [d for _, d in got])


def paired_parts(base: Any, cand: Any) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Both cells' processes, aligned by pair, with the pairs timed in a host slow stretch set
    aside (``harness.measure.slowed``), and the record of those set aside."""
    bp, cp = process_parts(base), process_parts(cand)
    if not bp or not cp or len(bp) != len(cp) or len(bp) < 3:
        return bp, cp, []
    found = slowed.set_aside([bp, cp])
    if not found:
        return bp, cp, []
    names = (base.key.backend, cand.key.backend)
    records = slowed.describe(found, names, nested.pair_ratios(bp, cp), _process_ids(base))
    return slowed.drop(bp, found), slowed.drop(cp, found), records


def _process_ids(cell: Any) -> list[int] | None:
    """The process indices of the cell's processes with clean blocks, in ``process_parts``
    order (for the record: which pass a set-aside pair was)."""
    meta = cell.meta if isinstance(cell.meta, dict) else {}
    owner, flags = meta.get("block_process"), meta.get("disturbed")
    if not isinstance(owner, list):
        return None
    if not isinstance(flags, list) or len(flags) != len(owner):
        flags = [False] * len(owner)
    return sorted({int(p) for p, bad in zip(owner, flags, strict=True) if bad is not True})


def cell_summary(cell: Any, *, seed: int = 0, prior: moderate.Prior | None = None
                 ) -> dict[str, Any]:
    """``stats.summarize`` of the clean samples, its interval nested when processes allow (and
    moderated by ``prior``, the session's, where one is given)."""
    cell = per_image(cell)
    samples, blocks = cell.clean()
    parts = (process_parts(cell) if samples else None) or []
    nested_ok = len(parts) >= 2
    # the nested interval replaces the one-process one: skip that bootstrap (order statistics
    # only stand in until then)
    summary = stats.summarize(samples, None if nested_ok else blocks, seed=seed)
    summary["processes"] = 1
    if not samples:
        return summary
    if nested_ok:
        got = nested.nested_summary(parts, seed=seed, prior=prior)
        summary.update(ci95=got["ci95"], ci_method="nested", processes=got["processes"],
                       log_se=got["log_se"], df=got["df"], variance=got["variance"],
                       moderated=got["moderated"], ci_note=None)
    else:
        summary["ci_note"] = ONE_PROCESS_NOTE
        summary.update(_log_scale(summary.get("median"), summary.get("ci95")))
    return summary


def cell_speedup(base: Any, cand: Any, *, seed: int = 0,
                 prior: moderate.Prior | None = None,
                 q: float = nested.SPEEDUP_QUANTILE) -> dict[str, Any]:
    """Speed-up of ``cand`` over ``base`` with the nested paired interval where both were timed
    in the same process pairs, each side read at ``q`` (by default its quiet state; 0.5 reads
    medians); the one-process paired-block interval of
    the ratio of medians otherwise. ``quantile`` in the result says which. Throughput cells are
    compared per image (``per_image``): a ratio of images per second."""
    base, cand = per_image(base), per_image(cand)
    bp, cp, aside = paired_parts(base, cand)
    if bp and cp and len(bp) >= 2:
        got = nested.nested_speedup(bp, cp, seed=seed, prior=prior, q=q)
        if got is not None:
            got["set_aside"] = aside
            got["ci_note"] = slowed.note(aside, len(bp) + len(aside))
            return got
    (bs, bb), (cs, cb) = base.clean(), cand.clean()
    # One process (or pairs that cannot be matched): the ratio of medians. Its interval sees
    # that process only, and a 10th percentile's block bootstrap covers less than a median's
    # (86 against 91 of 100 simulated one-process session pairs, measured with the simulation
    # of tests/test_interval_coverage.py), so the quiet-state reading
    # (``nested.SPEEDUP_QUANTILE``) is kept for cells timed in several process pairs.
    r = stats.speedup(bs, cs, baseline_blocks=bb, candidate_blocks=cb, seed=seed)
    r["processes"] = 1
    r["quantile"], r["speedup_median"] = 0.5, r.get("speedup")
    if r.get("speedup") is not None:
        note = ONE_PROCESS_NOTE if not (bp and cp) or len(bp) < 2 else (
            "the two sides' processes or blocks could not be paired")
        r["ci_note"] = f"{r['ci_note']}; {note}" if r.get("ci_note") else note
        r.update(_log_scale(r["speedup"], r.get("ci95")))
    return r


def _log_scale(point: float | None, ci: Any) -> dict[str, Any]:
    """``log_se`` and ``df`` of a percentile interval, so comparisons can combine it with a
    nested one (a normal approximation on the log scale; many blocks, so df is large)."""
    try:
        lo, hi = float(ci[0]), float(ci[1])
        if point and lo > 0 and hi > 0:
            return {"log_se": math.log(hi / lo) / (2 * nested.Z95), "df": 1e6}
    except (TypeError, ValueError, IndexError):
        pass
    return {"log_se": None, "df": None}
