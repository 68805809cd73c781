"""``accelbench predict``: latency per backend and speed-up of networks not yet run.

Fitted on the kernel cells of ``--store`` (``accelbench run --preset kernels``); see
``harness.predict`` for the model. ``--score OTHER`` states the accuracy on the measured
networks of another store, as nn-Meter does (share within ±5% and ±10%, RMSPE).
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.predict.session import SessionLevel


def add_parser(sub: argparse._SubParsersAction) -> None:
    from harness.cli.common import add_store_option, store_ref

    p = sub.add_parser(
        "predict", help="predict latency and speed-up from kernel measurements (no timing)",
        description="Fit per-kernel models on the kernel cells of --store (run --preset kernels "
                    "first) and predict each SPEC's latency per backend and speed-up, with 95% "
                    "prediction intervals; --score scores the predictor on another store.",
    )
    p.add_argument("specs", nargs="*", metavar="SPEC", help="e.g. dwbottleneck:depth=4,res=64")
    p.add_argument("--model", metavar="FILE.py:FACTORY",
                   help="your own nn.Module: FACTORY() returns (module, example_input)")
    add_store_option(p, "the store whose kernel-family cells are fitted on: ")
    p.add_argument("--score", type=store_ref, metavar="STORE",
                   help="score on the measured networks of this store (not fitted on)")
    p.add_argument("--precision", help="fit the cells at this precision (when several)")
    p.add_argument("--threads", type=int, help="fit the cells at this thread count (when several)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    import archs
    from harness.cli.common import UsageError, print_json
    from harness.predict.predictor import PredictError, predict, score, train
    from harness.predict.session import describe

    if not args.specs and not args.model and not args.score:
        raise UsageError("give SPEC..., --model FILE.py:FACTORY or --score STORE")
    specs = [str(archs.parse(s)) for s in args.specs]  # bad specs fail before any fitting
    if args.model and ":" not in args.model:
        raise UsageError(f"--model {args.model!r}: expected FILE.py:FACTORY")
    for ref in (args.store, args.score):
        if ref is not None and ref.path is not None and not ref.path.is_file():
            raise UsageError(f"no store at {ref.path}")
    try:
        trained = train(args.store, precision=args.precision, threads=args.threads)
        results = [predict(trained, s) for s in specs]
        if args.model:
            results.append(predict(trained, "@" + args.model))
        scored = score(trained, args.score) if args.score else None
    except PredictError as exc:
        raise UsageError(str(exc)) from None
    meta = {"store": str(args.store), "precision": trained.precision, "threads": trained.threads,
            "fit_s": trained.fit_s, "fitted_cells": {b: f.n_cells for b, f in trained.fits.items()},
            "no_reading": trained.no_reading, "kernel_repeatability": trained.kernel_repeatability,
            "session_level": describe(trained.session),
            "coefficients": {b: f.coefficients() for b, f in trained.fits.items()}}
    if args.json:
        print_json({"fit": meta, "predictions": results, "score": scored})
        return 0
    cells = ", ".join(f"{b} {f.n_cells}" for b, f in trained.fits.items())
    print(f"fitted on the kernel cells of {args.store} ({cells}) "
          f"({trained.precision}, {trained.threads} threads) in {trained.fit_s:.1f} s")
    for b, why in trained.no_reading.items():
        print(f"  {b}: not predicted ({why})")
    _print_kernel_repeatability(trained.kernel_repeatability)
    _print_session_level(trained.session)
    for r in results:
        _print_prediction(r)
    if scored:
        _print_score(scored)
    return 0


def _print_kernel_repeatability(rep: dict[str, Any]) -> None:
    """How far the fit's input moves between runs of the kernel preset."""
    sessions = _sessions(rep, "  each kernel cell was run once: how far another run would move "
                         "the fit is not known (run the kernel preset again into this store: "
                         "cells run several times are read at their runs' geometric mean)")
    if sessions is None:
        return
    shares = ", ".join(f"{t} {100 * v['one_session']['within_10']:.0f}% "
                       f"(RMSPE {100 * v['one_session']['rmspe']:.1f}%)"
                       for t, v in rep.items() if t != "sessions")
    print(f"  the kernel cells were run in {sessions} sessions; one run of a cell lies within "
          f"±10% of its long-run figure for {shares}: what one run of the preset is worth")


def _print_session_level(level: SessionLevel | None) -> None:
    """Whether the intervals carry the machine's run-to-run session level (``predict.session``)."""
    if level is None:
        print("  the intervals leave out how far a whole session moves on this machine (no A/A "
              "record for it: `accelbench compare A.sqlite B.sqlite --record-noise` on two runs "
              "of one preset keeps one)")
        return
    when = (f" of {time.strftime('%Y-%m-%d', time.gmtime(level.recorded_at))}"
            if level.recorded_at else "")
    print(f"  the intervals carry this machine's session level (its A/A record{when}: latency "
          f"±{100 * level.latency_sd:.1f}%, speed-up ±{100 * level.speedup_sd:.1f}%, one sd): the "
          f"session a network is measured in, and the kernel cells' ({level.kernel_sessions:g} "
          f"a cell), each land that far from the next")


def _sessions(rep: dict[str, Any], unknown: str) -> str | None:
    """How many sessions measured each cell ("2/3"), or None after saying ``unknown`` (each
    was measured once: ``repeatability`` is empty)."""
    if not rep:
        print(unknown)
        return None
    return "/".join(str(n) for n in rep["sessions"])


def _fmt_iv(iv: list[float], unit: str = "") -> str:
    return f"[{iv[0]:.3g}{unit}, {iv[1]:.3g}{unit}]"


def _print_prediction(r: dict[str, Any]) -> None:
    print(f"\n{r['spec']}")
    for b, p in r["backends"].items():
        if "error" in p:
            print(f"  {b:<14} not predicted: {p['error']}")
            continue
        dom = ", ".join(f"{d['kind']} {d['unit']} {100 * (d['share'] or 0):.0f}%"
                        + (" (measured)" if d.get("measured") else "") for d in p["dominant"])
        print(f"  {b:<14} {p['ms']:.3g} ms  95% {_fmt_iv(p['interval'], ' ms')}  "
              f"{p['kernels']} kernels ({p['measured_kernels']} of a measured shape); "
              f"dominant: {dom}")
        print(f"    by kind: {_by_kind(p)}")
        print(f"    whole inference: {_terms(p)}")
        for note in p["out_of_range"][:5]:
            print(f"    beyond what was measured: {note}")
        if len(p["out_of_range"]) > 5:
            print(f"    ... {len(p['out_of_range']) - 5} more notes of kernels beyond what was "
                  "measured (--json lists them)")
    for s in r["speedups"]:
        print(f"  speed-up {s['candidate']} over {s['baseline']}: {s['speedup']:.2f}x  "
              f"95% {_fmt_iv(s['interval'], 'x')}")


def _by_kind(p: dict[str, Any], most: int = 4) -> str:
    """Where the kernels' share of the prediction goes, by kernel kind (the largest ``most``, as
    ``predict`` orders ``by_kind``): in a network of hundreds of kernels (DARTS: 562 on
    OpenVINO) no single kernel dominates, and its three largest say 1% each; its kinds say
    where the time goes."""
    kinds = list(p["by_kind"].items())
    total = p["ms"] if p["ms"] > 0 else 1.0
    shown = [f"{kind} {ms:.3g} ms ({100 * ms / total:.0f}%)" for kind, ms in kinds[:most]]
    rest = sum(ms for _, ms in kinds[most:])
    return ", ".join(shown + ([f"{len(kinds) - most} more {rest:.3g} ms"] if kinds[most:] else [])) \
        or "none"


_TERM_NAMES = {"overhead_ms": "overhead", "boundary_ms": "input/output conversion",
               "cold_weight_ms": "cold weights", "switch_ms": "switches into a convolution",
               "switched_input_ms": "switched inputs"}


def _terms(p: dict[str, Any]) -> str:
    """The prediction's whole-inference terms that cost anything, in ms; the cold-weight one
    with why (the bytes the inference moves against the last-level cache), and a network that
    moves more than the cache where no fitted cell did (its cold weights not priced)."""
    inside = (f", {p['conversion_MB']:.3g} MB of it layout conversions inside its convolutions"
              if p.get("conversion_MB") else "")
    moves = (f"the inference moves {p['moved_MB']:.3g} MB{inside}, more than the "
             f"{p['cache_MB']:.3g} MB ({p['cache_MB'] * 1e6 / 2**20:.3g} MiB) L3")
    parts = []
    for name, ms in p["terms"].items():
        if ms > 0:
            why = (f" ({p['weight_MB']:.3g} MB of weights read from memory: {moves})"
                   if name == "cold_weight_ms" else "")
            parts.append(f"{_TERM_NAMES[name]} {ms:.3g} ms{why}")
    over = 0 < p["cache_MB"] < p["moved_MB"]
    if over and p["weight_MB"] > 0 and not p["cold_identified"]:
        parts.append(f"cold weights not priced ({moves}, but no fitted cell did: run the "
                     "kernel preset, whose large chains identify the term)")
    return ", ".join(parts) or "none"


def _print_score(scored: dict[str, Any]) -> None:
    print(f"\naccuracy on the measured networks of {scored['store']} "
          f"(share within ±5% / ±10%, RMSPE):")
    for target, fams in scored["summary"].items():
        for fam, st in fams.items():
            print(_score_line(target, fam, st))
    for s in scored.get("skipped") or ():
        print(f"  not scored: {s['spec']}: {s['why']}")
    for target, iv in (scored.get("intervals") or {}).items():
        print(f"  {target:<28} its 95% intervals held {round(iv['inside'] * iv['n'])} of "
              f"{iv['n']} measured figures ({100 * iv['inside']:.0f}%; median half-width "
              f"±{100 * iv['median_half_width']:.0f}%)")
    rep = scored.get("repeatability") or {}
    sessions = _sessions(rep, "  (each network was measured in one session: how far a second "
                         "run of it would land, and so the best score a prediction could get, "
                         "is not known; run the networks again into the same store)")
    if sessions is None:
        return
    print(f"the best score these measurements allow ({sessions} sessions of each network; a "
          "perfect predictor of each network's long-run figure, from how far each session lies "
          "from the others' mean):")
    for target, st in rep.items():
        if target != "sessions":
            print(_score_line(target, "one session", st["one_session"]))
            print(_score_line(target, "their mean", st["mean_of_sessions"])
                  + "   (what the score above is against)")


def _score_line(target: str, family: str, st: dict[str, Any]) -> str:
    return (f"  {target:<28} {family:<14} n={st['n']:<3} ±5%: {100 * st['within_5']:.0f}%  "
            f"±10%: {100 * st['within_10']:.0f}%  RMSPE {100 * st['rmspe']:.1f}%")
