"""reports/: numbers from raw samples, honest exclusions, strict JSON, escaping, real PNGs."""

from __future__ import annotations

import base64
import json
import math
import re
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from harness.measure.results import CellKey, CellResult, SessionInfo
from reports import (
    build_report,
    md_escape,
    plot_latency_vs_flops,
    plot_speedups,
    render_html,
    render_markdown,
    render_terminal,
    write_report,
)

SESSION = SessionInfo(id="s-1", started=1.7e9, status="finished")
MACHINE = {"id": "m-1", "cpu": {"brand_raw": "Test CPU"}}
HOSTILE_REASON = "<script>alert(1)</script>|x"
HOSTILE_MACHINE = "**Evil** [click](http://x) `code` _u_\n# heading [bold red]boom[/]"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def noisy(center: float, n: int = 200, seed: int = 0, rel: float = 0.02) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(center + rng.normal(0.0, center * rel, n))


def cell(spec, backend, status="done", samples=None, threads=1, precision="f32", **kw):
    return CellResult(CellKey(spec, backend, precision, threads), status,
                      samples_ms=list(samples or []), **kw)


def pair(spec, base_ms, cand_ms, seed=0, **cand_kw):
    return [cell(spec, "torch", samples=noisy(base_ms, seed=seed), meta={"flops": 1e9}),
            cell(spec, "openvino", samples=noisy(cand_ms, seed=seed + 1), meta={"flops": 1e9},
                 **cand_kw)]


def flagged_cells():
    return [*pair("a:x=1", 10.0, 5.0),
            cell("b:x=2", "torch", samples=noisy(20.0)),
            cell("b:x=2", "openvino", "flagged", samples=noisy(4.0), reason=HOSTILE_REASON,
                 meta={"parity": {"rel_l2": float("nan"), "tolerance": 1e-4, "ok": False}})]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# ---- numbers ---------------------------------------------------------------------------------

def test_speedup_of_two_with_ci_bracketing_two():
    r = build_report(SESSION, pair("a:x=1", 10.0, 5.0), MACHINE)
    (s,) = r.speedups
    assert (s.spec, s.baseline, s.candidate) == ("a:x=1", "torch", "openvino")
    assert s.speedup == pytest.approx(2.0, rel=0.01)
    assert s.ci95[0] < 2.0 < s.ci95[1] and s.ci95[1] - s.ci95[0] < 0.1
    assert s.significant


def test_statistics_come_from_raw_samples():
    samples = [float(v) for v in range(1, 102)]  # median 51, known percentiles
    r = build_report(SESSION, [cell("a:x=1", "torch", samples=samples, warmup_ms=99.0)], None)
    row = r.as_json()["cells"][0]
    assert row["median_ms"] == 51.0 and row["n"] == 101
    assert row["p90_ms"] == pytest.approx(91.0) and row["warmup_ms"] == 99.0
    lo, hi = row["ci95_ms"]
    assert lo < 51.0 < hi


def test_baseline_is_a_parameter():
    r = build_report(SESSION, pair("a:x=1", 10.0, 5.0), MACHINE, baseline="openvino")
    (s,) = r.speedups
    assert (s.baseline, s.candidate) == ("openvino", "torch")
    assert s.speedup == pytest.approx(0.5, rel=0.01)


def test_flagged_candidate_is_not_a_speedup_and_says_why():
    r = build_report(SESSION, flagged_cells(), MACHINE)
    assert [s.spec for s in r.speedups] == ["a:x=1"]
    (e,) = r.excluded
    assert (e.spec, e.candidate) == ("b:x=2", "openvino")
    assert e.why.startswith("candidate flagged") and HOSTILE_REASON in e.why
    row = next(c for c in r.cells if c.status == "flagged")
    assert row.reason == HOSTILE_REASON and row.median_ms is not None  # its time is still shown
    md = render_markdown(r)
    assert "not reported (candidate flagged)" in md


def test_flagged_without_reason_gets_one_from_parity():
    cells = [cell("a:x=1", "torch", samples=noisy(10.0)),
             cell("a:x=1", "openvino", "flagged", samples=noisy(5.0),
                  meta={"parity": {"rel_l2": 0.5, "tolerance": 1e-4, "ok": False}})]
    r = build_report(SESSION, cells, None)
    assert "rel_l2 0.5" in r.cells[1].reason and "rel_l2 0.5" in r.excluded[0].why


def test_failed_and_skipped_cells_show_reason_and_no_stats():
    cells = [cell("a:x=1", "torch", "failed", samples=[1.0] * 10, reason="worker crashed"),
             cell("a:x=1", "openvino", "skipped", reason="openvino not installed")]
    r = build_report(SESSION, cells, None)
    j = r.as_json()
    for row, why in zip(j["cells"], ["worker crashed", "openvino not installed"], strict=True):
        assert row["reason"] == why
        assert row["median_ms"] is None and row["p90_ms"] is None and row["n"] == 0
        assert row["ci95_ms"] == [None, None]
    assert j["speedups"] == [] and r.summary == ()
    assert r.excluded[0].why == "baseline failed: worker crashed"
    md = render_markdown(r)
    assert "worker crashed" in md and "openvino not installed" in md


def test_missing_baseline_and_other_thread_counts_are_not_compared():
    cells = [cell("a:x=1", "torch", samples=noisy(10.0), threads=1),
             cell("a:x=1", "openvino", samples=noisy(5.0), threads=2)]
    r = build_report(SESSION, cells, None)
    assert r.speedups == ()
    assert r.excluded[0].why == "no torch cell to compare with" and r.excluded[0].threads == 2


def test_duplicate_cells_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        build_report(SESSION, [cell("a:x=1", "torch"), cell("a:x=1", "torch")], None)


def test_summary_is_a_geometric_mean_with_best_and_worst():
    cells = pair("a:x=1", 10.0, 5.0, seed=0) + pair("b:x=1", 40.0, 5.0, seed=2)
    r = build_report(SESSION, cells, MACHINE)
    (s,) = r.summary
    assert s.candidate == "openvino" and s.n_specs == 2
    assert s.geomean == pytest.approx(4.0, rel=0.02)  # sqrt(2 * 8), not the mean 5
    assert s.ci95[0] < s.geomean < s.ci95[1]
    assert s.best[0] == "b:x=1" and s.worst[0] == "a:x=1"


def test_summary_of_one_spec_keeps_its_own_interval():
    r = build_report(SESSION, pair("a:x=1", 10.0, 5.0), MACHINE)
    (s,), (sp,) = r.summary, r.speedups
    assert s.ci95[0] == pytest.approx(sp.ci95[0], rel=0.01)
    assert s.ci95[1] == pytest.approx(sp.ci95[1], rel=0.01)


# ---- JSON ------------------------------------------------------------------------------------

DESIGN_TOP = {"session", "store", "cells", "speedups"}
DESIGN_CELL = ["spec", "backend", "precision", "threads", "status", "reason", "median_ms",
               "p90_ms", "ci95_ms", "n", "flops", "counters", "parity"]
DESIGN_SPEEDUP = ["spec", "baseline", "candidate", "speedup", "ci95"]


def test_json_has_designs_shape_and_is_strict():
    r = build_report(SESSION, flagged_cells(), MACHINE, store="results/x.sqlite")
    j = json.loads(json.dumps(r.as_json(), allow_nan=False))  # NaN rel_l2 must not leak
    assert DESIGN_TOP <= set(j) and j["session"] == "s-1" and j["store"] == "results/x.sqlite"
    for c in j["cells"]:
        assert list(c)[: len(DESIGN_CELL)] == DESIGN_CELL
        assert isinstance(c["counters"], dict) and isinstance(c["parity"], dict)
        assert len(c["ci95_ms"]) == 2
    assert j["cells"][3]["parity"]["rel_l2"] is None and j["cells"][0]["flops"] == 1e9
    (s,) = j["speedups"]
    assert list(s)[: len(DESIGN_SPEEDUP)] == DESIGN_SPEEDUP and len(s["ci95"]) == 2
    assert j["machine"] == {"id": "m-1", "brand": "Test CPU"}
    assert j["summary"][0]["candidate"] == "openvino"


# ---- escaping --------------------------------------------------------------------------------

def hostile_report():
    cells = flagged_cells() + pair("c:x=<b>*y*|`z`", 8.0, 2.0, seed=5)
    return build_report(SESSION, cells, {"id": "m<1>", "cpu": {"brand_raw": HOSTILE_MACHINE}})


def test_html_escapes_every_field():
    page = render_html(hostile_report())
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;|x" in page
    assert "<b>" not in page and "m&lt;1&gt;" in page
    assert page.count("<table>") == page.count("</table>") == 3


def test_markdown_escapes_every_field():
    md = render_markdown(hostile_report())
    for raw in ("<script>", "<b>", "**Evil**", "[click](http://x)", "`code`", "_u_", "*y*"):
        assert raw not in md
    assert "\\<script\\>" in md and "\\*\\*Evil\\*\\*" in md
    assert "\n# heading" not in md  # the machine name's newline was folded
    for block in md.split("\n\n"):  # every table row has as many cell separators as its header
        rows = [ln for ln in block.splitlines() if ln.startswith("|")]
        counts = {len(re.findall(r"(?<!\\)\|", ln)) for ln in rows}
        assert len(counts) <= 1, block


def test_terminal_escapes_rich_markup():
    console = Console(record=True, width=400, color_system=None)
    render_terminal(hostile_report(), console)
    text = console.export_text()
    assert HOSTILE_REASON in text  # shown literally
    assert "[bold red]boom[/]" in text  # markup printed, not interpreted
    assert "geomean" in text and "not reported (candidate flagged)" in text


@given(st.text())
def test_md_escape_leaves_no_live_syntax(s):
    out = md_escape(s)
    assert "\n" not in out and "\r" not in out
    i = 0
    while i < len(out):  # every special char is consumed by a preceding backslash
        if out[i] == "\\":
            assert i + 1 < len(out)
            i += 2
            continue
        assert out[i] not in "`*_[]<>|&~"
        i += 1


# ---- plots and files -------------------------------------------------------------------------

def test_write_report_writes_pages_json_and_real_pngs(tmp_path):
    r = build_report(SESSION, flagged_cells() + pair("c:x=3", 30.0, 6.0, seed=7), MACHINE)
    paths = write_report(r, tmp_path / "out")
    assert set(paths) == {"markdown", "html", "json", "speedups", "latency_vs_flops"}
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 200
    for name in ("speedups", "latency_vs_flops"):
        w, h = png_size(paths[name].read_bytes())
        assert 400 <= w <= 3000 and 200 <= h <= 3000
        assert paths[name].stat().st_size > 10_000  # something was drawn
        # the page is self-contained: the PNG itself is embedded (and its file named)
        embedded = base64.b64encode(paths[name].read_bytes()).decode("ascii")
        assert f'src="data:image/png;base64,{embedded}"' in paths["html"].read_text()
        assert f'data-file="{name}.png"' in paths["html"].read_text()
        assert f"({name}.png)" in paths["markdown"].read_text()
    assert json.loads(paths["json"].read_text())["session"] == "s-1"


def test_plots_are_skipped_when_there_is_nothing_to_plot(tmp_path):
    cells = [cell("a:x=1", "torch", "failed", reason="boom"),
             cell("a:x=1", "openvino", "skipped", reason="no baseline")]
    r = build_report(SESSION, cells, None)
    assert plot_speedups(r, tmp_path / "s.png") is None
    assert plot_latency_vs_flops(r, tmp_path / "l.png") is None
    assert not list(tmp_path.glob("*.png"))
    paths = write_report(r, tmp_path)
    assert set(paths) == {"markdown", "html", "json"}
    assert "<img" not in paths["html"].read_text()


def test_latency_plot_needs_flops(tmp_path):
    cells = [cell("a:x=1", "torch", samples=noisy(10.0)),
             cell("a:x=1", "openvino", samples=noisy(5.0))]
    r = build_report(SESSION, cells, None)
    assert plot_latency_vs_flops(r, tmp_path / "l.png") is None
    assert plot_speedups(r, tmp_path / "s.png") is not None


def test_plots_survive_mathtext_in_specs(tmp_path):
    r = build_report(SESSION, pair("m:x=$\\frac$", 10.0, 5.0), MACHINE)
    for fn in (plot_speedups, plot_latency_vs_flops):
        p = fn(r, tmp_path / f"{fn.__name__}.png")
        assert p is not None and png_size(p.read_bytes())[0] > 0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on inf - inf; the point is the JSON
def test_non_finite_samples_do_not_break_json():
    cells = [cell("a:x=1", "torch", samples=[math.inf] * 10)]
    j = build_report(SESSION, cells, None).as_json()
    json.dumps(j, allow_nan=False)


def test_busy_machine_and_unconverged_cells_are_warned_about():
    from harness.measure.results import CellKey, CellResult, SessionInfo
    from reports import build_report

    key = CellKey("plain", "torch", "f32", 2)
    spread = [float(v) for v in range(90, 111)]  # median 100; order-statistic CI [95, 105]
    busy = CellResult(key, "done", None, spread, 1.0,
                      {"loadavg": {"before": 5.0, "after": 6.5}, "converged": False,
                       "target": 0.01, "minor_faults_per_inference": 4333.0})
    quiet = CellResult(CellKey("plain", "openvino:CPU", "f32", 2), "done", None, [1.0] * 10, 1.0,
                       {"loadavg": {"before": 1.5, "after": 2.0}, "converged": True,
                        "minor_faults_per_inference": 0.3})
    report = build_report(SessionInfo("s1", 0.0), [busy, quiet], {"cpu": {"count": 2}})
    assert len(report.warnings) == 3
    assert "busier than its 2 cores" in report.warnings[0] and "load 6.5" in report.warnings[0]
    assert "1 cell reached their time budget" in report.warnings[1]
    assert "met ±1.0%" in report.warnings[1] and "reach ±5.0% (median)" in report.warnings[1]
    assert report.warnings[2].startswith("1 cell page-faulted in their timed blocks "
                                         "(e.g. plain torch (4,333) minor faults per inference)")
    assert report.as_json()["warnings"] == list(report.warnings)
    assert build_report(SessionInfo("s2", 0.0), [quiet], {"cpu": {"count": 2}}).warnings == ()


def test_speedup_ci_uses_the_stored_timed_blocks_and_says_so():
    blocks = [20] * 10
    with_blocks = [cell("a:x=1", "torch", samples=noisy(10.0), meta={"blocks": blocks}),
                   cell("a:x=1", "openvino", samples=noisy(5.0, seed=1), meta={"blocks": blocks})]
    (s,) = build_report(SESSION, with_blocks, MACHINE).speedups
    assert s.ci_method == "paired-blocks" and s.as_json()["ci_method"] == "paired-blocks"
    assert s.ci95[0] < 2.0 < s.ci95[1]
    assert [c["ci_method"] for c in build_report(SESSION, with_blocks, MACHINE)
            .as_json()["cells"]] == ["blocks", "blocks"]
    md = render_markdown(build_report(SESSION, with_blocks, MACHINE))
    assert "bootstrap over the paired timed blocks" in md

    wrong = [cell("a:x=1", "torch", samples=noisy(10.0), meta={"blocks": [7, 7]}),
             cell("a:x=1", "openvino", samples=noisy(5.0, seed=1), meta={"blocks": "x"})]
    (s,) = build_report(SESSION, wrong, MACHINE).speedups
    assert s.ci_method == "iid"  # lengths that do not add up are not trusted
    assert "single iterations" in render_html(build_report(SESSION, wrong, MACHINE))
