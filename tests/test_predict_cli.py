"""The latency predictor's command line (issue 26): ``accelbench predict`` fitted on a synthetic
store of kernel cells, predicting, scoring measured networks, refusing bad input; the
machine's session level in its intervals; the line that names a prediction's whole-inference
terms. Which kernels a backend runs: ``test_predict.py``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import archs
from harness.cli import main
from harness.measure.results import DONE, CellKey, CellResult, SessionInfo
from harness.predict.design import CELL_MS
from harness.store import Store

KERNEL_SPECS = ["kernel:op=conv,cin=8,res=8", "kernel:op=conv,cin=16,res=16",
                "kernel:op=conv,repeat=3,cin=8,res=8", "kernel:op=bn,cin=8,res=16",
                "kernel:op=act,cin=8,res=16", "kernel:op=act,cin=16,res=16",
                "kernel:op=gap,cin=16,res=4", "kernel:op=linear,cin=16,cout=10",
                "kernel:op=linear,cin=32,cout=10", "kernel:op=bn,cin=16,res=16"]


def _synthetic_store(path: Path, specs: list[str], scale: dict[str, float],
                     machine_id: str | None = None) -> Path:
    """Cells whose latency is a known function of the network's FLOPs and size."""
    with Store.open(path) as s:
        s.begin_session(SessionInfo(id="20260101T000000-aaaa0000", started=1.7e9,
                                    machine_id=machine_id))
        for spec in specs:
            prof = archs.profile(spec)
            for backend, k in scale.items():
                ms = k * (0.01 + prof.flops / 1e8 + prof.activation_bytes / 1e7)
                samples = list(ms * (1 + 0.001 * np.arange(20)))
                s.put_cell("20260101T000000-aaaa0000", CellResult(
                    CellKey(spec, backend, "f32", 1), DONE, samples_ms=samples))
    return path


def test_cli_predicts_scores_and_refuses_bad_input(tmp_path: Path, capsys) -> None:
    store = _synthetic_store(tmp_path / "k.sqlite", KERNEL_SPECS,
                             {"torch": 1.0, "openvino:CPU": 0.5})
    nets = _synthetic_store(tmp_path / "n.sqlite", ["plain:depth=1,width=8,res=16"],
                            {"torch": 1.0, "openvino:CPU": 0.5})
    rc = main(["predict", "plain:depth=1,width=8,res=16", "plain:depth=2,width=64,res=64",
               "--store", str(store), "--score", str(nets), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fit"]["session_level"] is None
    small, big = out["predictions"]
    for b in ("torch", "openvino:CPU"):
        p = small["backends"][b]
        assert p["interval"][0] <= p["ms"] <= p["interval"][1]
        assert p["dominant"]
        # the whole inference's terms, each named and costing no more than the prediction
        assert set(p["terms"]) == set(CELL_MS.values())
        assert all(0 <= ms <= p["ms"] for ms in p["terms"].values())
        assert p["moved_MB"] > p["weight_MB"] > 0
        # every kernel's share (by kind) and the terms are the whole prediction, nothing twice
        assert sum(p["by_kind"].values()) + sum(p["terms"].values()) == pytest.approx(p["ms"])
    assert small["speedups"][0]["candidate"] == "openvino:CPU"
    assert big["backends"]["torch"]["out_of_range"]  # 64 channels at 64x64: never measured
    summary = out["score"]["summary"]
    assert set(summary) == {"torch", "openvino:CPU", "speedup openvino:CPU/torch"}
    assert summary["torch"]["plain"]["n"] == 1
    assert out["score"]["repeatability"] == {}  # one session of each network
    # how often the intervals held the measured figure, and how wide they were, per target
    held = out["score"]["intervals"]
    assert set(held) == set(summary)
    assert all(h["n"] == 1 and h["inside"] in (0.0, 1.0) and h["median_half_width"] > 0
               for h in held.values())
    assert (tmp_path / "k.sqlite.kernels.json").is_file()  # kernels cached beside the store

    # the score as text: with one session, the best score it could get is said to be unknown
    assert main(["predict", "--store", str(store), "--score", str(nets)]) == 0
    text = capsys.readouterr().out
    assert "each network was measured in one session" in text
    assert "the intervals leave out how far a whole session moves" in text  # no A/A record
    assert "each kernel cell was run once" in text
    assert "its 95% intervals held 1 of 1 measured figures (100%" in text
    # a second session, PyTorch 20% slower, with a backend the predictor was not fitted on:
    # the floor is stated for what the score scored, and only for that
    spec = "plain:depth=1,width=8,res=16"
    with Store.open(nets) as s:
        s.begin_session(SessionInfo(id="20260102T000000-bbbb0000", started=1.8e9))
        for backend, k in (("torch", 1.2), ("openvino:CPU", 1.0), ("onnxruntime", 1.0)):
            first = next(c for c in s.cells("20260101T000000-aaaa0000")
                         if c.key.backend == ("torch" if backend == "onnxruntime" else backend))
            s.put_cell("20260102T000000-bbbb0000", CellResult(
                CellKey(spec, backend, "f32", 1), DONE,
                samples_ms=[x * k for x in first.samples_ms]))
    assert main(["predict", "--store", str(store), "--score", str(nets), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["score"]
    assert set(scored["repeatability"]) == set(scored["summary"]) | {"sessions"}
    assert scored["repeatability"]["sessions"] == [2]
    assert main(["predict", "--store", str(store), "--score", str(nets)]) == 0
    text = capsys.readouterr().out
    assert "the best score these measurements allow (2 sessions" in text
    assert "onnxruntime" not in text

    # the kernel preset run again, PyTorch's cells 25% slower: how far one run of a cell lies
    # from the runs' mean is stated (PyTorch ±11.8% each way, scaled to one run: none within
    # ±10%; OpenVINO's cells agree), and the fit reads the mean
    with Store.open(store) as s:
        s.begin_session(SessionInfo(id="20260103T000000-cccc0000", started=1.9e9))
        for c in list(s.cells("20260101T000000-aaaa0000")):
            k = 1.25 if c.key.backend == "torch" else 1.0
            s.put_cell("20260103T000000-cccc0000", CellResult(
                c.key, DONE, samples_ms=[x * k for x in c.samples_ms]))
    assert main(["predict", spec, "--store", str(store), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["fit"]["kernel_repeatability"]
    assert rep["sessions"] == [2]
    assert rep["torch"]["one_session"]["within_10"] == 0.0
    assert rep["openvino:CPU"]["one_session"]["within_10"] == 1.0
    assert rep["torch"]["one_session"]["n"] == 2 * len(KERNEL_SPECS)
    assert main(["predict", spec, "--store", str(store)]) == 0
    assert "the kernel cells were run in 2 sessions" in capsys.readouterr().out

    assert main(["predict", "plain:depth=1,width=8,res=16", "--store", str(store)]) == 0
    text = capsys.readouterr().out
    assert "speed-up openvino:CPU over torch" in text
    assert text.count("    whole inference: ") == 2  # one line per backend
    # where the kernels' time goes by kind, the largest first, each with its share
    by_kind = [line for line in text.splitlines() if line.startswith("    by kind: ")]
    assert len(by_kind) == 2 and all(" ms (" in line and "%)" in line for line in by_kind)
    assert main(["predict", "nosuch:x=1", "--store", str(store)]) == 2
    assert main(["predict", "plain", "--store", str(tmp_path / "missing.sqlite")]) == 2
    assert main(["predict", "plain", "--store", str(nets)]) == 2  # no kernel cells
    assert main(["predict", "--store", str(store)]) == 2
    assert "error" in capsys.readouterr().err


def test_predictions_carry_the_machines_session_level_when_its_a_a_run_was_recorded(
        tmp_path: Path, capsys, monkeypatch) -> None:
    """The kernel store's one machine, with an A/A record (``compare --record-noise``): its
    session level goes into every interval (wider than without), ``--json`` and the text say
    so, with the kernel cells' sessions (one each here)."""
    from harness.machine import noise
    from harness.measure.session_level import Term

    monkeypatch.setenv("ACCELBENCH_PEAKS", str(tmp_path / "peaks"))
    scale = {"torch": 1.0, "openvino:CPU": 0.5}
    bare = _synthetic_store(tmp_path / "bare.sqlite", KERNEL_SPECS, scale)
    store = _synthetic_store(tmp_path / "k.sqlite", KERNEL_SPECS, scale, machine_id="m-aa")
    noise.save("m-aa", {"latency": 0.2, "speedup": 0.1}, ["a", "b"], 3,
               {"latency": Term(0.08, 200, 190), "speedup": Term(0.04, 100, 95)})
    spec = "plain:depth=1,width=8,res=16"
    got = {}
    for name, path in (("bare", bare), ("aa", store)):
        assert main(["predict", spec, "--store", str(path), "--json"]) == 0
        got[name] = json.loads(capsys.readouterr().out)
    assert got["bare"]["fit"]["session_level"] is None
    level = got["aa"]["fit"]["session_level"]
    assert level["latency_sd"] == 0.08 and level["speedup_sd"] == 0.04
    assert level["kernel_sessions"] == 1
    assert got["aa"]["predictions"][0]["session_level"] == level
    for b in scale:
        lo, hi = got["bare"]["predictions"][0]["backends"][b]["interval"]
        lo2, hi2 = got["aa"]["predictions"][0]["backends"][b]["interval"]
        assert hi2 / lo2 > hi / lo
    assert main(["predict", spec, "--store", str(store)]) == 0
    text = capsys.readouterr().out
    assert "the intervals carry this machine's session level" in text
    assert "latency ±8.0%, speed-up ±4.0%" in text


def test_the_whole_inference_line_names_the_terms_that_cost_and_why_weights_are_cold() -> None:
    """``predict``'s line under each backend: the terms that cost anything; cold weights with
    the bytes moved against the L3; a network moving more than the L3 where the fit has no
    cold-weight term says its cold weights are not priced; nothing at all reads "none"."""
    from harness.cli.predict import _terms

    zero = dict.fromkeys(CELL_MS.values(), 0.0)
    cold = {"terms": {**zero, "overhead_ms": 0.002, "cold_weight_ms": 0.48, "switch_ms": 1.6},
            "moved_MB": 95.2, "weight_MB": 14.2, "cache_MB": 33.554432, "cold_identified": True}
    line = _terms(cold)
    assert line == ("overhead 0.002 ms, cold weights 0.48 ms (14.2 MB of weights read from "
                    "memory: the inference moves 95.2 MB, more than the 33.6 MB (32 MiB) L3), "
                    "switches into a convolution 1.6 ms")
    eager = {**cold, "conversion_MB": 30.1}  # eager PyTorch's conversions inside its calls
    assert ("the inference moves 95.2 MB, 30.1 MB of it layout conversions inside its "
            "convolutions, more than the 33.6 MB (32 MiB) L3") in _terms(eager)
    warm = {**cold, "terms": {**zero, "overhead_ms": 0.002}, "moved_MB": 20.0}
    assert _terms(warm) == "overhead 0.002 ms"
    unpriced = {**cold, "terms": {**zero, "overhead_ms": 0.002}, "cold_identified": False}
    assert "cold weights not priced (the inference moves 95.2 MB" in _terms(unpriced)
    # identified, fitted at nothing: no claim that the fit lacks it
    assert _terms({**unpriced, "cold_identified": True}) == "overhead 0.002 ms"
    assert _terms({**warm, "terms": zero}) == "none"
    no_cache = {**unpriced, "cache_MB": 0.0}  # no L3 known: nothing said of it
    assert _terms(no_cache) == "overhead 0.002 ms"


def test_score_rebuilds_a_user_model_from_its_session_and_skips_one_that_changed(
        tmp_path: Path, capsys) -> None:
    """A user model's cells are named by its file's name and content (``@net.py#hash:make``),
    not its path: scoring rebuilds it from the path its session recorded, and says which it
    cannot (the file edited since is another model) while scoring the rest."""
    from harness.run.workload import model_name

    model_file = tmp_path / "net.py"
    model_file.write_text(
        "import torch\nfrom torch import nn\n\n"
        "def make():\n"
        "    return nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()).eval(), "
        "torch.randn(1, 8, 16, 16)\n")
    ref = f"{model_file}:make"
    name = model_name(ref)
    assert name.startswith("@net.py#")
    store = _synthetic_store(tmp_path / "k.sqlite", KERNEL_SPECS,
                             {"torch": 1.0, "openvino:CPU": 0.5})
    nets = tmp_path / "n.sqlite"
    with Store.open(nets) as s:
        s.begin_session(SessionInfo(id="20260101T000000-bbbb0000", started=1.7e9,
                                    config={"workloads": ["plain:depth=1,width=8,res=16",
                                                          "@" + ref]}))
        for spec in ("plain:depth=1,width=8,res=16", name):
            for backend, ms in (("torch", 1.0), ("openvino:CPU", 0.5)):
                s.put_cell("20260101T000000-bbbb0000", CellResult(
                    CellKey(spec, backend, "f32", 1), DONE,
                    samples_ms=list(ms * (1 + 0.001 * np.arange(20)))))

    def scored() -> dict:
        assert main(["predict", "--store", str(store), "--score", str(nets), "--json"]) == 0
        return json.loads(capsys.readouterr().out)["score"]

    got = scored()
    assert {r["spec"] for r in got["networks"]} == {"plain:depth=1,width=8,res=16", name}
    assert got["skipped"] == []
    assert got["summary"]["torch"]["custom"]["n"] == 1

    model_file.write_text(model_file.read_text() + "\n# edited: another model now\n")
    got = scored()
    assert [r["spec"] for r in got["networks"]] == ["plain:depth=1,width=8,res=16"]
    assert [s["spec"] for s in got["skipped"]] == [name]
    assert "has changed since" in got["skipped"][0]["why"]
    assert main(["predict", "--store", str(store), "--score", str(nets)]) == 0
    assert f"not scored: {name}" in capsys.readouterr().out
