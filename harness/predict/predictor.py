"""Fit on a store's kernel cells, predict networks, score predictions against measured cells.

The speed-up is predicted as a ratio of paired draws (the same bootstrap resample of kernel
cells on both backends), so its interval is the speed-up's own, not two latency intervals
divided. Accuracy is stated as nn-Meter states it (Zhang et al., MobiSys 2021): the share of
networks predicted within ±5% and ±10% of their measured latency, and the RMSPE.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from archs.spec import SpecError
from harness.predict.dataset import (
    KernelCache,
    cache_path,
    combined,
    last_level_cache,
    model_files,
    only_machine,
    runs,
)
from harness.predict.design import moved_bytes, weight_bytes
from harness.predict.fusion import Kernel
from harness.predict.intervals import draws, interval
from harness.predict.model import Fit, fit
from harness.predict.session import SessionLevel, describe, of_machine


class PredictError(ValueError):
    """The store cannot support the prediction asked for (no kernel cells, several groups)."""


@dataclass
class Trained:
    fits: dict[str, Fit]
    precision: str
    threads: int
    baseline: str
    no_reading: dict[str, str]  # backend -> why its kernels cannot be read
    fit_s: float
    cache: KernelCache
    # the kernel cells' own run-to-run agreement (``repeatability`` over the kernel runs; empty
    # when each cell was run once): how far the fit's input moves between runs of the preset
    kernel_repeatability: dict[str, Any]
    # the machine's session level in every interval (``session``); None: no A/A record
    session: SessionLevel | None = None


def _group(groups: dict[tuple[str, int], Any], precision: str | None, threads: int | None,
           what: str) -> tuple[str, int]:
    keys = [k for k in groups if (precision is None or k[0] == precision)
            and (threads is None or k[1] == threads)]
    if not keys:
        raise PredictError(f"no {what} cells at precision={precision or 'any'}, "
                           f"threads={threads or 'any'}; the store has {sorted(groups) or 'none'}")
    if len(keys) > 1:
        raise PredictError(f"{what} cells at several settings {sorted(keys)}: choose one with "
                           "--precision and --threads")
    return keys[0]


def _spec_builder(spec: str) -> Callable[[], Any]:
    def build() -> Any:
        if spec.startswith("@"):
            from archs.custom import load_model

            return load_model(spec[1:])
        import archs

        return archs.build(spec)

    return build


def train(store_path: Any, *, precision: str | None = None, threads: int | None = None) -> Trained:
    from harness.backends import DEFAULT_BASELINE

    groups = runs(store_path, kernels_only=True)
    precision, threads = _group(groups, precision, threads, "kernel-family")
    cells = combined(groups[(precision, threads)])
    backends = sorted(cells)
    cache = KernelCache(cache_path(store_path))
    t0 = time.perf_counter()
    data: dict[str, list[tuple[str, float, list[Kernel]]]] = {b: [] for b in backends}
    no_reading: dict[str, str] = {}
    for spec in sorted({s for per in cells.values() for s in per}):
        have = [b for b in backends if spec in cells[b]]
        for b, ks in cache.kernels(spec, _spec_builder(spec), have, precision, threads).items():
            if isinstance(ks, str):
                no_reading[b] = ks
            else:
                data[b].append((spec, cells[b][spec], ks))
    cache.save()
    machine_id, machine = only_machine(store_path)  # one read: its caches and its A/A record
    fits = fit({b: rows for b, rows in data.items() if b not in no_reading},
              cache_bytes=last_level_cache(machine))
    base = DEFAULT_BASELINE if DEFAULT_BASELINE in fits else (sorted(fits) or [""])[0]
    per_cell = [len(seen) for specs in groups[(precision, threads)].values() for seen in specs.values()]
    session = of_machine(machine_id, float(np.median(per_cell)) if per_cell else 1.0)
    return Trained(fits, precision, threads, base, no_reading, time.perf_counter() - t0, cache,
                   repeatability(groups[(precision, threads)], base), session)


def predict(trained: Trained, what: str, build: Callable[[], Any] | None = None,
            top: int = 3) -> dict[str, Any]:
    """One network's predicted latency per backend, the speed-ups over the baseline, each with
    its interval, the dominant kernels, and what lies outside the measured ranges."""
    backends = sorted(trained.fits)
    got = trained.cache.kernels(what, build or _spec_builder(what), backends,
                                trained.precision, trained.threads)
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"spec": what, "precision": trained.precision,
                           "threads": trained.threads, "backends": {}, "speedups": [],
                           "session_level": describe(trained.session)}
    readable = {b: ks for b, ks in got.items() if b in trained.fits and not isinstance(ks, str)}
    sampled = draws(trained.fits, readable, rng, trained.session)
    for b in backends:
        ks = got[b]
        if isinstance(ks, str):
            out["backends"][b] = {"error": ks}
            continue
        f = trained.fits[b]
        ms = f.predict_ms(ks)
        per = sorted(((f.kernel_ms(k), k) for k in ks), key=lambda t: -t[0])
        by_kind: dict[str, float] = {}
        for kms, k in per:
            by_kind[k.kind] = by_kind.get(k.kind, 0.0) + kms
        out["backends"][b] = {
            "ms": ms, "interval": interval(sampled[b]),
            # the whole inference's terms (ms; the overhead among them), and what decides the
            # cold-weight one
            "terms": f.terms(ks), "moved_MB": moved_bytes(ks) / 1e6,
            "conversion_MB": sum(k.conversion_bytes for k in ks) / 1e6,
            "weight_MB": weight_bytes(ks) / 1e6, "cache_MB": f.cache_bytes / 1e6,
            "cold_identified": f.cold_identified,
            "kernels": len(ks), "measured_kernels": sum(f.is_measured(k) for k in ks),
            "dominant": [{"kind": k.kind, "unit": k.units[0], "fused": len(k.units),
                          "ms": kms, "share": kms / ms if ms > 0 else None,
                          "measured": f.is_measured(k)} for kms, k in per[:top]],
            "by_kind": {k: v for k, v in sorted(by_kind.items(), key=lambda t: -t[1])},
            "out_of_range": f.out_of_range(ks),
        }
    base = trained.baseline
    for b in backends:
        if b == base or b not in sampled or base not in sampled:
            continue
        ratio = sampled[base] / np.maximum(sampled[b], 1e-12)
        point = out["backends"][base]["ms"] / max(out["backends"][b]["ms"], 1e-12)
        out["speedups"].append({"baseline": base, "candidate": b, "speedup": point,
                                "interval": interval(ratio)})
    trained.cache.save()
    return out


def _stats(errors: list[float]) -> dict[str, Any]:
    e = np.abs(np.array(errors))
    return {"n": len(errors), "within_5": float(np.mean(e <= 0.05)) if errors else None,
            "within_10": float(np.mean(e <= 0.10)) if errors else None,
            "rmspe": float(np.sqrt(np.mean(e ** 2))) if errors else None}


def score(trained: Trained, store_path: Any) -> dict[str, Any]:
    """Predict every measured non-kernel network of ``store_path`` at the fitted settings and
    compare: per backend and per speed-up, overall and per family. A network measured in
    several sessions is scored against their geometric mean (``dataset.combined``), and the
    sessions' agreement with each other is stated beside the score (``repeatability``); so is
    how often the predictions' 95% intervals held the measured figure, and how wide they were
    (``intervals``: an interval is honest when it holds what is then measured)."""
    sessions = runs(store_path, kernels_only=False).get((trained.precision, trained.threads), {})
    cells = combined(sessions)
    if not cells:
        raise PredictError(f"{store_path} has no measured networks at precision="
                           f"{trained.precision}, threads={trained.threads}")
    errs: dict[str, dict[str, list[float]]] = {}
    held: dict[str, list[tuple[bool, float]]] = {}  # target -> (inside its interval, half-width)
    rows = []
    skipped: list[dict[str, str]] = []  # networks that cannot be rebuilt here, and why
    specs = sorted({s for per in cells.values() for s in per})
    files = model_files(store_path) if any(s.startswith("@") for s in specs) else {}
    for spec in specs:
        try:
            p = _predict_measured(trained, spec, files)
        except SpecError as exc:
            skipped.append({"spec": spec, "why": str(exc)})
            continue
        family = "custom" if spec.startswith("@") else spec.split(":", 1)[0]
        row: dict[str, Any] = {"spec": spec, "family": family, "measured": {}, "predicted": {}}
        for b, pb in p["backends"].items():
            if "ms" in pb and spec in cells.get(b, {}):
                m = cells[b][spec]
                row["measured"][b], row["predicted"][b] = m, pb["ms"]
                errs.setdefault(b, {}).setdefault(family, []).append(pb["ms"] / m - 1)
                held.setdefault(b, []).append(_held(pb["interval"], m, pb["ms"]))
        for s in p["speedups"]:
            b0, b1 = s["baseline"], s["candidate"]
            if b0 in row["measured"] and b1 in row["measured"]:
                m = row["measured"][b0] / row["measured"][b1]
                name = f"speedup {b1}/{b0}"
                row["measured"][name], row["predicted"][name] = m, s["speedup"]
                errs.setdefault(name, {}).setdefault(family, []).append(s["speedup"] / m - 1)
                held.setdefault(name, []).append(_held(s["interval"], m, s["speedup"]))
        rows.append(row)
    if not rows:
        raise PredictError(f"no network of {store_path} could be predicted: "
                           + "; ".join(f"{s['spec']}: {s['why']}" for s in skipped))
    summary = {}
    for target, fams in errs.items():
        everything = [e for es in fams.values() for e in es]
        summary[target] = {"all": _stats(everything), **{f: _stats(es) for f, es in sorted(fams.items())}}
    # the floor of what was scored: its backends and networks, its speed-ups
    scored = {b: {r["spec"]: sessions[b][r["spec"]] for r in rows if b in r["measured"]}
              for b in sessions if b in errs}
    floor = repeatability(scored, trained.baseline)
    return {"store": str(store_path), "precision": trained.precision, "threads": trained.threads,
            "summary": summary, "networks": rows, "skipped": skipped,
            "intervals": {t: {"n": len(h), "inside": float(np.mean([i for i, _ in h])),
                              "median_half_width": float(np.median([w for _, w in h]))}
                          for t, h in held.items()},
            "repeatability": {t: v for t, v in floor.items() if t == "sessions" or t in summary}}


def _predict_measured(trained: Trained, spec: str, files: dict[str, str]) -> dict[str, Any]:
    """``predict`` for a measured network: a user model (``@net.py#1a2b3c4d:make``) is rebuilt
    from the file its session recorded (``dataset.model_files``); SpecError where there is none
    any more (moved, edited: another model) or it no longer builds."""
    if not spec.startswith("@"):
        return predict(trained, spec)
    ref = files.get(spec)
    if ref is None:
        raise SpecError(f"the model file of {spec} is not where its session found it, or has "
                        "changed since (its name is its content's hash): nothing to rebuild")
    return predict(trained, spec, _spec_builder("@" + ref))


def _held(iv: list[float], measured: float, point: float) -> tuple[bool, float]:
    """Whether the measured figure lies in the prediction's interval, and the interval's
    half-width relative to the prediction."""
    return iv[0] <= measured <= iv[1], (iv[1] - iv[0]) / 2 / point if point > 0 else float("nan")


def repeatability(sessions: dict[str, dict[str, dict[str, float]]], baseline: str
                  ) -> dict[str, Any]:
    """The best score a prediction can get from these measurements: per backend and for the
    speed-up over ``baseline``, how a perfect predictor of a network's long-run figure would
    score (share within ±5%/±10%, RMSPE, as ``score`` states a prediction's) against one
    session (``one_session``) and against the mean of the sessions that measured it
    (``mean_of_sessions``, what ``score`` compares with). ``sessions`` is ``dataset.runs``'s
    ``{backend: {spec: {session: ms}}}``.

    How: a network's log figures x_1..x_n from n sessions, each x_k = truth + its session's
    error (variance σ²). A perfect predictor's error against session k is x̄ - x_k less the
    sessions' mean error; scaled by sqrt(n / (n - 1)), x̄ - x_k has variance σ² (one session),
    scaled by 1 / sqrt(n - 1), σ² / n (the mean of n). Exact in variance; the shares assume the
    errors alike in shape, and with two sessions both errors come out as ±|x_1 - x_2| / sqrt(2),
    a crude share. Each network adds its n errors, so networks measured in more sessions weigh
    more. Why: a predictor is scored against figures that themselves move between runs. Six
    quick sessions of 22 networks on a Zen 4 VM (2026-12-06): a perfect predictor within ±10% of
    one session for 95-96% of them (RMSPE 4.1-6.0%), of the six sessions' mean for 98-100%
    (1.7-2.4%). Empty where no network was measured in two sessions."""
    def scaled(per: dict[str, float]) -> tuple[list[float], list[float]]:
        n = len(per)
        if n < 2:
            return [], []
        logs = np.log(np.array(list(per.values()), dtype=float))
        r = logs.mean() - logs
        return (np.expm1(r * np.sqrt(n / (n - 1))).tolist(), np.expm1(r / np.sqrt(n - 1)).tolist())

    errs: dict[str, tuple[list[float], list[float]]] = {}
    counts: set[int] = set()

    def add(target: str, per: dict[str, float]) -> None:
        one, mean = scaled(per)
        if one:
            got = errs.setdefault(target, ([], []))
            got[0].extend(one)
            got[1].extend(mean)
            counts.add(len(per))

    for backend, specs in sessions.items():
        for per in specs.values():
            add(backend, per)
    for backend, specs in sessions.items():
        if backend == baseline:
            continue
        for spec, per in specs.items():
            base = sessions.get(baseline, {}).get(spec, {})
            add(f"speedup {backend}/{baseline}", {k: base[k] / v for k, v in per.items() if k in base})
    if not errs:
        return {}
    return {"sessions": sorted(counts),
            **{t: {"one_session": _stats(one), "mean_of_sessions": _stats(mean)}
               for t, (one, mean) in errs.items()}}
