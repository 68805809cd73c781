"""The report side of the throughput scenario (issue 24), on synthetic sessions: the Throughput
section and its figure appear only with throughput or batched cells, a throughput speed-up is a
ratio of images per second, the family sentence says grows / shrinks / cannot tell, the knee,
--json, and every latency view leaves throughput cells out."""

from __future__ import annotations

import json

import pytest

from harness.measure.results import CellKey, CellResult, SessionInfo
from reports import build_report, document, render_markdown, report_json, write_report
from reports.document import Bullets, Figure, Heading, Table
from reports.figures.throughput import plot_throughput
from reports.throughput import (
    GROWS,
    NOTHING,
    SHRINKS,
    UNSURE,
    family_edges,
    in_scope,
    knee,
    speedup_pairs,
    throughput_rows,
    unbatched,
)
from reports.views import latency_view
from tests.test_reports import MACHINE, PNG_MAGIC, noisy

SESSION = SessionInfo(id="s-t", started=1.7e9, status="finished")


def tcell(spec, backend, ms, *, scenario="latency", batch=1, images=None, seed=0, rel=0.02,
          n=200, meta=None):
    """A done cell whose samples are ``ms`` each; ``images`` per sample (throughput cells)."""
    m = {"batch": batch, "images_per_sample": images or batch, "flops": 1e9 * batch,
         **(meta or {})}
    return CellResult(CellKey(spec, backend, "f32", 1, scenario), "done",
                      samples_ms=noisy(ms, n=n, seed=seed, rel=rel), meta=m)


def duo(spec, base_ms, speedup, *, scenario="latency", batch=1, seed=0, **kw):
    """torch and openvino for one spec; openvino ``speedup`` times faster per sample."""
    return [tcell(spec, "torch", base_ms, scenario=scenario, batch=batch, seed=seed, **kw),
            tcell(spec, "openvino", base_ms / speedup, scenario=scenario, batch=batch,
                  seed=seed + 1, **kw)]


def batched(spec: str, batch: int) -> str:
    fam, _, rest = spec.partition(":")
    return f"{fam}:batch={batch}" + (f",{rest}" if rest else "")


def sweep(spec, lat1, tput, *, seed=0, **kw):
    """Latency at batch 1 with speed-up ``lat1``; throughput at batches 1 and 4 with
    speed-ups ``tput`` = (at 1, at 4); openvino finishes most images per second at 4."""
    return [*duo(spec, 10.0, lat1, seed=seed),
            *duo(spec, 10.0, tput[0], scenario="throughput", seed=seed + 2, **kw),
            *duo(batched(spec, 4), 8.0, tput[1], scenario="throughput", batch=4, seed=seed + 4,
                 **kw)]


def headings(report):
    return [b.text for b in document(report) if isinstance(b, Heading)]


def section_blocks(report, title="Throughput"):
    blocks = document(report)
    start = next(i for i, b in enumerate(blocks) if isinstance(b, Heading) and b.text == title)
    end = next((i for i, b in enumerate(blocks[start + 1:], start + 1)
                if isinstance(b, Heading) and b.level <= 2), len(blocks))
    return blocks[start:end]


# ---- when the section appears ----------------------------------------------------------------

def test_a_latency_session_at_batch_one_has_no_throughput_section_or_json():
    r = build_report(SESSION, duo("plain:res=32", 10.0, 2.0), MACHINE)
    assert "Throughput" not in headings(r)
    assert in_scope(r) == set() and report_json(r)["throughput"] is None


@pytest.mark.parametrize("cells", [
    duo("plain:res=32", 10.0, 2.0, scenario="throughput"),  # throughput at batch 1
    duo("plain:batch=4,res=32", 10.0, 2.0, batch=4),  # batched latency only
], ids=["throughput", "batched-latency"])
def test_throughput_or_batched_cells_bring_the_section(cells):
    r = build_report(SESSION, cells, MACHINE)
    assert "Throughput" in headings(r)
    assert report_json(r)["throughput"]["rows"]


# ---- images per second -----------------------------------------------------------------------

def test_a_throughput_speed_up_is_a_ratio_of_images_per_second():
    """openvino's sample takes 1.5x longer but finishes 3 images: 2x the images per second."""
    cells = [tcell("plain:res=32", "torch", 10.0, scenario="throughput", images=1, seed=1),
             tcell("plain:res=32", "openvino", 15.0, scenario="throughput", images=3, seed=2,
                   meta={"throughput": {"requests": 3, "streams": 2, "optimal_requests": 2,
                                        "request_ms": {"p50": 14.0, "p99": 19.0, "n": 600},
                                        "in_flight": {"mean": 2.9}}})]
    r = build_report(SESSION, cells, MACHINE)
    (pair,) = speedup_pairs(r)
    assert pair.latency is None and pair.throughput.speedup == pytest.approx(2.0, rel=0.02)
    lo, hi = pair.throughput.ci95
    assert lo < 2.0 < hi
    rows = {row.backend: row for row in throughput_rows(r)}
    assert rows["torch"].images_per_s == pytest.approx(100.0, rel=0.02)
    assert rows["openvino"].images_per_s == pytest.approx(200.0, rel=0.02)
    ov = rows["openvino"]
    assert (ov.requests, ov.streams, ov.in_flight) == (3, 2, 2.9)
    assert (ov.request_p50_ms, ov.request_p99_ms) == (14.0, 19.0)
    # a backend without a queue: one call at a time, its latency the sample's (not per image)
    assert rows["torch"].requests == 1 and rows["torch"].streams is None
    assert rows["torch"].request_p50_ms == pytest.approx(10.0, rel=0.02)


def test_the_throughput_speed_up_stands_beside_the_latency_one_at_the_same_batch():
    r = build_report(SESSION, sweep("plain:res=32", 2.0, (3.0, 4.0)), MACHINE)
    pairs = {(p.spec, p.batch): p for p in speedup_pairs(r)}
    assert set(pairs) == {("plain:res=32", 1), ("plain:res=32", 4)}
    one = pairs[("plain:res=32", 1)]
    assert one.latency.speedup == pytest.approx(2.0, rel=0.03)
    assert one.throughput.speedup == pytest.approx(3.0, rel=0.03)
    four = pairs[("plain:res=32", 4)]
    assert four.latency is None and four.throughput.speedup == pytest.approx(4.0, rel=0.03)
    (table,) = [b for b in section_blocks(r) if isinstance(b, Table)
                and any(c.key == "throughput" for c in b.columns)]
    assert table.rows[0]["latency"].startswith("2.0") and table.rows[0]["throughput"].startswith("3.0")


# ---- the family sentence ---------------------------------------------------------------------

def edge(cells):
    (e,) = family_edges(build_report(SESSION, cells, MACHINE))
    return e


def test_the_edge_grows_when_the_throughput_speed_up_clearly_exceeds_the_latency_one():
    e = edge(sweep("plain:res=32", 2.0, (2.5, 4.0)))
    assert e.verdict == GROWS and "grows" in e.sentence
    assert e.best == (("plain:res=32", "throughput", 4),)  # openvino's most images/s: batch 4
    assert e.change.geomean == pytest.approx(2.0, rel=0.05) and e.change.ci95[0] > 1.0
    assert "plain" in e.sentence and "batch 4" in e.sentence


def test_the_edge_shrinks_when_the_throughput_speed_up_clearly_falls_short():
    e = edge(sweep("plain:res=32", 4.0, (2.0, 2.0)))
    assert e.verdict == SHRINKS and "shrinks" in e.sentence and e.change.ci95[1] < 1.0


def test_overlapping_intervals_cannot_tell():
    """2.0x against 2.2x with noisy, short cells: the ratio's interval straddles 1."""
    e = edge(sweep("plain:res=32", 2.0, (2.0, 2.2), rel=0.3, n=12))
    assert e.verdict == UNSURE and "cannot tell" in e.sentence
    assert e.change.ci95[0] < 1.0 < e.change.ci95[1]


def test_without_a_latency_speed_up_at_batch_one_there_is_nothing_to_compare():
    cells = [*duo("plain:res=32", 10.0, 3.0, scenario="throughput"),
             *duo("plain:batch=4,res=32", 8.0, 3.0, scenario="throughput", batch=4, seed=4)]
    e = edge(cells)
    assert e.verdict == NOTHING and e.change is None and "batch 1" in e.sentence


def test_a_family_pools_its_specs_and_the_sentences_reach_the_page():
    cells = sweep("plain:res=32", 2.0, (2.5, 4.0)) + sweep("plain:depth=4,res=32", 2.0,
                                                           (2.5, 4.0), seed=10)
    r = build_report(SESSION, cells, MACHINE)
    (e,) = family_edges(r)
    assert e.latency.n_specs == 2 and e.verdict == GROWS and "over 2 specs" in e.sentence
    (bullets,) = [b for b in section_blocks(r) if isinstance(b, Bullets)]
    assert bullets.items == (e.sentence,)


# ---- the knee and the figure -----------------------------------------------------------------

def test_the_knee_is_the_smallest_batch_reaching_ninety_percent_of_the_best():
    assert knee([(1, 100.0), (4, 300.0), (16, 320.0)]) == 4  # 300/320 = 94%
    assert knee([(1, 100.0), (4, 200.0), (16, 400.0)]) == 16  # still climbing
    assert knee([(1, 100.0), (4, 288.0), (16, 320.0)]) == 4  # exactly 90% counts
    assert knee([(1, 100.0), (4, 287.0), (16, 320.0)]) == 16
    assert knee([(1, None), (4, 50.0)]) == 4 and knee([]) is None


def test_the_figure_is_drawn_for_a_batch_curve_and_left_out_for_one_batch(tmp_path):
    r = build_report(SESSION, sweep("plain:res=32", 2.0, (2.5, 4.0)), MACHINE)
    path = plot_throughput(r, tmp_path / "t.png")
    assert path is not None and path.read_bytes()[:8] == PNG_MAGIC
    fig = [b for b in section_blocks(r) if isinstance(b, Figure)]
    assert [f.name for f in fig] == ["throughput_vs_batch"]
    paths = write_report(r, tmp_path / "out")  # embedded like every figure
    assert "](throughput_vs_batch.png)" in paths["markdown"].read_text(encoding="utf-8")
    assert paths["throughput_vs_batch"].read_bytes()[:8] == PNG_MAGIC
    one = build_report(SESSION, duo("plain:res=32", 10.0, 2.0, scenario="throughput"), MACHINE)
    assert plot_throughput(one, tmp_path / "one.png") is None


def test_the_knee_is_marked_in_the_table():
    r = build_report(SESSION, sweep("plain:res=32", 2.0, (2.5, 4.0)), MACHINE)
    (table,) = [b for b in section_blocks(r) if isinstance(b, Table)
                and any(c.key == "ips" for c in b.columns)]
    knees = {(row["scenario"], row["backend"], row["batch"]) for row in table.rows
             if row["knee"] == "knee"}
    # per-sample time falls 10 -> 8 ms while images rise 1 -> 4: batch 4 is each curve's best
    assert knees == {("throughput", "torch", "4"), ("throughput", "openvino", "4")}


# ---- JSON ------------------------------------------------------------------------------------

def test_json_carries_the_rows_the_speed_ups_the_knees_and_the_family_sentences():
    r = build_report(SESSION, sweep("plain:res=32", 2.0, (2.5, 4.0)), MACHINE)
    j = json.loads(json.dumps(report_json(r), allow_nan=False))["throughput"]
    assert {(x["scenario"], x["batch"], x["backend"]) for x in j["rows"]} == {
        ("latency", 1, "torch"), ("latency", 1, "openvino"), ("throughput", 1, "torch"),
        ("throughput", 1, "openvino"), ("throughput", 4, "torch"), ("throughput", 4, "openvino")}
    row = next(x for x in j["rows"] if x["batch"] == 4 and x["backend"] == "openvino")
    assert row["spec"] == "plain:res=32" and row["cell_spec"] == "plain:batch=4,res=32"
    assert row["images_per_s"] == pytest.approx(4 * 1000 / 2.0, rel=0.03)
    assert {(s["batch"], s["throughput"]["speedup"] is not None) for s in j["speedups"]} == {
        (1, True), (4, True)}
    (fam,) = j["families"]
    assert fam["verdict"] == GROWS and fam["sentence"].startswith("plain:")
    assert {k["scenario"]: k["knee_batch"] for k in j["knees"] if k["backend"] == "torch"} == {
        "throughput": 4}


# ---- latency views leave throughput cells out ------------------------------------------------

def mixed():
    """The same spec in both scenarios: throughput at 2.5 ms per image, latency at 10 ms."""
    return [*duo("plain:res=32", 10.0, 2.0),
            *duo("plain:res=32", 2.5, 5.0, scenario="throughput", seed=2)]


def test_latency_tables_leave_throughput_cells_out():
    r = build_report(SESSION, mixed(), MACHINE)
    (cells,) = [b for b in section_blocks(r, "Latency per cell") if isinstance(b, Table)]
    # the latency cells' 10 and 5 ms; never the throughput cells' 2.5 and 0.5 ms per image
    assert [float(row["median"]) for row in cells.rows] == pytest.approx([10.0, 5.0], rel=0.01)
    (sp,) = [b for b in section_blocks(r, "Speed-ups") if isinstance(b, Table)]
    assert [row["speedup"] for row in sp.rows] == ["2.00×"]  # not the throughput 5.00×
    v = latency_view(r)
    assert {c.key.scenario for c in v.cells} == {"latency"}
    assert [s.scenario for s in v.summary] == ["latency"] and len(v.speedups) == 1
    assert latency_view(v) == v


def test_summary_and_family_rows_name_the_scenario_when_there_are_two():
    md = render_markdown(build_report(SESSION, mixed(), MACHINE))
    summary = md[md.index("## Summary"):md.index("## ", md.index("## Summary") + 3)]
    assert "1 threads, latency, one request at a time): geomean 2.0" in summary
    assert "1 threads, throughput, images/s): geomean 4.99×" in summary
    assert "| scenario |" in summary
    one = render_markdown(build_report(SESSION, duo("plain:res=32", 10.0, 2.0), MACHINE))
    assert "scenario" not in one  # a latency-only report reads as before


def test_the_family_table_names_the_scenario_of_each_row():
    cells = mixed() + [*duo("plain:depth=4,res=32", 10.0, 2.0, seed=6),
                       *duo("plain:depth=4,res=32", 2.5, 5.0, scenario="throughput", seed=8)]
    r = build_report(SESSION, cells, MACHINE)
    (t,) = [b for b in section_blocks(r, "Speed-up per family") if isinstance(b, Table)]
    assert sorted((row["family"], row["scenario"]) for row in t.rows) == [
        ("plain", "latency"), ("plain", "throughput")]


def test_the_paper_reads_latency_cells_at_batch_one_only():
    cells = [*duo("plain:res=32", 10.0, 2.0), *duo("plain:batch=4,res=32", 10.0, 9.0, batch=4),
             *duo("plain:res=32", 2.5, 5.0, scenario="throughput", seed=2)]
    v = latency_view(build_report(SESSION, cells, MACHINE), batch=1)
    assert [(s.spec, s.scenario) for s in v.speedups] == [("plain:res=32", "latency")]
    assert v.summary[0].n_specs == 1 and v.summary[0].geomean == pytest.approx(2.0, rel=0.03)


def test_the_header_says_the_scenarios_and_batches():
    md = render_markdown(build_report(SESSION, sweep("plain:res=32", 2.0, (2.5, 4.0)), MACHINE))
    assert "Scenarios:** latency, throughput; batch 1, 4" in md
    assert "Scenarios" not in render_markdown(build_report(SESSION, duo("p:x=1", 10.0, 2.0),
                                                           MACHINE))


def test_unbatched_drops_only_the_batch_key():
    assert unbatched("mobilenetv2:width=0.5,batch=4,res=96") == "mobilenetv2:width=0.5,res=96"
    assert unbatched("plain:batch=16") == "plain" and unbatched("plain") == "plain"
    assert unbatched("@models/x.py:make") == "@models/x.py:make"


def test_a_depth_sweep_holds_the_batch_at_its_smallest():
    """A batch sweep's specs share depth and width: they are no steps of a depth sweep."""
    from reports import trends

    cells = []
    for i, depth in enumerate((2, 4, 8)):
        for batch in (1, 4):
            spec = f"plain:depth={depth},res=32" if batch == 1 else \
                f"plain:depth={depth},batch=4,res=32"
            for c in duo(spec, 10.0 * depth, 2.0, batch=batch, seed=10 * i + batch):
                c.meta["resolved"] = {"depth": depth, "width": 32, "res": 32, "batch": batch}
                cells.append(c)
    r = build_report(SESSION, cells, MACHINE)
    (points,) = trends.sweep(r, "depth").values()
    assert [(p.params["depth"], p.params["batch"]) for p in points] == [(2, 1), (4, 1), (8, 1)]


def test_a_throughput_only_session_renders_without_latency_sections(tmp_path):
    from rich.console import Console

    from reports import render_terminal

    cells = [*duo("plain:res=32", 10.0, 3.0, scenario="throughput"),
             *duo("plain:batch=4,res=32", 8.0, 3.0, scenario="throughput", batch=4, seed=4)]
    r = build_report(SESSION, cells, MACHINE)
    names = headings(r)
    assert "Throughput" in names and "Summary" in names
    assert "Latency per cell" not in names and "Speed-ups" not in names
    console = Console(record=True, width=200, color_system=None)
    render_terminal(r, console)
    assert "Throughput" in console.export_text()
    paths = write_report(r, tmp_path)
    assert "throughput_vs_batch" in paths and "speedups" not in paths


def test_a_throughput_only_summary_says_it_is_throughput():
    r = build_report(SESSION, duo("plain:res=32", 10.0, 3.0, scenario="throughput"), MACHINE)
    md = render_markdown(r)
    assert "(f32, 1 threads, throughput, images/s): geomean 3.0" in md
