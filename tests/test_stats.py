"""harness.measure.stats: intervals that stay honest when the machine drifts between timed blocks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.measure import stats

TRUE_SPEEDUP = 2.0


def drifting_session(seed: int, blocks: int = 10, per_block: int = 50, drift: float = 0.05,
                     noise: float = 0.005, shared: bool = False):
    """Block-alternating samples of a baseline twice as slow as its candidate.

    Each block carries a multiplicative drift (sd ``drift``): the machine's slow phases.
    ``shared`` makes block i of both sides drift together, as when they run side by side.
    """
    rng = np.random.default_rng(seed)
    base_drift = rng.lognormal(0.0, drift, blocks)
    cand_drift = base_drift if shared else rng.lognormal(0.0, drift, blocks)
    base = np.concatenate([20.0 * d * rng.lognormal(0.0, noise, per_block) for d in base_drift])
    cand = np.concatenate([10.0 * d * rng.lognormal(0.0, noise, per_block) for d in cand_drift])
    return list(base), list(cand), [per_block] * blocks


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.floats(0.1, 100.0), min_size=1, max_size=12), min_size=1, max_size=8),
       st.integers(0, 2**32 - 1))
def test_block_resample_median_is_the_median_of_the_pooled_blocks(blocks, seed):
    arrays = [np.asarray(b) for b in blocks]
    picks = np.random.default_rng(seed).integers(0, len(arrays), size=(20, len(arrays)))
    want = [np.median(np.concatenate([arrays[i] for i in row])) for row in picks]
    for dense_limit in (stats.DENSE_COUNT_LIMIT, 0):  # count table, and per-block search
        got = stats._block_quantiles_of(arrays, picks, dense_limit=dense_limit)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.floats(0.1, 100.0), min_size=1, max_size=12), min_size=1, max_size=8),
       st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]))
def test_block_resample_quantile_is_numpys_percentile_of_the_pooled_blocks(blocks, seed, q):
    """The quantile a speed-up reads each side at (``nested.SPEEDUP_QUANTILE``), by the same
    bisection as the median: numpy's linear rule, at every q and with either count method."""
    arrays = [np.asarray(b) for b in blocks]
    picks = np.random.default_rng(seed).integers(0, len(arrays), size=(20, len(arrays)))
    want = [np.percentile(np.concatenate([arrays[i] for i in row]), 100 * q) for row in picks]
    for dense_limit in (stats.DENSE_COUNT_LIMIT, 0):
        got = stats._block_quantiles_of(arrays, picks, dense_limit=dense_limit, q=q)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_block_lengths_must_add_up_to_the_samples():
    assert stats.split_blocks([1.0, 2.0, 3.0], [1, 2]) is not None
    assert stats.split_blocks([1.0, 2.0, 3.0], [1, 1]) is None
    assert stats.split_blocks([1.0, 2.0, 3.0], [3, 0]) is None
    assert stats.split_blocks([1.0, 2.0, 3.0], None) is None
    assert stats.split_blocks([1.0, 2.0, 3.0], [True, 2]) is None  # JSON true is not a length
    assert stats.split_blocks([1.0, 2.0, 3.0], ["1", 2]) is None


def test_method_follows_what_the_blocks_allow():
    base, cand, blocks = drifting_session(0)
    assert stats.speedup(base, cand)["ci_method"] == "iid"
    assert stats.speedup(base, cand, baseline_blocks=blocks,
                         candidate_blocks=blocks)["ci_method"] == "paired-blocks"
    assert stats.speedup(base, cand[:-50], baseline_blocks=blocks,
                         candidate_blocks=blocks[:-1])["ci_method"] == "blocks"
    assert stats.speedup(base[:150], cand[:150], baseline_blocks=blocks[:3],
                         candidate_blocks=blocks[:3])["ci_method"] == "iid"  # too few blocks
    assert stats.speedup(base, cand, baseline_blocks=[1, 2],
                         candidate_blocks=blocks)["ci_method"] == "iid"  # lengths don't add up


def test_block_bootstrap_covers_the_truth_under_drift_where_iid_does_not():
    """Over 40 simulated sessions with 5% drift between blocks: how often does the 95% CI hold
    the true speed-up? The block bootstrap should (roughly) keep its promise; the iid one, which
    counts 500 correlated iterations as independent, should not."""
    covered = {"iid": 0, "blocks": 0}
    widths = {"iid": [], "blocks": []}
    for seed in range(40):
        base, cand, blocks = drifting_session(seed)
        for name, kw in (("iid", {}), ("blocks", {"baseline_blocks": blocks,
                                                  "candidate_blocks": blocks})):
            lo, hi = stats.speedup(base, cand, resamples=1000, seed=seed, **kw)["ci95"]
            covered[name] += lo <= TRUE_SPEEDUP <= hi
            widths[name].append(hi - lo)
    assert covered["blocks"] >= 32, covered  # >= 80% of 40 for a nominal 95% with 10 blocks
    assert covered["iid"] <= 20, covered     # the iid interval is far too narrow here
    assert np.median(widths["blocks"]) > 3 * np.median(widths["iid"])


def test_paired_blocks_cancel_drift_both_sides_share():
    """When both sides slow down together, the ratio is steady and the paired CI is narrow."""
    base, cand, blocks = drifting_session(3, shared=True)
    paired = stats.speedup(base, cand, baseline_blocks=blocks, candidate_blocks=blocks)
    assert paired["ci_method"] == "paired-blocks"
    lo, hi = paired["ci95"]
    assert lo <= TRUE_SPEEDUP <= hi
    assert (hi - lo) / TRUE_SPEEDUP < 0.02
    assert paired["speedup"] == pytest.approx(TRUE_SPEEDUP, rel=0.02)


def test_cell_median_ci_widens_with_drift_and_matches_order_statistics_without():
    base, _, blocks = drifting_session(5)
    with_blocks = stats.summarize(base, blocks)
    plain = stats.summarize(base)
    assert (with_blocks["ci_method"], plain["ci_method"]) == ("blocks", "order-statistics")
    assert with_blocks["median"] == plain["median"]  # only the interval changes
    width = lambda s: s["ci95"][1] - s["ci95"][0]  # noqa: E731
    assert width(with_blocks) > 3 * width(plain)

    steady, _, blocks = drifting_session(6, drift=0.0)  # no drift: iid in all but name
    ratio = width(stats.summarize(steady, blocks)) / width(stats.summarize(steady))
    assert 0.5 < ratio < 2.0


def test_many_blocks_are_merged_alike_on_both_sides():
    base, cand, blocks = drifting_session(7, blocks=300, per_block=5)
    r = stats.speedup(base, cand, baseline_blocks=blocks, candidate_blocks=blocks)
    assert r["ci_method"] == "paired-blocks"
    assert r["ci95"][0] <= TRUE_SPEEDUP <= r["ci95"][1]
    merged = stats.coarsen(stats.split_blocks(base, blocks))
    assert len(merged) == stats.MAX_BOOTSTRAP_BLOCKS and sum(map(len, merged)) == len(base)


def test_speedup_fallbacks_say_why_and_count_pairs():
    from harness.measure import stats

    base, cand = [2.0, 2.1] * 20, [1.0, 1.05] * 20
    old = stats.speedup(base, cand)
    assert old["ci_method"] == "iid" and "before blocks were recorded" in old["ci_note"]
    few = stats.speedup(base, cand, baseline_blocks=[20, 20], candidate_blocks=[20, 20])
    assert few["ci_method"] == "iid" and "2 and 2 timed blocks" in few["ci_note"]
    paired = stats.speedup(base, cand, baseline_blocks=[8] * 5, candidate_blocks=[8] * 5)
    assert paired["ci_method"] == "paired-blocks" and paired["pairs"] == 5
    assert paired["ci_note"] is None


def test_clean_sets_disturbed_blocks_aside_and_keeps_old_stores_whole():
    from harness.measure import stats

    samples = [1.0, 1.0, 9.0, 9.0, 1.0]
    assert stats.clean(samples, [2, 2, 1], [False, True, False]) == ([1.0, 1.0, 1.0], [2, 1])
    assert stats.clean(samples, [2, 2, 1], None) == (samples, [2, 2, 1])
    assert stats.clean(samples, None, [True]) == (samples, None)
