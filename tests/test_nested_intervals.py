"""Intervals that a repeat run lands in (issue 21): seeded simulations of cells with known
between-process variance, built from the real A/A pair in ``tests/data/stores/amd-zen5-aa-*``.

Each simulated cell takes the within-process structure of a real cell (its timed blocks,
resampled) and multiplies each simulated worker process by ``exp(N(0, sigma))``, with ``sigma``
the between-process spread those two identical runs showed. The truth is the real cell's
median (the multiplier's median is 1). The nested interval must cover it; the one-process
interval of the old design must not (so these tests can fail).
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.measure import nested, stats
from harness.measure.estimate import cell_speedup, cell_summary
from harness.measure.results import DONE, CellKey, CellResult, SessionInfo
from harness.store import Store
from reports.compare.analysis import Source, build_comparison
from tests.compare_support import real_store

REPEATS = 200


def _cells(name: str) -> dict[tuple[str, str], CellResult]:
    with Store.open(real_store(name), readonly=True) as s:
        info = s.session(None)
        return {(c.key.spec, c.key.backend): c for c in s.cells(info.id)}


@pytest.fixture(scope="module")
def aa() -> tuple[dict, dict]:
    return _cells("amd-zen5-aa-a"), _cells("amd-zen5-aa-b")


def _sigma(aa: tuple[dict, dict]) -> tuple[float, float]:
    """Between-process SD of log latency and of log speed-up that the A/A pair showed
    (robust: median |log ratio| / 0.6745, over sqrt(2) for a difference of two draws)."""
    a, b = aa
    lat, sp = [], []
    specs = sorted({k[0] for k in a})
    for spec in specs:
        ma = {bk: np.median(a[spec, bk].samples_ms) for bk in ("torch", "openvino:CPU")}
        mb = {bk: np.median(b[spec, bk].samples_ms) for bk in ("torch", "openvino:CPU")}
        lat += [np.log(mb[k] / ma[k]) for k in ma]
        sp.append(np.log((mb["torch"] / mb["openvino:CPU"]) / (ma["torch"] / ma["openvino:CPU"])))
    to_sd = 1 / 0.6745 / np.sqrt(2)
    return float(np.median(np.abs(lat)) * to_sd), float(np.median(np.abs(sp)) * to_sd)


def _blocks(cell: CellResult) -> list[np.ndarray]:
    parts = stats.split_blocks(cell.samples_ms, cell.meta["blocks"])
    assert parts is not None and len(parts) >= 6
    return parts


def _simulated(key: CellKey, real: list[np.ndarray], rng: np.random.Generator,
               multipliers: list[float], blocks: int = 6) -> CellResult:
    """A cell timed in len(multipliers) processes, ``blocks`` real blocks each."""
    samples: list[float] = []
    lengths: list[int] = []
    owner: list[int] = []
    for p, m in enumerate(multipliers):
        for i in rng.integers(0, len(real), size=blocks):
            samples += list(real[i] * m)
            lengths.append(real[i].size)
            owner.append(p)
    meta = {"blocks": lengths, "disturbed": [False] * len(lengths), "block_process": owner}
    return CellResult(key, DONE, None, samples, None, meta)


def test_sigma_from_the_real_stores_is_what_the_issue_saw(aa) -> None:
    sig_lat, sig_sp = _sigma(aa)
    assert 0.01 < sig_lat < 0.2 and 0.01 < sig_sp < 0.2


@pytest.mark.parametrize("spec", ["mobilenetv2:res=160", "resnet:depth=18,res=64",
                                  "plain:res=128"])
def test_nested_median_interval_covers_and_the_one_process_interval_does_not(aa, spec) -> None:
    sigma, _ = _sigma(aa)
    real_cell = aa[0][spec, "torch"]
    real = _blocks(real_cell)
    truth = float(np.median(real_cell.samples_ms))
    rng = np.random.default_rng(21)
    nested_hits = one_hits = 0
    for r in range(REPEATS):
        cell = _simulated(real_cell.key, real, rng, list(np.exp(rng.normal(0, sigma, 3))))
        s = cell_summary(cell, seed=r)
        assert s["ci_method"] == "nested" and s["processes"] == 3
        nested_hits += s["ci95"][0] <= truth <= s["ci95"][1]
        # the old design: one process, its blocks resampled
        first = [b for b, p in zip(stats.split_blocks(cell.samples_ms, cell.meta["blocks"]),
                                   cell.meta["block_process"], strict=True) if p == 0]
        one = stats.summarize(np.concatenate(first), [b.size for b in first], resamples=500,
                              seed=r)
        one_hits += one["ci95"][0] <= truth <= one["ci95"][1]
    assert nested_hits / REPEATS >= 0.90, nested_hits
    assert one_hits / REPEATS < 0.80, one_hits  # the test can fail: the old interval does


def test_nested_speedup_interval_covers_and_the_one_process_interval_does_not(aa) -> None:
    _, sigma = _sigma(aa)
    spec = "resnet:depth=18,res=64"
    base_cell, cand_cell = aa[0][spec, "torch"], aa[0][spec, "openvino:CPU"]
    rb, rc = _blocks(base_cell), _blocks(cand_cell)
    # the speed-up is read at each side's quiet state (nested.SPEEDUP_QUANTILE); the simulated
    # processes draw blocks of the real cells, so the truth is the real cells' quantile ratio
    q = 100 * nested.SPEEDUP_QUANTILE
    truth = float(np.percentile(base_cell.samples_ms, q) / np.percentile(cand_cell.samples_ms, q))
    rng = np.random.default_rng(7)
    hits = one_hits = 0
    for r in range(REPEATS):
        # each process pair draws one speed-up multiplier, applied to the candidate side
        mult = list(np.exp(rng.normal(0, sigma, 3)))
        seed = int(rng.integers(2**31))
        base = _simulated(base_cell.key, rb, np.random.default_rng(seed), [1.0] * 3)
        cand = _simulated(cand_cell.key, rc, np.random.default_rng(seed + 1),
                          [1 / m for m in mult])
        got = cell_speedup(base, cand, seed=r)
        assert got["ci_method"] == "nested-pairs"
        hits += got["ci95"][0] <= truth <= got["ci95"][1]
        n = base.meta["block_process"].count(0)
        old = stats.speedup(base.samples_ms[:sum(base.meta["blocks"][:n])],
                            cand.samples_ms[:sum(cand.meta["blocks"][:n])],
                            baseline_blocks=base.meta["blocks"][:n],
                            candidate_blocks=cand.meta["blocks"][:n], resamples=500, seed=r,
                            q=nested.SPEEDUP_QUANTILE)
        one_hits += old["ci95"][0] <= truth <= old["ci95"][1]
    assert hits / REPEATS >= 0.90, hits
    assert one_hits / REPEATS < 0.80, one_hits


def _session(sid: str) -> SessionInfo:
    return SessionInfo(sid, 1.8e9, machine_id="m", config={"baseline": "torch"})


def _cell_sigma(aa, spec: str, backend: str = "torch") -> float:
    """This cell's own between-process spread, from its two A/A draws."""
    a, b = aa
    ratio = np.median(b[spec, backend].samples_ms) / np.median(a[spec, backend].samples_ms)
    return float(abs(np.log(ratio)) / np.sqrt(2))


def _compare_rates(aa, spec: str, change: float, processes: int, sigma: float,
                   repeats: int = 100) -> float:
    """Share of simulated session pairs whose compare calls the torch latency changed."""
    real_cell = aa[0][spec, "torch"]
    real = _blocks(real_cell)
    rng = np.random.default_rng(1 + int(change * 100) + processes)
    flagged = 0
    for _ in range(repeats):
        cells = []
        for scale in (1.0, 1.0 + change):
            mult = [scale * m for m in np.exp(rng.normal(0, sigma, processes))]
            cells.append(_simulated(real_cell.key, real, rng, mult))
        sources = [Source(label, label, _session(label), None, (c,))
                   for label, c in zip(("a", "b"), cells, strict=True)]
        cmp = build_comparison(sources, noise=0.05)
        flagged += cmp.latencies[0].change[0].significant
    return flagged / repeats


@pytest.mark.parametrize("spec", ["mobilenetv2:res=160", "residual:res=128"])
def test_compare_finds_a_real_change_and_rarely_flags_an_aa(aa, spec) -> None:
    # Each cell with the spread its own A/A pair showed (1.1% and 2.4% here). For the
    # machine-wide spread (7%), a 10% change beyond a 5% threshold needs far more process
    # pairs: the closing note of issue 21 gives the power at 3, 6, 8 and 12.
    # Found means the whole interval lies beyond +5%: with these cells' real within-session
    # drift (block medians move 2-6% within a session) a 15% change is found at 6 process
    # pairs; a 10% change only 15-35% of the time at 3 and 40-65% at 6 (closing note).
    sigma = _cell_sigma(aa, spec)
    assert 0.005 < sigma < 0.05
    assert _compare_rates(aa, spec, 0.0, 3, sigma) <= 0.05
    assert _compare_rates(aa, spec, 0.15, 6, sigma) >= 0.80


def test_compare_of_one_process_sessions_calls_noise_a_change(aa) -> None:
    """The failure the issue reported, reproduced: with one process a session and the
    machine-wide spread, the old intervals flag far more than 5% of A/A pairs."""
    sigma, _ = _sigma(aa)
    assert _compare_rates(aa, "mobilenetv2:res=160", 0.0, 1, sigma, repeats=60) > 0.2


def test_an_aa_pair_reports_its_spread_and_keeps_it_with_the_machine(tmp_path) -> None:
    """The issue's A/A stores: compare says what they cannot tell (one process per cell), prints
    the machine's run-to-run spread, keeps it with --record-noise, and a later compare warns
    that a 5% threshold is below it."""
    import json

    from tests.conftest import run_cli

    env = {"ACCELBENCH_PEAKS": str(tmp_path / "peaks")}
    a, b = real_store("amd-zen5-aa-a"), real_store("amd-zen5-aa-b")
    proc = run_cli("compare", str(a), str(b), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert any("timed in one worker process" in w for w in data["warnings"])
    assert "run-to-run spread" in proc.stderr and data["noise"] == 0.05
    spread = data["spread"]
    assert spread["latency"] > 0.05 and spread["speedup"] > 0.05  # these two runs disagreed
    proc = run_cli("compare", str(a), str(b), "--record-noise", env=env)
    assert proc.returncode == 0, proc.stderr
    [kept] = list((tmp_path / "noise").glob("*.json"))
    record = json.loads(kept.read_text())
    assert record["spread"] == pytest.approx(spread)
    proc = run_cli("compare", str(a), str(b), "--noise", "5%", env=env)
    assert "above the noise threshold 5%" in proc.stderr
    proc = run_cli("compare", str(a), str(b), "--noise", "60%", env=env)
    assert "above the noise threshold" not in proc.stderr
    assert run_cli("compare", str(a), str(b), "--noise", "5").returncode == 2


def _moderated_run(aa, sigma: dict[str, float], repeats: int, seed: int
                   ) -> tuple[dict[bool, int], dict[str, int], dict[bool, list[float]]]:
    """Simulated sessions of the A/A store's cells, three processes each with ``sigma[spec]``:
    (coverage hits per method, moderated hits per cell, half-widths per method)."""
    from harness.measure.estimate import latency_priors

    a, _ = aa
    specs = sorted(sigma)
    real = {s: _blocks(a[s, "torch"]) for s in specs}
    truth = {s: float(np.median(a[s, "torch"].samples_ms)) for s in specs}
    rng = np.random.default_rng(seed)
    hits = {False: 0, True: 0}
    per_cell = dict.fromkeys(specs, 0)
    widths: dict[bool, list[float]] = {False: [], True: []}
    for r in range(repeats):
        cells = [_simulated(a[s, "torch"].key, real[s], rng,
                            list(np.exp(rng.normal(0, sigma[s], 3))), blocks=4) for s in specs]
        prior = latency_priors(cells).get("torch")
        assert prior is not None
        for spec, cell in zip(specs, cells, strict=True):
            for moderated in (False, True):
                s = cell_summary(cell, seed=r, prior=prior if moderated else None)
                assert (s["moderated"] is not None) == moderated
                inside = s["ci95"][0] <= truth[spec] <= s["ci95"][1]
                hits[moderated] += inside
                per_cell[spec] += inside and moderated
                widths[moderated].append((s["ci95"][1] - s["ci95"][0]) / 2 / s["median"])
    return hits, per_cell, widths


def test_a_session_prior_keeps_coverage_when_its_cells_differ(aa) -> None:
    """Moderation (``harness.measure.moderate``) with each cell's own A/A spread (1%-15%, so
    the cells really differ): 200 simulated sessions; coverage stays at 90% or more overall and
    85% for every cell — the quiet cells' prior must not make a noisy cell's interval lie."""
    a, _ = aa
    sigma = {s: max(_cell_sigma(aa, s), 0.002) for s in sorted({k[0] for k in a})}
    assert max(sigma.values()) / min(sigma.values()) > 10
    hits, per_cell, _ = _moderated_run(aa, sigma, REPEATS, 2021)
    assert hits[True] / (REPEATS * len(sigma)) >= 0.90, hits
    assert min(per_cell.values()) / REPEATS >= 0.85, per_cell


def test_a_session_prior_narrows_intervals_when_its_cells_are_alike(aa) -> None:
    """The same with the machine-wide spread for every cell: the session's cells agree on the
    process-level variance, so each interval gets their degrees of freedom (t near 2, not 4.3)
    and is much narrower than its own, and still covers."""
    a, _ = aa
    sig_lat, _ = _sigma(aa)
    sigma = dict.fromkeys(sorted({k[0] for k in a}), sig_lat)
    hits, _, widths = _moderated_run(aa, sigma, REPEATS // 2, 2022)
    total = REPEATS // 2 * len(sigma)
    assert hits[True] / total >= 0.90 and hits[False] / total >= 0.90, hits
    assert np.median(widths[True]) < 0.8 * np.median(widths[False]), (
        np.median(widths[True]), np.median(widths[False]))


def test_a_prior_is_fitted_from_enough_cells_only_and_recovers_its_parameters() -> None:
    from harness.measure import moderate

    rng = np.random.default_rng(5)
    s0, d0, d = 0.01, 6.0, 2.0
    # cells' true variances from the prior (scaled inverse chi-square), then sample variances
    true = d0 * s0 / rng.chisquare(d0, 4000)
    sample = true * rng.chisquare(d, 4000) / d
    prior = moderate.fit_prior(sample, [d] * 4000)
    assert prior is not None and prior.cells == 4000
    assert abs(np.log(prior.s2 / s0)) < 0.15 and 4 < prior.df < 9
    # a cell with a small variance by chance is pulled towards the prior, on more df
    post, df = prior.posterior(0.0001, d)
    assert 0.0001 < post < s0 and df == prior.df + d
    # alike cells: the prior's df is capped at the cells' own df together
    alike = moderate.fit_prior(0.01 * rng.chisquare(d, 50) / d, [d] * 50)
    assert alike is not None and alike.df <= alike.pooled_df == 100
    assert moderate.fit_prior([0.01] * 4, [2] * 4) is None  # too few cells to say anything
    assert abs(float(__import__("scipy").special.polygamma(1, moderate.trigamma_inverse(0.7)))
               - 0.7) < 1e-9


def test_moderation_never_blows_up_a_speedup_whose_process_pairs_agree_by_chance() -> None:
    """Three process pairs agreeing within 1% while their blocks scatter by ~16% (the axes
    preset's dwbottleneck act=leakyrelu cell: pairs 8.11, 8.07, 8.18) once got [2.0, 32.8]
    from moderation: the bootstrap variance was scaled by moderated/own with own near zero.
    The moderated interval must stay of the size the prior and the blocks imply."""
    from harness.measure.moderate import Prior
    from harness.measure.nested import nested_speedup, pair_ratios

    rng = np.random.default_rng(7)
    steps = np.exp(np.linspace(-0.2, 0.2, 7))  # each process's blocks: the same levels, shuffled
    base, cand = [], []
    for shift in (0.0, -0.005, 0.004):
        base.append([1.6 * np.exp(shift) * s * np.exp(rng.normal(0, 0.01, 40))
                     for s in rng.permutation(steps)])
        cand.append([0.2 * s * np.exp(rng.normal(0, 0.01, 40)) for s in rng.permutation(steps)])
    ratios = pair_ratios(base, cand)
    assert np.std(np.log(ratios), ddof=1) < 0.01  # the pairs agree within 1%
    prior = Prior(s2=0.0212, df=5.9, cells=57, pooled_df=118.0)
    plain = nested_speedup(base, cand)
    moderated = nested_speedup(base, cand, prior=prior)
    assert plain is not None and moderated is not None
    lo, hi = moderated["ci95"]
    assert lo < 8.0 < hi
    # The prior alone, over three pairs with its degrees of freedom, allows about ±25%; the
    # blocks add a little. The old scaling gave a 16-fold interval here.
    assert hi / lo < 2.0, moderated["ci95"]
    assert moderated["moderated"]["s2"] > moderated["moderated"]["own_s2"]
