"""Every branch of the paper-claims section (reports/sections/paper.py), each on a small
synthetic session whose figures imply one verdict: each test pins that verdict and its words.

Why each cell carries ``resolved``: the sweeps read depth and width from it, and without it
``archs.resolve`` would import torch for every spec (seconds, and nothing this file tests).
"""

from __future__ import annotations

import pytest

from harness.backends.ladder import LADDER
from harness.measure.results import SessionInfo
from reports import build_report
from reports.document import Table
from reports.sections.paper import (
    AGREES,
    DIFFERS,
    NOT_MEASURED,
    UNSURE,
    claims,
    ladder_claims,
    paper,
    study_view,
    trend_rows,
)
from tests.test_ladder_report import cells as ladder_cells
from tests.test_ladder_report import latencies
from tests.test_reports import cell, noisy

SESSION = SessionInfo(id="s-p", started=1.7e9, status="finished")
MACHINE = {"id": "m", "cpu": {"brand_raw": "X"}, "isa": {"avx512f": True, "amx_tile": False},
           "versions": {"openvino": "2025.1"}}
SETUP = ("here f32, 1 threads, a CPU with AVX-512, OpenVINO 2025.1; "
         "the paper's CPU and OpenVINO are of 2021")


def duo(spec, base_ms, speedup, seed=0, *, flops=1e9, params=None, ws=None):
    """A torch/openvino pair whose openvino cell is ``speedup`` times faster (2% noise)."""
    meta = {"flops": flops, "resolved": dict(params or {})}
    if ws is not None:
        meta["peak_working_set_bytes"] = ws
    return [cell(spec, "torch", samples=noisy(base_ms, seed=seed), meta=meta),
            cell(spec, "openvino", samples=noisy(base_ms / speedup, seed=seed + 1), meta=meta)]


def session(speedups: dict[str, float], machine=MACHINE):
    out = []
    for i, (spec, x) in enumerate(speedups.items()):
        out += duo(spec, 10.0 * (i + 1), x, seed=2 * i)
    return build_report(SESSION, out, machine)


def rows_of(report) -> dict[str, dict[str, str]]:
    return {r["claim"]: r for r in claims(report) + trend_rows(report)}


PATTERN, NETWORK, LOWEST = "design pattern that gains most", "network that gains most", \
    "lowest latency"
RATIO, GAIN = "average speed-up 380% (as a ratio, 3.8×)", "average speed-up 380% (as a gain, 4.8×)"


# ---- the paper's average (380%) --------------------------------------------------------------

def test_an_average_below_both_readings_differs_and_says_lower():
    rows = rows_of(session({f"a:x={i}": 2.0 for i in range(10)}))  # a narrow CI around 2x
    for claim in (RATIO, GAIN):
        assert rows[claim]["verdict"] == DIFFERS
        assert rows[claim]["why"] == f"the average is lower: {SETUP}."
        assert rows[claim]["here"].startswith("geomean 2.00× [")
        assert rows[claim]["here"].endswith("over 10 specs")


def test_an_average_above_both_readings_differs_and_says_higher():
    rows = rows_of(session({f"a:x={i}": 6.0 for i in range(10)}))
    for claim in (RATIO, GAIN):
        assert rows[claim]["verdict"] == DIFFERS
        assert rows[claim]["why"] == f"the average is higher: {SETUP}."


def test_an_average_can_agree_with_one_reading_and_exclude_the_other():
    # five specs at 3x, five at 5x: geomean 3.87x, its CI holds 3.8 and stays under 4.8, and is
    # narrow enough (upper/lower < 1.5) that missing 4.8 is a difference, not imprecision
    rows = rows_of(session({f"a:x={i}": 3.0 if i % 2 else 5.0 for i in range(10)}))
    assert rows[RATIO]["here"].startswith("geomean 3.87× [")
    assert (rows[RATIO]["verdict"], rows[RATIO]["why"]) == (AGREES, "")
    assert rows[GAIN]["verdict"] == DIFFERS
    assert rows[GAIN]["why"] == f"the average is lower: {SETUP}."


def test_an_average_too_wide_to_settle_either_reading_cannot_tell():
    # five specs at 1x, five at 4x: geomean 2x with a CI wider than 1.5x that holds neither
    rows = rows_of(session({f"a:x={i}": 1.0 if i % 2 else 4.0 for i in range(10)}))
    for claim in (RATIO, GAIN):
        assert rows[claim]["verdict"] == UNSURE
        assert rows[claim]["why"] == f"the average is lower: {SETUP}."


def test_a_session_without_speed_ups_has_no_average_rows():
    r = build_report(SESSION, [cell("mobilenetv2", "torch", samples=noisy(2.4),
                                    meta={"resolved": {}})], MACHINE)
    rows = claims(r)
    assert [row["claim"] for row in rows] == [PATTERN, NETWORK, LOWEST]
    assert rows[0]["here"] == "design patterns here: none"
    assert rows[1]["here"] == "networks here: none"
    # the baseline alone still times MobileNetV2 at its published size, at about 2.4 ms
    assert rows[2]["verdict"] == AGREES and rows[2]["here"].startswith("mobilenetv2 on torch: 2.4")


# ---- the family that gains most --------------------------------------------------------------

def test_a_session_without_the_papers_winner_cannot_judge_which_gains_most():
    rows = rows_of(session({"dwseparable:d=1": 5.0, "plain:d=1": 2.0}))
    p = rows[PATTERN]
    assert p["verdict"] == NOT_MEASURED
    assert p["here"] == "design patterns here: dwseparable, plain"
    assert p["why"] == "needs dwbottleneck and at least one other design pattern."
    n = rows[NETWORK]  # networks are not design patterns, and the other way round
    assert (n["verdict"], n["here"]) == (NOT_MEASURED, "networks here: none")
    assert n["why"] == "needs darts and at least one other network."


def test_the_papers_winner_without_a_rival_cannot_be_judged():
    rows = rows_of(session({"dwbottleneck:d=1": 5.5, "darts": 12.0, "plain:d=1": 2.0}))
    assert rows[PATTERN]["verdict"] == AGREES
    n = rows[NETWORK]
    assert (n["verdict"], n["here"]) == (NOT_MEASURED, "networks here: darts")


def test_the_papers_winner_separated_and_at_its_size_agrees():
    p = rows_of(session({"dwbottleneck:d=1": 5.5, "plain:d=1": 2.0}))[PATTERN]
    assert (p["verdict"], p["why"]) == (AGREES, "")
    assert p["here"].startswith("dwbottleneck 5.5") and ";" not in p["here"]
    assert p["paper"] == "dwbottleneck, 550% (5.5× or 6.5×)"


@pytest.mark.parametrize("specs", [
    # dwbottleneck's two specs (4x, 7.5x) give geomean 5.48x with a CI of about [4, 7.5]: it
    # holds 5.5 (how much agrees) and dwseparable's 5x (which one cannot be told)
    {"dwbottleneck:d=1": 4.0, "dwbottleneck:d=2": 7.5, "dwseparable:d=1": 5.0},
    # a narrow 5.5x against a runner-up of about [3, 6] (3x, 6x): 5.5 lies inside its CI
    {"dwbottleneck:d=1": 5.5, "dwseparable:d=1": 3.0, "dwseparable:d=2": 6.0},
], ids=["wide-winner", "wide-runner-up"])
def test_the_papers_winner_overlapping_the_runner_up_cannot_tell(specs):
    p = rows_of(session(specs))[PATTERN]
    assert p["verdict"] == UNSURE
    assert p["why"] == "its CI overlaps the runner-up's."
    assert p["here"].startswith("dwbottleneck 5.")


def test_the_right_winner_with_the_wrong_gain_agrees_on_which_and_differs_on_how_much():
    p = rows_of(session({"dwbottleneck:d=1": 3.0, "plain:d=1": 2.0}))[PATTERN]
    assert p["verdict"] == f"{AGREES} on which; {DIFFERS} on how much"
    assert p["why"] == f"it gains 3.00×, not 5.5× or 6.5×: {SETUP}."


def test_an_overlapping_winner_with_the_wrong_gain_says_both():
    # dwbottleneck (1.9x, 2.3x: geomean 2.09x, CI about [1.9, 2.3]) against plain's 2x: which
    # is unclear, and a CI that narrow (2.3/1.9 < 1.5) around 2x excludes 5.5x and 6.5x
    p = rows_of(session({"dwbottleneck:d=1": 1.9, "dwbottleneck:d=2": 2.3,
                         "plain:d=1": 2.0}))[PATTERN]
    assert p["verdict"] == f"{UNSURE} on which; {DIFFERS} on how much"
    assert p["why"] == (f"its CI overlaps the runner-up's; it gains 2.09×, not 5.5× or 6.5×: "
                        f"{SETUP}.")


def test_a_separated_winner_whose_gain_is_too_uncertain_cannot_tell_how_much():
    # dwbottleneck at 1.5x and 3x: CI about [1.5, 3] (wider than 1.5x, below 5.5), clear of 1x
    p = rows_of(session({"dwbottleneck:d=1": 1.5, "dwbottleneck:d=2": 3.0,
                         "plain:d=1": 1.0}))[PATTERN]
    assert p["verdict"] == f"{AGREES} on which; {UNSURE} on how much"
    assert p["why"] == f"it gains 2.12×, not 5.5× or 6.5×: {SETUP}."


@pytest.mark.parametrize("specs", [
    {"dwseparable:d=1": 4.0, "dwseparable:d=2": 7.5, "dwbottleneck:d=1": 5.0},  # wide top
    {"dwseparable:d=1": 5.5, "dwbottleneck:d=1": 3.0, "dwbottleneck:d=2": 6.0},  # wide paper's
], ids=["wide-top", "wide-papers-winner"])
def test_another_family_on_top_within_the_winners_ci_cannot_tell(specs):
    p = rows_of(session(specs))[PATTERN]
    assert p["verdict"] == UNSURE
    assert p["why"] == "dwbottleneck's CI overlaps dwseparable's."
    assert p["here"].startswith("dwseparable 5.") and "; dwbottleneck " in p["here"]


def test_another_family_clearly_on_top_differs():
    rows = rows_of(session({"dwseparable:d=1": 8.0, "dwbottleneck:d=1": 5.5,
                            "resnet": 12.0, "darts": 3.0}))
    p = rows[PATTERN]
    assert p["verdict"] == DIFFERS
    assert p["why"] == f"dwseparable gains more than dwbottleneck here: {SETUP}."
    n = rows[NETWORK]
    assert n["verdict"] == DIFFERS and n["why"].startswith("resnet gains more than darts here")
    assert n["here"].startswith("resnet 12.0") and "; darts 3.0" in n["here"]


# ---- lowest latency --------------------------------------------------------------------------

def lowest(cells):
    return next(r for r in claims(build_report(SESSION, cells, MACHINE)) if r["claim"] == LOWEST)


def test_mobilenetv2_fastest_at_about_2_4_ms_agrees():
    low = lowest(duo("mobilenetv2", 10.0, 4.0) + duo("darts", 20.0, 4.0, seed=2))  # 2.5, 5 ms
    assert (low["verdict"], low["why"]) == (AGREES, "")
    assert low["here"].startswith("mobilenetv2 on openvino: 2.50")


def test_mobilenetv2_fastest_but_far_from_2_4_ms_differs():
    low = lowest(duo("mobilenetv2", 16.0, 4.0) + duo("darts", 20.0, 4.0, seed=2))  # 4, 5 ms
    assert low["verdict"] == DIFFERS
    assert low["why"].startswith("MobileNetV2 is fastest, but at 4.0")
    assert low["why"].endswith(f" ms, not about 2.4 ms; {SETUP}.")


def test_another_network_faster_than_mobilenetv2_differs():
    low = lowest(duo("mobilenetv2", 10.0, 4.0) + duo("resnet", 6.0, 4.0, seed=2))  # 2.5, 1.5 ms
    assert low["verdict"] == DIFFERS
    assert low["why"] == f"resnet is faster than MobileNetV2 here; {SETUP}."
    assert low["here"].startswith("resnet on openvino: 1.50")


def test_a_resized_or_flagged_mobilenetv2_is_not_the_published_one():
    # the flagged cell has a 2.4 ms median, but outputs that disagree with the baseline's
    low = lowest(duo("mobilenetv2:width=16", 10.0, 4.0) + duo("darts", 20.0, 4.0, seed=2)
                 + [cell("mobilenetv2", "openvino", "flagged", samples=noisy(2.4),
                         reason="parity: rel_l2 0.5")])
    assert low["verdict"] == NOT_MEASURED
    assert low["here"] == "networks at their published size here: darts"
    assert low["why"] == "needs mobilenetv2 at its published size (the spec `mobilenetv2`)."


# ---- FLOPs as a latency predictor ------------------------------------------------------------

PREDICTS = "FLOPs predict latency better for one backend"


def predictor(openvino_ms):
    """Eight specs whose torch latency is proportional to FLOPs; openvino's as given."""
    out = []
    for i, ov in enumerate(openvino_ms):
        f = 1e8 * 2 ** i
        meta = {"flops": f, "resolved": {}}
        out += [cell(f"a:x={i}", "torch", samples=noisy(f / 1e8, seed=i), meta=meta),
                cell(f"a:x={i}", "openvino", samples=noisy(ov, seed=50 + i), meta=meta)]
    return rows_of(build_report(SESSION, out, MACHINE))


def test_flops_predict_one_backend_clearly_better():
    row = predictor([3.0, 1.0, 4.0, 1.5, 5.0, 2.0, 6.0, 2.5])[PREDICTS]  # no trend in FLOPs
    assert (row["verdict"], row["why"]) == ("yes: better for torch", "")
    assert row["here"].startswith("log-log Pearson r torch 1.00 [")


def test_flops_predicting_both_backends_alike_cannot_tell():
    row = predictor([0.5 * 2 ** i for i in range(8)])[PREDICTS]
    assert (row["verdict"], row["why"]) == (UNSURE, "the two correlations' CIs overlap.")


def test_no_predictor_row_without_two_backends_whose_flops_vary():
    rows = rows_of(session({f"a:x={i}": 2.0 for i in range(5)}))  # every cell is 1e9 FLOPs
    assert PREDICTS not in rows


# ---- FLOPs, cache and latency as depth and width grow ----------------------------------------

def sweep_report(parts: dict[str, tuple[float, float, float, float]], axis="depth", ws=None):
    """Per pattern, (FLOPs, torch ms) at the small and the large end of ``axis``."""
    out, seed = [], 0
    for fam, (f_lo, ms_lo, f_hi, ms_hi) in parts.items():
        for v, f, ms in ((4, f_lo, ms_lo), (16, f_hi, ms_hi)):
            params = {"depth": v, "width": 32} if axis == "depth" else {"depth": 8, "width": v}
            out += duo(f"{fam}:{axis}={v}", ms, 2.0, seed, flops=f, params=params,
                       ws=ws if v == 16 and fam == "plain" else None)
            seed += 2
    return build_report(SESSION, out, {**MACHINE, "caches": {"l3": 2**20}})


@pytest.mark.parametrize("axis", ["depth", "width"])
def test_flops_and_latency_rising_together_everywhere_agrees(axis):
    rows = rows_of(sweep_report({"plain": (1e8, 2.0, 4e8, 8.0), "residual": (1e8, 3.0, 4e8, 9.0),
                                 "dense": (2e8, 4.0, 2e8, 4.0)}, axis))  # dense: neither grows
    other = "width" if axis == "depth" else "depth"
    assert not any(other + " grows" in c for c in rows)  # the other axis was never swept
    row = rows[f"FLOPs, cache and latency move together as {axis} grows"]
    assert (row["verdict"], row["why"]) == (AGREES, "")
    assert row["here"] == ("over 3 design patterns: FLOPs grow in 2, the baseline's latency in "
                           "2, together in 3; working set above the LLC in 0")


def test_flops_and_latency_apart_in_a_minority_of_patterns_cannot_tell():
    row = rows_of(sweep_report({"plain": (1e8, 2.0, 4e8, 8.0), "residual": (1e8, 3.0, 4e8, 9.0),
                                "dense": (1e8, 4.0, 4e8, 3.0)}, ws=2 * 2**20))[
        "FLOPs, cache and latency move together as depth grows"]
    assert row["verdict"] == UNSURE
    assert row["here"] == ("over 3 design patterns: FLOPs grow in 3, the baseline's latency in "
                           "2, together in 2; working set above the LLC in 1")
    assert row["why"].startswith("in dense FLOPs and latency part ways (")


def test_flops_and_latency_apart_in_most_patterns_differs():
    row = rows_of(sweep_report({"plain": (1e8, 2.0, 4e8, 8.0), "residual": (1e8, 3.0, 1e8, 9.0),
                                "dense": (1e8, 4.0, 4e8, 3.0)}, ws=2**19))[
        "FLOPs, cache and latency move together as depth grows"]
    assert row["verdict"] == DIFFERS
    assert row["here"] == ("over 3 design patterns: FLOPs grow in 2, the baseline's latency in "
                           "2, together in 1; working set above the LLC in 0")
    assert row["why"].startswith("in dense, residual FLOPs and latency part ways (")


# ---- the ladder: which PyTorch was the study's native framework ------------------------------

def ladder_report(values, n=10, fail_one=None):
    got = []
    for d in range(n):
        v = list(values)
        if fail_one is not None and d == 0:
            v[fail_one] = None
        got += ladder_cells(f"dwbottleneck:depth={d + 1}", latencies(*v))
    return build_report(SESSION, got, None)


def test_openvino_near_380_percent_over_the_best_rung_agrees_and_names_the_nearest_rung():
    # over eager 5.33x, channels_last 4.8x, inductor 4.27x, freezing 4x (the fastest rung)
    native, best = ladder_claims(ladder_report((20.0, 18.0, 16.0, 15.0, 3.75)))
    assert native["verdict"] == f"most likely {LADDER[1].label}"
    assert native["here"].startswith(f"OpenVINO's geomean speed-up over 10 specs: over "
                                     f"{LADDER[0].label} 5.3")
    assert best["here"].startswith("4.0") and best["here"].endswith(
        "× geomean over the fastest rung per spec")
    assert (best["verdict"], best["why"]) == (AGREES, "")


def test_a_rung_missing_from_one_spec_is_left_out_of_the_averages():
    native, _ = ladder_claims(ladder_report((20.0, 18.0, 16.0, 15.0, 3.75), fail_one=1))
    assert LADDER[1].label not in native["here"]  # 9 of 10 specs cannot stand beside the rest
    # left: eager 5.33x, inductor 4.27x (0.12 from 4.8 in log), freezing 4x (0.05 from 3.8)
    assert native["verdict"] == f"most likely {LADDER[3].label}"


def test_no_ladder_claims_without_openvino_or_without_two_pytorch_rungs():
    assert ladder_claims(session({f"a:x={i}": 2.0 for i in range(10)})) == []  # "openvino"
    one_rung = [c for d in range(10) for c in ladder_cells(
        f"plain:depth={d + 1}", {LADDER[0].backend: 10.0, LADDER[-1].backend: 2.5})]
    assert ladder_claims(build_report(SESSION, one_rung, None)) == []


# ---- the study's view and the section --------------------------------------------------------

def test_study_view_keeps_a_one_candidate_report_and_else_the_first_candidate():
    r = session({"a:x=1": 2.0})
    assert study_view(r) is r
    got = []
    for i in range(2):
        spec = f"plain:depth={i + 1}"
        got += [cell(spec, "torch", samples=noisy(10.0, seed=i)),
                cell(spec, LADDER[1].backend, samples=noisy(8.0, seed=10 + i)),
                cell(spec, "onnxruntime", samples=noisy(4.0, seed=20 + i))]
    view = study_view(build_report(SESSION, got, None))  # no OpenVINO: the first candidate
    assert {s.candidate for s in view.summary} == {LADDER[1].backend}
    assert {r.candidate for r in view.speedups} == {LADDER[1].backend}
    assert {c.key.backend for c in view.cells} == {"torch", LADDER[1].backend}


def test_the_section_is_left_out_when_nothing_can_be_judged():
    r = session({"plain:d=1": 2.0})  # a study family, but no claim has what it needs
    assert all(row["verdict"] == NOT_MEASURED for row in claims(r))
    assert paper(r) is None


def test_the_section_colours_plain_verdicts_and_leaves_composite_ones_uncoloured():
    r = build_report(SESSION, duo("dwbottleneck:d=1", 30.0, 3.0) + duo("plain:d=1", 20.0, 2.0, 2)
                     + duo("mobilenetv2", 10.0, 4.0, 4), MACHINE)
    (tbl,) = [b for b in paper(r) if isinstance(b, Table)]
    tone = {row["claim"]: row["tone"] for row in tbl.rows}
    assert tone[PATTERN] == ""  # "agrees on which; differs on how much"
    assert tone[LOWEST] == AGREES and tone[NETWORK] == ""  # not measured
