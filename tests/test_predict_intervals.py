"""The latency predictor's prediction intervals (issue 26), on synthetic machines: drawn kernel
by kernel (a network's errors partly cancel), paired layer by layer across backends (a
speed-up's sides move together), centred on the kernel cells' typical residual, from residuals
of cells the fit held out, and widened by the machine's recorded session level."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness.predict.fusion import Kernel
from harness.predict.intervals import draws, interval
from harness.predict.model import fit
from harness.predict.session import SessionLevel, of_machine


def _conv(i: int, mflop: float, mb: float) -> Kernel:
    return Kernel("conv", (f"layer{i}",), int(mflop * 1e6), int(mb * 1e6), 3, 1, 1, 8, 8,
                  in_bytes=int(mb * 5e5), out_bytes=int(mb * 5e5))


def _cost(k: Kernel) -> float:
    """The synthetic machine's cost of one kernel (ms)."""
    return 0.01 + 0.004 * k.flops / 1e6 + 0.05 * k.bytes / 1e6


def _noisy_machine(seed: int, sigma: float):
    """Two synthetic backends ("slow" costs twice "fast") whose every kernel, in a cell or in a
    network, strays from its kind's cost by its own log-normal factor (``sigma``), the same
    factor on both backends (a layer slow on one is slow on the other, as a host stretch or a
    shape's algorithm makes it): cells to fit, and a builder of networks with their truth."""
    rng = np.random.default_rng(seed)

    def draw() -> Kernel:
        return _conv(0, rng.uniform(1, 40), rng.uniform(0.05, 2))

    rows: dict[str, list] = {"fast": [], "slow": []}
    for i in range(150):  # single kernels, and every third also as a chain of four copies
        k = draw()
        for n in (1, 4) if i % 3 == 0 else (1,):
            noise = np.exp(rng.normal(0, sigma, n))
            for b, scale in (("fast", 1.0), ("slow", 2.0)):
                ms = 0.02 + 0.03 * k.bytes / 1e6 + _cost(k) * float(noise.sum())  # boundary once
                rows[b].append((f"cell{i}x{n}", scale * ms, [k] * n))

    def network(n: int) -> tuple[list[Kernel], dict[str, float]]:
        ks = [dataclasses.replace(draw(), units=(f"layer{j}",)) for j in range(n)]
        noise = np.exp(rng.normal(0, sigma, n))
        true = 0.02 + 0.03 * (ks[0].in_bytes + ks[-1].out_bytes) / 1e6 + sum(
            _cost(k) * e for k, e in zip(ks, noise, strict=True))
        return ks, {"fast": true, "slow": 2.0 * true}

    return fit(rows), network


def test_prediction_intervals_hold_networks_and_are_as_narrow_as_their_kernels_allow() -> None:
    """A network's kernels stray from their kinds' regression independently, so its error is
    smaller than one kernel cell's: on synthetic machines whose every kernel strays by ±20%
    (log-normal sd), networks of 25 kernels are held by their 95% intervals most of the time,
    and the intervals are not the ±39% a single cell's residual spans (the interval of before
    2026-12-07: the whole network times one cell's residual) but under ±20%. A speed-up whose
    two sides stray together (the same factor per layer on both backends) is predicted at 2x
    within ±3%: its draws are paired layer by layer.

    Most, not 95%: on such a machine the fit, weighted by 1/latency, sits about exp(-1.5 sd²)
    = 6% below a kernel's mean cost, and a network of 25 kernels is near its mean; over six
    machines (seeds 5-10, 40 networks each) the intervals held 81% of them with the residual
    draws as they are and 76% centred on the cells' median residual (``model.draws``), which
    the kernel preset's measured networks need (their fit is not low: 82-93% -> 95-100%)."""
    inside, widths = [], []
    for seed in range(5, 11):
        fits, network = _noisy_machine(seed=seed, sigma=0.2)
        rng = np.random.default_rng(0)
        for _ in range(40):
            ks, true = network(25)
            got = draws(fits, {"fast": ks, "slow": ks}, rng)
            lo, hi = interval(got["fast"])
            point = fits["fast"].predict_ms(ks)
            inside.append(lo <= true["fast"] <= hi)
            widths.append((hi - lo) / 2 / point)
            slo, shi = interval(got["slow"] / got["fast"])
            assert 2 * 0.97 < slo <= 2.0 <= shi < 2 * 1.03
    assert np.mean(inside) >= 0.70
    assert np.median(widths) < 0.20
    fits, network = _noisy_machine(seed=5, sigma=0.2)
    rng = np.random.default_rng(0)

    # one kernel: nothing to cancel, so its interval is wider, and still holds it
    one = [network(1) for _ in range(60)]
    held = [interval(draws(fits, {"fast": ks}, rng)["fast"]) for ks, _ in one]
    assert np.mean([lo <= t["fast"] <= hi for (lo, hi), (_, t) in zip(held, one, strict=True)]) >= 0.85
    assert np.median([(hi - lo) / 2 / fits["fast"].predict_ms(ks) for (lo, hi), (ks, _)
                      in zip(held, one, strict=True)]) > 1.5 * np.median(widths)


def test_prediction_intervals_are_centred_on_the_typical_cell_when_cells_stray_one_way() -> None:
    """The relative residuals a draw multiplies by (measured / fitted, per fitted cell) average
    above 1 when some cells stray far upwards (a shape the library runs slowly, a cell timed in a
    host's slow stretch), as the kernel preset's do (1.08-1.12 at a median of 1.00-1.02, Zen 4
    VM): drawn as they are, a network of many kernels, whose draws average out, had its whole
    interval pushed above its prediction. Centred on the cells' median residual (the typical
    cell, not the tail), the network's median draw is its prediction times that median."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(150):  # one cell in ten strays 1.8x upwards, the rest by ±5%
        k = _conv(0, rng.uniform(1, 40), rng.uniform(0.05, 2))
        stray = 1.8 if i % 10 == 0 else float(np.exp(rng.normal(0, 0.05)))
        rows.append((f"cell{i}", _cost(k) * stray, [k]))
    f = fit({"b": rows})
    residuals = np.array(list(f["b"].residuals.values()))
    assert residuals.mean() > 1.05 and abs(np.median(residuals) - 1) < 0.05  # skewed, as measured
    ks = [_conv(j, rng.uniform(1, 40), rng.uniform(0.05, 2)) for j in range(25)]
    got = draws(f, {"b": ks}, np.random.default_rng(0))["b"]
    point = f["b"].predict_ms(ks)
    lo, hi = interval(got)
    typical = point * float(np.median(residuals))
    assert float(np.median(got)) == pytest.approx(typical, rel=0.04)  # the refits move it a little
    assert lo < typical < hi and float(np.median(got)) < point * residuals.mean() / 1.04


def test_residuals_are_those_of_cells_the_fit_has_not_seen() -> None:
    """A synthetic machine prices every convolution exactly by its kind's two coefficients,
    except one cell, measured 1.5x its cost. Fitted with it, the regression bends toward it and
    its own residual reads less than 1.5; the residual a prediction's interval draws is the
    held-out one, predicted by a fit without its fold (30 cells in ten folds, chains among
    them), and reads 1.5; the cells that follow the model read about 1. Two pooling cells, the
    only ones of their kind, cannot be predicted without themselves: where both fall in one
    fold they keep the full fit's ratio, not one in the hundreds."""
    def conv(c: int, mb: float) -> Kernel:
        b = int(mb * 1e6)
        return Kernel("conv", ("c",), 0, 2 * b, 3, 1, 1, c, c, in_bytes=b, out_bytes=b)

    def pool(mb: float) -> Kernel:
        b = int(mb * 1e6)
        return Kernel("pooling", ("p",), 0, 2 * b, 3, 1, 1, 8, 8, in_bytes=b, out_bytes=b)

    def cost(ks: list[Kernel]) -> float:
        return 0.01 + sum(0.004 + 0.02 * k.bytes / 1e6 for k in ks)

    shapes = [(8 + 2 * i, 0.1 + 0.1 * i) for i in range(20)]
    rows = [(f"c{c}x{n}", (1.5 if i == 7 else 1.0) * cost([conv(c, mb)] * n), [conv(c, mb)] * n)
            for i, (c, mb) in enumerate(shapes) for n in ((1, 2) if i % 2 == 0 else (1,))]
    rows += [(f"p{mb}", 3.0 * cost([pool(mb)]), [pool(mb)]) for mb in (0.2, 0.9)]
    f = fit({"synthetic": rows})["synthetic"]
    (odd,) = [r for r in rows if r[0] == "c22x1"]  # a single kernel with no chain of its shape
    in_sample = odd[1] / f.predict_ms(odd[2])
    assert in_sample < 1.495
    assert f.residuals[odd[0]] == pytest.approx(1.5, rel=0.002)
    others = np.array([r for s, r in f.residuals.items() if s.startswith("c") and s != odd[0]])
    assert np.all(np.abs(others - 1) < 0.02), sorted(others)
    # the pooling cells: held out alone, one predicts the other from a single cell (a kind
    # fitted on one cell extrapolates, 1.6-2.3x here); dealt to one fold, each keeps the fit's
    # own ratio. Never a ratio in the hundreds, on any dealing of the folds.
    folds_together = 0
    for seed in range(12):
        got = fit({"synthetic": rows}, seed=seed)["synthetic"].residuals
        assert 0.3 < got["p0.2"] < 3 and 0.3 < got["p0.9"] < 3, (seed, got["p0.2"], got["p0.9"])
        folds_together += abs(got["p0.2"] - 1) < 1e-6 and abs(got["p0.9"] - 1) < 1e-6
    assert folds_together >= 1  # the case that needs the rule did occur


def test_the_session_level_moves_each_latency_and_each_speed_up_by_the_recorded_amount() -> None:
    """The session factors a prediction's draws are multiplied by: one backend's latency moves
    by the machine's latency sd, the ratio of two by its speed-up sd (a session slows both
    backends together, mostly), each widened for the kernel cells' own session draw
    (``sqrt(1 + 1/m)`` for cells read as the mean of ``m`` sessions)."""
    level = SessionLevel(latency_sd=0.055, speedup_sd=0.034, kernel_sessions=2)
    got = level.factors(["a", "b"], 200_000, np.random.default_rng(0))
    scale = np.sqrt(1 + 1 / 2)
    assert np.std(np.log(got["a"])) == pytest.approx(0.055 * scale, rel=0.02)
    assert np.std(np.log(got["b"])) == pytest.approx(0.055 * scale, rel=0.02)
    assert np.std(np.log(got["a"] / got["b"])) == pytest.approx(0.034 * scale, rel=0.02)
    assert abs(np.mean(np.log(got["a"]))) < 0.001  # it widens, it does not move


def test_a_machine_with_an_a_a_record_carries_its_session_level_into_predictions(
        tmp_path, monkeypatch) -> None:
    """Without an A/A record the term is absent (None, and a prediction's interval is the
    kernel model's alone); with one, the predictions carry it and their intervals widen."""
    from harness.machine import noise
    from harness.measure.session_level import Term
    from harness.predict import predictor

    monkeypatch.setenv("ACCELBENCH_PEAKS", str(tmp_path / "peaks"))
    assert of_machine("m1", 2) is None and of_machine(None, 2) is None
    noise.save("m1", {"latency": 0.2, "speedup": 0.1}, ["s1", "s2"], 3,
               {"latency": Term(0.05, 100, 95), "speedup": Term(0.03, 50, 48)})
    level = of_machine("m1", 3)
    assert level is not None and (level.latency_sd, level.speedup_sd) == (0.05, 0.03)
    assert level.kernel_sessions == 3 and level.recorded_at

    fits, network = _noisy_machine(seed=1, sigma=0.1)
    ks, _ = network(12)
    trained = predictor.Trained(fits, "f32", 1, "slow", {}, 0.0, _NoCache({"net": ks}), {})
    plain = predictor.predict(trained, "net")
    with_level = predictor.predict(dataclasses.replace(trained, session=level), "net")
    assert plain["session_level"] is None and with_level["session_level"]["latency_sd"] == 0.05

    def width(p: dict, b: str) -> float:
        lo, hi = p["backends"][b]["interval"]
        return hi / lo

    assert width(with_level, "fast") > width(plain, "fast") * 1.05
    assert with_level["backends"]["fast"]["ms"] == plain["backends"]["fast"]["ms"]


class _NoCache:
    """Kernels for the predictor as a cache would give them, without building or compiling."""

    def __init__(self, kernels: dict[str, list[Kernel]]) -> None:
        self.got = kernels

    def kernels(self, spec, build, backends, precision, threads):
        return {b: self.got[spec] for b in backends}

    def save(self) -> None:
        pass
