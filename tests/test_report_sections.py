"""The section registry, the study's sections and the paper's claims, on small reports."""

from __future__ import annotations

import pytest
from rich.console import Console

from harness.measure.results import SessionInfo
from reports import (
    build_report,
    document,
    render_html,
    render_markdown,
    render_terminal,
    write_report,
)
from reports import sections as registry
from reports.document import Figure, Heading, Paragraph, table
from reports.sections.paper import AGREES, DIFFERS, UNSURE, claims
from tests.test_reports import MACHINE, cell, noisy, pair

SESSION = SessionInfo(id="s-2", started=1.7e9, status="finished")


def study_cells():
    """Two design patterns over depth and width, three networks; speed-ups chosen so the
    verdicts are known: dwbottleneck gains most (5.5x), darts most of the networks (~12x)."""
    out, seed = [], 0
    specs = {"plain:depth=4,res=32": 2.0, "plain:res=32": 2.0, "plain:depth=16,res=32": 2.0,
             "plain:width=16,res=32": 2.0, "plain:width=64,res=32": 2.0,
             "dwbottleneck:depth=4,res=32": 5.5, "dwbottleneck:res=32": 5.5,
             "mobilenetv2": 4.0, "darts": 12.0, "resnet": 2.0}
    for i, (spec, x) in enumerate(specs.items()):
        base = 10.0 * (i + 1)
        out += pair(spec, base, base / x, seed=seed)
        seed += 2
    return out


def test_a_registered_section_appears_in_every_medium_in_order(tmp_path):
    @registry.section("zz-test", order=15, terminal=True)
    def extra(report):
        return [Heading("Extra <section>"), Paragraph("said once"),
                table([("a", "A"), ("b", "B", True)], [{"a": "x|y", "b": "1"}]),
                Figure("extra", lambda p: None, "never drawn")]

    try:
        r = build_report(SESSION, pair("a:x=1", 10.0, 5.0), MACHINE)
        names = [s.name for s in registry.registered()]
        assert names.index("header") < names.index("zz-test") < names.index("summary")
        md, page = render_markdown(r), render_html(r)
        assert md.index("## Extra \\<section\\>") < md.index("## Summary")
        assert "x\\|y" in md and "<h2>Extra &lt;section&gt;</h2>" in page
        console = Console(record=True, width=200, color_system=None)
        render_terminal(r, console)
        assert "Extra <section>" in console.export_text()
        paths = write_report(r, tmp_path)
        assert "extra" not in paths and "never drawn" not in paths["html"].read_text()
        with pytest.raises(ValueError, match="registered twice"):
            registry.section("zz-test", order=1)(lambda report: None)
    finally:
        registry._SECTIONS.pop("zz-test")


def test_tables_show_resolved_parameters(tmp_path):
    r = build_report(SESSION, study_cells(), MACHINE)
    md = render_markdown(r)
    # plain:res=32 is depth 8 and width 32 although its spec says neither
    row = next(ln for ln in md.splitlines()
               if ln.startswith("| plain |") and "| plain:res=32 |" in ln)
    cells = [c.strip() for c in row.split("|")]
    header = [c.strip() for c in next(ln for ln in md.splitlines()
                                      if ln.startswith("| family | depth")).split("|")]
    assert cells[header.index("depth")] == "8" and cells[header.index("width")] == "32"
    stored = [c if c.key.spec != "darts" else
              type(c)(c.key, c.status, c.reason, c.samples_ms, c.warmup_ms,
                      {**c.meta, "resolved": {"cells": 99}}) for c in study_cells()]
    md = render_markdown(build_report(SESSION, stored, MACHINE))  # the stored values win
    header = [c.strip() for c in next(ln for ln in md.splitlines()
                                      if ln.startswith("| family | depth")).split("|")]
    row = next(r for r in ([c.strip() for c in ln.split("|")] for ln in md.splitlines()
                            if ln.startswith("| darts |")) if len(r) == len(header))
    assert row[header.index("cells")] == "99"


def test_study_figures_are_drawn(tmp_path):
    machine = {**MACHINE, "caches": {"l3": 32 * 2**20}}
    cells = [type(c)(c.key, c.status, c.reason, c.samples_ms, c.warmup_ms,
                     {**c.meta, "peak_working_set_bytes": 2**20 * (1 + i)})
             for i, c in enumerate(study_cells())]
    paths = write_report(build_report(SESSION, cells, machine), tmp_path)
    for name in ("speedups", "speedup_vs_depth", "speedup_vs_width", "working_set_vs_depth"):
        assert paths[name].stat().st_size > 10_000, name
    assert "speedup_vs_overlap" not in paths  # no overlap family in this session


def test_paper_claims_and_verdicts():
    r = build_report(SESSION, study_cells(), MACHINE)
    rows = {row["claim"]: row for row in claims(r)}
    pattern = rows["design pattern that gains most"]
    assert pattern["here"].startswith("dwbottleneck") and pattern["verdict"] == AGREES
    net = rows["network that gains most"]
    assert net["here"].startswith("darts") and net["verdict"] == AGREES
    low = rows["lowest latency"]  # darts' candidate runs 90/12 = 7.5 ms, mobilenetv2's 80/4 = 20
    assert low["verdict"] == DIFFERS and "darts is faster than MobileNetV2" in low["why"]
    avg = [row for c, row in rows.items() if c.startswith("average speed-up 380%")]
    assert len(avg) == 2 and {a["paper"] for a in avg} == {"3.8×", "4.8×"}
    # the session's geomean is 3.14x [2.21, 4.70] (six 2x, two 5.5x, 4x, 12x): 3.8x lies inside
    # it, so that reading agrees; 4.8x lies above it, and a CI that wide (4.70/2.21 > 1.5)
    # cannot say the paper is wrong: that reading cannot be told
    by_paper = {a["paper"]: a for a in avg}
    assert "geomean 3.14× [2.21, 4.70] over 10 specs" == by_paper["3.8×"]["here"]
    assert by_paper["3.8×"]["verdict"] == AGREES
    assert by_paper["4.8×"]["verdict"] == UNSURE
    assert by_paper["4.8×"]["why"].startswith("the average is lower: here f32, 1 threads")
    md = render_markdown(r)
    assert "## The paper and this machine" in md
    from reports.sections.paper import trend_rows
    trend = {row["claim"]: row for row in trend_rows(r)}
    depth = trend["FLOPs, cache and latency move together as depth grows"]
    # study_cells' FLOPs are all 1e9: latency grows with depth but FLOPs do not
    assert "FLOPs grow in 0" in depth["here"] and depth["verdict"] == DIFFERS


def test_paper_section_needs_the_studys_architectures():
    r = build_report(SESSION, pair("a:x=1", 10.0, 5.0), MACHINE)
    assert not any(isinstance(b, Heading) and "paper" in b.text for b in document(r))


def test_any_non_done_status_is_listed_with_its_reason():
    # the section keys on status != "done", so runcore's coming `invalid` needs no change here
    cells = [cell("a:x=1", "torch", samples=noisy(10.0)),
             cell("a:x=1", "openvino", "skipped", reason="timer resolution too coarse")]
    md = render_markdown(build_report(SESSION, cells, None))
    assert "## Cells not compared" in md
    assert "openvino (f32, 1t): skipped: timer resolution too coarse" in md


def test_parity_is_one_line_for_agreement_and_one_per_disagreement():
    ok = {"parity": {"ok": True, "rel_l2": 2e-7, "tolerance": 1e-3, "finite": True}}
    bad = {"parity": {"ok": False, "rel_l2": 0.5, "tolerance": 1e-3, "finite": True}}
    cells = [cell("a:x=1", "torch", samples=noisy(10.0)),
             cell("a:x=1", "openvino", samples=noisy(5.0), meta=ok),
             cell("b:x=1", "torch", samples=noisy(10.0)),
             cell("b:x=1", "openvino", "flagged", samples=noisy(5.0), meta=bad)]
    md = render_markdown(build_report(SESSION, cells, None))
    assert "1 of 2 compared cells match their baseline's outputs" in md
    assert "largest relative L2 error is 2e-07 (a:x=1, openvino)" in md
    assert "- b:x=1 — openvino: rel\\_l2 0.5 \\> tolerance 0.001 (relative L2 error)" in md


def test_header_names_the_features_that_change_the_answer():
    machine = {"id": "m", "cpu": {"brand_raw": "X", "count": 2},
               "isa": {"avx512f": True, "avx512_bf16": True, "amx_tile": False},
               "caches": {"l3": 32 * 2**20}, "versions": {"openvino": "2026.4.1"},
               "counters": {"perf": {"ok": False}},
               "peaks": {"gflops": {"torch": 812.5}, "bandwidth_gbs": 12.3,
                         "bandwidth_ci95": [12.0, 12.5], "threads": 2, "rounds": 3,
                         "measured_at": 1.8e9, "detail": {"loadavg": 1.5}}}
    cells = [cell("a:x=1", "torch", samples=noisy(10.0),
                  meta={"counters": {"source": "model"}, "precision_effective": "f32"}),
             cell("a:x=1", "openvino", samples=noisy(5.0), meta={"precision_effective": "bf16"})]
    md = render_markdown(build_report(SESSION, cells, machine))
    assert "AVX-512 yes" in md and "AVX512-BF16 yes" in md and "AMX no" in md
    assert "L3 32 MiB" in md and "openvino 2026.4.1" in md
    assert "f32 (but openvino ran bf16)" in md
    assert "model (hardware counters unavailable here)" in md
    assert "GEMM GFLOP/s f32: torch 812.5; bandwidth\\_gbs 12.3 \\[12, 12.5\\]" in md
    assert "measured with 2 threads, best of 3 rounds, 2027-01-15 08:00 UTC" in md
    assert "loadavg" not in md and "measured\\_at" not in md  # the record, not the roofs


def test_measured_llc_misses_replace_the_model_in_the_cache_figure_and_table(tmp_path):
    cells = [type(c)(c.key, c.status, c.reason, c.samples_ms, c.warmup_ms,
                     {**c.meta, "counters": {"source": "cachegrind", "LL_misses": 1000 * (i + 1)}})
             for i, c in enumerate(study_cells())]
    r = build_report(SESSION, cells, {**MACHINE, "caches": {"l3": 32 * 2**20}})
    paths = write_report(r, tmp_path)
    assert paths["working_set_vs_depth"].stat().st_size > 10_000
    md = paths["markdown"].read_text()
    assert "| LLC misses |" in md and "| cachegrind |" in md


def test_an_average_over_a_few_specs_cannot_settle_the_papers_average():
    r = build_report(SESSION, pair("mobilenetv2", 38.0, 10.0) + pair("darts", 40.0, 10.0, seed=3),
                     MACHINE)
    avg = [row for row in claims(r) if row["claim"].startswith("average speed-up")]
    assert [a["verdict"] for a in avg] == ["not measured in this session"] * 2
    assert "at least 10 specs (this session has 2)" in avg[0]["why"]


def test_the_paper_preset_sweeps_depth_and_width_for_every_design_pattern():
    import archs
    from harness.run.config import load_preset
    from reports.trends import PATTERNS

    resolved = [(w.split(":", 1)[0], archs.resolve(w)) for w in load_preset("paper").workloads]
    for fam in PATTERNS:
        depths = {v["depth"] for f, v in resolved if f == fam and v["width"] == 32}
        widths = {v["width"] for f, v in resolved if f == fam and v["depth"] == 8}
        assert depths == {4, 8, 16} and widths == {16, 32, 64}, fam


def test_the_cache_section_says_whether_each_cache_figure_tracks_latency():
    """study_cells' torch latency grows with i and its simulated misses with it; OpenVINO's
    misses shrink as its latency grows; the model's DRAM bytes are 0 (all fits) for 7 of 10."""
    import statistics

    from reports.trends import cache_latency

    def counters(c, i):
        if c.key.backend == "torch":
            return {"source": "cachegrind", "misses_per_inference": 1000.0 * (i + 1),
                    "l1d_misses_per_inference": 0.0}  # a figure that is 0 everywhere
        return {"source": "cachegrind", "misses_per_inference": 1e5 / statistics.median(c.samples_ms)}

    cells = [type(c)(c.key, c.status, c.reason, c.samples_ms, c.warmup_ms,
                     {**c.meta, "counters": counters(c, i // 2)})
             for i, c in enumerate(study_cells())]
    model = [type(c)(c.key, c.status, c.reason, c.samples_ms, c.warmup_ms,
                     {**c.meta, "counters": {"source": "model", "misses_per_inference": 0.0,
                                             "dram_bytes": 0 if i // 2 < 7 else 1e6 * i}})
             for i, c in enumerate(study_cells())]
    tracks = {(t.backend, t.source): t for t in cache_latency(build_report(SESSION, cells, MACHINE))
              if t.figure.startswith("LLC")}
    (l1d,) = [t for t in cache_latency(build_report(SESSION, cells, MACHINE))
              if t.figure.startswith("L1D")]
    assert l1d.correlation is None and l1d.zeros == 10
    torch, ov = tracks["torch", "cachegrind"], tracks["openvino", "cachegrind"]
    assert torch.correlation.n == 10 and torch.correlation.spearman == pytest.approx(1.0)
    assert ov.correlation.spearman == pytest.approx(-1.0) and ov.zeros == 0
    md = render_markdown(build_report(SESSION, cells, MACHINE))
    assert "Do the cache figures track latency?" in md
    assert "| torch | cachegrind | LLC misses per inference | 10 |" in md
    assert "| yes |" in md and "| inversely |" in md
    m = {t.backend: t for t in cache_latency(build_report(SESSION, model, MACHINE))}
    assert m["torch"].figure == "modelled DRAM bytes per inference"
    assert m["torch"].zeros == 7 and m["torch"].correlation is None  # 3 cells left: too few
    assert m["torch"].cells == 3
    assert "too few cells" in render_markdown(build_report(SESSION, model, MACHINE))


def test_precision_section_gives_ratios_with_cis_parity_flags_and_slow_bf16():
    """int8/f32 and bf16/f32 on each backend; a flagged int8 cell gets no ratio, a bf16
    slower than its own f32 is said in words, and OpenVINO's public anchors are printed."""
    from reports.sections.precision import precision_rows

    q = {"parity": {"top1_agreement": 0.97, "rel_l2": 0.04, "inputs": 32, "ok": True}}
    cells = [
        cell("mobilenetv2", "openvino:CPU", samples=noisy(4.0)),
        cell("mobilenetv2", "openvino:CPU", samples=noisy(2.0, seed=1), precision="int8", meta=q),
        cell("mobilenetv2", "torch", samples=noisy(6.0, seed=2)),
        cell("mobilenetv2", "torch", samples=noisy(9.0, seed=3), precision="bf16",
             meta={"properties": {"precision_method": "torch.autocast(cpu, bfloat16)"}}),
        cell("mobilenetv2", "openvino:CPU", samples=noisy(3.0, seed=6), precision="bf16",
             meta={"parity": {"rel_l2": 0.53, "candidate_vs_f64": 0.54, "baseline": "torch",
                              "ok": True}}),
        cell("resnet", "openvino:CPU", samples=noisy(30.0, seed=4)),
        cell("resnet", "openvino:CPU", "flagged", samples=noisy(10.0, seed=5), precision="int8",
             reason="quantized outputs differ from the f32 model: rel_l2 0.9 > 0.25",
             meta={"parity": {"top1_agreement": 0.1, "rel_l2": 0.9, "inputs": 32, "ok": False}}),
    ]
    r = build_report(SESSION, cells, MACHINE)
    rows = {(x["spec"], x["backend"], x["precision"]): x for x in precision_rows(r)}
    int8 = rows[("mobilenetv2", "openvino:CPU", "int8")]
    assert int8["ratio"] == pytest.approx(2.0, rel=0.03) and int8["lo"] < 2.0 < int8["hi"]
    assert rows[("mobilenetv2", "torch", "bf16")]["ratio"] < 1
    assert rows[("resnet", "openvino:CPU", "int8")]["ratio"] is None  # flagged: no speed-up
    md = render_markdown(r)
    assert "What precision buys" in md and "vs f32: top-1 97%" in md
    # a bf16 cell's parity names what it was compared with: PyTorch bf16, and the f64 model
    assert rows[("mobilenetv2", "openvino:CPU", "bf16")]["parity"] == \
        "rel L2 0.53 vs torch bf16, 0.54 vs f64"
    assert "flagged: quantized outputs differ" in md
    assert "bf16 is slower than f32 on the same backend for: torch on mobilenetv2" in md
    assert "MobileNetV2 1.7-4.0x" in md and "ResNet-50 1.9-3.9x" in md


def _three_families():
    """The issue's session: plain, dwseparable and mobilenetv2, no dwbottleneck, no darts."""
    out = []
    for i, (spec, x) in enumerate({"plain:res=32": 2.0, "plain:res=64": 2.0,
                                   "dwseparable:res=32": 10.0, "dwseparable:res=64": 10.0,
                                   "mobilenetv2": 4.0}.items()):
        out += pair(spec, 10.0 * (i + 1), 10.0 * (i + 1) / x, seed=2 * i)
    return out


def test_a_session_without_dwbottleneck_does_not_judge_which_pattern_gains_most():
    from reports.sections.paper import NOT_MEASURED, judged

    r = build_report(SESSION, _three_families(), MACHINE)
    rows = {row["claim"]: row for row in claims(r)}
    pattern = rows["design pattern that gains most"]
    assert pattern["verdict"] == NOT_MEASURED
    assert pattern["why"] == "needs dwbottleneck and at least one other design pattern."
    assert "dwseparable" in pattern["here"]  # what the session does hold
    net = rows["network that gains most"]
    assert net["verdict"] == NOT_MEASURED and "needs darts" in net["why"]
    assert rows["average speed-up 380% (as a ratio, 3.8×)"]["verdict"] == NOT_MEASURED
    assert [row["claim"] for row in judged(list(rows.values()))] == ["lowest latency"]
    md = render_markdown(r)
    line = next(ln for ln in md.splitlines() if ln.startswith("| design pattern that gains"))
    assert "| not measured in this session |" in line and "differs" not in line


def test_paper_section_is_left_out_when_no_claim_can_be_judged():
    cells = [c for c in _three_families() if c.key.spec != "mobilenetv2"]
    md = render_markdown(build_report(SESSION, cells, MACHINE))
    assert "The paper and this machine" not in md


@pytest.mark.parametrize("speedups, verdict", [
    ({"dwbottleneck": 5.5, "plain": 2.0}, AGREES),  # the paper's winner, by the paper's margin
    ({"dwbottleneck": 2.0, "plain": 5.5}, DIFFERS),  # another pattern wins, CIs apart
    ({"dwbottleneck": 2.975, "plain": 3.0}, "cannot tell at this precision"),  # CIs overlap
    ({"dwbottleneck": 3.0, "plain": 1.5}, "agrees on which; differs on how much"),
])
def test_each_branch_of_the_pattern_verdict(speedups, verdict):
    cells = []
    for i, (fam, x) in enumerate(speedups.items()):
        for j, depth in enumerate((2, 4)):
            cells += pair(f"{fam}:depth={depth},res=32", 20.0, 20.0 / x, seed=10 * i + 2 * j)
    rows = {row["claim"]: row for row in claims(build_report(SESSION, cells, MACHINE))}
    assert rows["design pattern that gains most"]["verdict"] == verdict


def _ten_specs(speedups):
    cells = []
    for i, x in enumerate(speedups):
        cells += pair(f"plain:depth={i + 1},res=32", 20.0, 20.0 / x, seed=2 * i)
    return cells


@pytest.mark.parametrize("speedups, v38, v48", [
    ([3.8] * 10, AGREES, DIFFERS),  # a tight interval around 3.8
    ([4.8] * 10, DIFFERS, AGREES),  # ... around 4.8
    ([2.0] * 10, DIFFERS, DIFFERS),  # tight, and below both readings
    ([10.0] * 5 + [1000.0] * 5, "cannot tell at this precision",
     "cannot tell at this precision"),  # an interval far wider than 1.5x, off both readings
])
def test_each_branch_of_the_average_verdict(speedups, v38, v48):
    rows = {row["paper"]: row for row in claims(build_report(SESSION, _ten_specs(speedups), MACHINE))
            if row["claim"].startswith("average speed-up")}
    assert (rows["3.8×"]["verdict"], rows["4.8×"]["verdict"]) == (v38, v48)


@pytest.mark.parametrize("mobilenet_ms, resnet_ms, verdict, why", [
    (2.4, None, AGREES, ""),
    (10.0, None, DIFFERS, "MobileNetV2 is fastest, but at 10.00 ms, not about 2.4 ms"),
    (2.4, 1.0, DIFFERS, "resnet is faster than MobileNetV2 here"),
])
def test_each_branch_of_the_lowest_latency_verdict(mobilenet_ms, resnet_ms, verdict, why):
    cells = pair("mobilenetv2", 3 * mobilenet_ms, mobilenet_ms)
    if resnet_ms is not None:
        cells += pair("resnet", 2 * resnet_ms, resnet_ms, seed=4)
    (row,) = [r for r in claims(build_report(SESSION, cells, MACHINE))
              if r["claim"] == "lowest latency"]
    assert row["verdict"] == verdict and row["why"].startswith(why)
