"""The design-axis sections (``reports.sections.axes``) on small reports with known speed-ups:
each appears only with a sweep of its axis, and its verdict reads grows / shrinks / holds with
the right significance."""

from __future__ import annotations

from harness.measure.results import SessionInfo
from reports import build_report, render_markdown
from reports.axes import AXES, sweeps, verdict
from tests.test_reports import MACHINE, cell, noisy

SESSION = SessionInfo(id="s-axes", started=1.7e9, status="finished")
AXIS = {a.name: a for a in AXES}


def _pair(spec, resolved, base_ms, cand_ms, seed, rel=0.02, **meta):
    m = {"flops": 1e6 * base_ms, "resolved": resolved, "params": 1000, **meta}
    return [cell(spec, "torch", samples=noisy(base_ms, seed=seed, rel=rel), meta=m),
            cell(spec, "openvino", samples=noisy(cand_ms, seed=seed + 1, rel=rel), meta=m)]


def _plain(rank=0, act="relu"):
    return {"depth": 4, "width": 64, "rank": rank, "batch": 1, "res": 64, "classes": 1000, "act": act}


def _cells():
    out = []
    # rank: the speed-up falls from 3x (whole) to 1.5x at rank 8, far beyond the noise
    for i, (rank, x) in enumerate(((0, 3.0), (32, 2.5), (8, 1.5))):
        spec = "plain:depth=4,width=64,res=64" + (f",rank={rank}" if rank else "")
        out += _pair(spec, _plain(rank), 20.0 - i, (20.0 - i) / x, seed=10 * i)
    # act on the same plain network: relu 3x (above), gelu 3.05x measured with 25% noise
    out += _pair("plain:depth=4,width=64,act=gelu,res=64", _plain(act="gelu"), 20.0, 20.0 / 3.05,
                 seed=100, rel=0.25)
    # wide: sparsity 0 and 0.9, same speed-up (holds)
    for i, s in enumerate((0.0, 0.9)):
        r = {"units": 4096, "layers": 1, "sparsity": s, "batch": 1, "res": 32, "classes": 10,
             "act": "leakyrelu"}
        out += _pair("wide" + (f":sparsity={s:g}" if s else ""), r, 8.0, 4.0, seed=200 + 10 * i,
                     nonzero_params=int(1000 * (1 - s)))
    return out


def test_each_axis_section_appears_only_with_its_sweep_and_says_the_verdict():
    report = build_report(SESSION, _cells(), MACHINE)
    rank = sweeps(report, AXIS["rank"])
    assert len(rank) == 1 and [p.value for p in rank[0].points] == [0, 32, 8]
    word, sentence = verdict(rank[0])
    assert word == "shrinks" and "significant: the 95% CIs do not overlap" in sentence
    assert "at whole" in sentence and "at rank 8" in sentence
    (wide,) = sweeps(report, AXIS["sparsity"])
    assert verdict(wide)[0] == "holds" and "not significant" in verdict(wide)[1]
    (act,) = sweeps(report, AXIS["act"])
    assert [p.value for p in act.points] == ["relu", "gelu"] and verdict(act)[0] == "holds"
    assert sweeps(report, AXIS["depth"]) == [] and sweeps(report, AXIS["residual"]) == []

    md = render_markdown(report)
    assert "## Factorised convolutions" in md and "## Wide layers with switched-off neurons" in md
    assert "## The activation function" in md
    assert "## Deep against shallow" not in md and "## Residual against plain" not in md
    assert "the speed-up shrinks from 3.00×" in md and "non-zero params" in md


def test_deep_shallow_sweeps_group_by_match_and_label_what_differs():
    cells = []
    for i, (match, depth, x, rel) in enumerate([("units", 1, 2.0, 0.01), ("units", 4, 3.0, 0.01),
                                                ("params", 1, 2.0, 0.3), ("params", 4, 2.05, 0.3)]):
        r = {"depth": depth, "units": 1024, "match": match, "residual": False, "batch": 1,
             "res": 32, "classes": 10, "act": "relu"}
        spec = f"mlpdepth:depth={depth},match={match}"
        cells += _pair(spec, r, 5.0, 5.0 / x, seed=10 * i, rel=rel)
    report = build_report(SESSION, cells, MACHINE)
    found = {s.label: verdict(s)[0] for s in sweeps(report, AXIS["depth"])}
    assert found == {"mlpdepth, match=units": "grows", "mlpdepth, match=params": "holds"}
