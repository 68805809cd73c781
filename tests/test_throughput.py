"""The throughput scenario (issue 24): the scenario and batch sweep in the config, the TOML, the
cell identity and the JSON; OpenVINO's asynchronous queue keeps the requests in flight it says
it does; speed-ups are ratios of images per second; a throughput cell under a burner is invalid
like a latency cell; parity holds at batch > 1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.measure.estimate import cell_speedup, cell_summary, per_image
from harness.measure.results import DONE, LATENCY, THROUGHPUT, CellKey, CellResult
from harness.run.config import ConfigError, SessionConfig, load_toml
from harness.run.plan import plan_groups
from harness.run.workload_text import with_batch
from harness.store import Store
from tests.conftest import run_cli
from tests.test_interference_e2e import run_beside_a_burner

SPEC = "plain:depth=1,width=8,res=32"


# ---- config, TOML, identity --------------------------------------------------------------------

def test_scenarios_and_batches_from_toml_expand_into_cells(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('[session]\nworkloads = ["mobilenetv2:width=0.5,res=96"]\n'
                    'scenarios = "latency,throughput"\nbatches = [1, 4]\n')
    config = load_toml(toml)
    assert config.scenarios == (LATENCY, THROUGHPUT) and config.batches == (1, 4)
    keys = [p.key(b) for p in plan_groups(config, set()) for b in p.backends]
    assert {(k.spec, k.scenario) for k in keys} == {
        ("mobilenetv2:width=0.5,res=96", LATENCY), ("mobilenetv2:width=0.5,res=96", THROUGHPUT),
        ("mobilenetv2:width=0.5,batch=4,res=96", LATENCY),
        ("mobilenetv2:width=0.5,batch=4,res=96", THROUGHPUT)}
    assert len(keys) == 8  # x two backends
    # stored with the session and read back for --resume
    again = SessionConfig.from_dict(config.as_dict())
    assert again.scenarios == config.scenarios and again.batches == config.batches


def test_batch_sweep_is_canonical_and_refuses_what_it_cannot_batch(tmp_path: Path) -> None:
    assert with_batch("resnet:batch=8,depth=18", 1) == "resnet:depth=18"  # default left out
    assert with_batch("mobilenetv2", 16) == "mobilenetv2:batch=16"
    with pytest.raises(ConfigError, match="scenario 'offline' is not valid"):
        SessionConfig(("mobilenetv2",), scenarios=("offline",))
    with pytest.raises(ConfigError, match="lists a value twice"):
        SessionConfig(("mobilenetv2",), batches=(4, 4))
    with pytest.raises(ConfigError, match="from 1 to 256"):
        SessionConfig(("mobilenetv2",), batches=(0,))
    model = tmp_path / "net.py"
    model.write_text("def make():\n    raise SystemExit\n")
    with pytest.raises(ConfigError, match="sets its own batch"):
        SessionConfig((f"@{model}:make",), batches=(2,))


def test_cli_flags_reach_the_cells_and_bad_ones_exit_2(tmp_path: Path) -> None:
    proc = run_cli("run", "mobilenetv2:width=0.5,res=96", "--scenario", "throughput",
                   "--batch", "1,2", "--dry-run", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cells = json.loads(proc.stdout)["cells"]
    assert {c["scenario"] for c in cells} == {THROUGHPUT}
    assert sorted({c["spec"] for c in cells}) == ["mobilenetv2:width=0.5,batch=2,res=96",
                                                  "mobilenetv2:width=0.5,res=96"]
    for bad, says in ((["--scenario", "fast"], "scenario 'fast' is not valid"),
                      (["--batch", "x"], "--batch: expected a comma list of int"),
                      (["--batch", "300"], "--batch must be an integer from 1 to 256")):
        proc = run_cli("run", "mobilenetv2", *bad, "--dry-run", cwd=tmp_path)
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr


def test_one_session_holds_both_scenarios_of_a_cell(tmp_path: Path) -> None:
    from harness.measure.results import SessionInfo

    with Store.open(tmp_path / "s.sqlite") as s:
        s.begin_session(SessionInfo("s1", 1.0))
        for scen in (LATENCY, THROUGHPUT):
            s.put_cell("s1", CellResult(CellKey(SPEC, "torch", "f32", 2, scen), DONE,
                                        samples_ms=[1.0, 1.1]))
        got = s.cells("s1")
    assert [c.key.scenario for c in got] == [LATENCY, THROUGHPUT]
    assert got[0].key.group() != got[1].key.group()  # never compared with each other


# ---- images per second ---------------------------------------------------------------------------

def _cell(backend: str, per_sample_ms: float, images: int, scenario: str = THROUGHPUT,
          seed: int = 0) -> CellResult:
    rng = np.random.default_rng(seed)
    samples = list(per_sample_ms * np.exp(rng.normal(0, 0.01, 120)))
    return CellResult(CellKey(SPEC, backend, "f32", 2, scenario), DONE, samples_ms=samples,
                      meta={"blocks": [20] * 6, "disturbed": [False] * 6,
                            "images_per_sample": images, "batch": 1})


def test_throughput_speedup_is_a_ratio_of_images_per_second() -> None:
    # torch: 1 image in 2 ms (500 images/s); OpenVINO's queue: 3 images per 1.5 ms sample (2000/s)
    torch, ov = _cell("torch", 2.0, 1), _cell("openvino:CPU", 1.5, 3, seed=1)
    got = cell_speedup(torch, ov)
    assert got["speedup"] == pytest.approx(4.0, rel=0.01)  # not 2.0/1.5 = 1.33
    assert got["ci95"][0] < 4.0 < got["ci95"][1] * 1.01
    assert cell_summary(ov)["median"] == pytest.approx(0.5, rel=0.01)  # ms per image
    # a latency cell of a batched model stays ms per inference: its samples are latencies
    lat = _cell("torch", 2.0, 4, scenario=LATENCY)
    assert per_image(lat) is lat and cell_summary(lat)["median"] == pytest.approx(2.0, rel=0.01)


# ---- OpenVINO's queue -----------------------------------------------------------------------------

def _compiled(hint: str = "THROUGHPUT"):
    import openvino as ov

    import archs

    model, x = archs.build("mobilenetv2:width=0.5,res=96", seed=0)
    om = ov.convert_model(model.eval(), example_input=x, input=[tuple(x.shape)])
    cm = ov.Core().compile_model(om, "CPU", {"PERFORMANCE_HINT": hint, "INFERENCE_NUM_THREADS": 2,
                                             "INFERENCE_PRECISION_HINT": "f32"})
    return cm, np.ascontiguousarray(x.numpy(), dtype=np.float32).copy()


def test_the_queue_keeps_the_requests_in_flight_it_says_it_does() -> None:
    from harness.backends.openvino_throughput import ThroughputQueue

    cm, data = _compiled()
    optimal = cm.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    queue = ThroughputQueue(cm, data, optimal + 1)
    queue.first_round_ms()
    samples = queue.time_block(40)
    assert len(samples) == 40 and all(s > 0 for s in samples)
    assert len(queue.request_ms) == 41 * (optimal + 1)  # every request counted, one spare group
    flight = queue.in_flight()
    assert flight["max"] == optimal + 1  # never more than the queue holds ...
    # ... and never fewer than the optimal number for long: the time-weighted mean over the
    # stretch the samples cover (a completion leaves one slot empty until Python resubmits)
    assert flight["mean"] >= 0.95 * optimal, flight
    counted = ThroughputQueue(cm, data, 1)
    counted.time_block(10)
    assert counted.in_flight()["max"] == 1 and counted.in_flight()["mean"] <= 1.0


def test_openvino_prepares_throughput_mode_and_reads_it_back() -> None:
    import torch

    import archs
    from harness.backends import PrepareContext, get_backend

    model, x = archs.build("plain:depth=1,width=8,res=32,batch=2", seed=0)
    prepared = get_backend("openvino:CPU").prepare(model, x, PrepareContext(
        "f32", 2, scenario=THROUGHPUT))
    info, props = prepared.info, prepared.info["properties"]
    assert props["PERFORMANCE_HINT"] == "THROUGHPUT"
    assert info["compile_config"].get("NUM_STREAMS") is None  # the hint chose the streams
    tp = info["throughput"]
    assert tp["optimal_requests"] == props["OPTIMAL_NUMBER_OF_INFER_REQUESTS"]
    assert tp["requests"] == tp["optimal_requests"] + 1 and tp["streams"] == props["NUM_STREAMS"]
    assert info["images_per_sample"] == 2 * tp["requests"]
    with torch.inference_mode():
        want = model(x).numpy()
    np.testing.assert_allclose(prepared.output(), want, rtol=1e-4, atol=1e-4)  # batch 2 parity
    prepared.time_block(5)
    facts = prepared.throughput_facts()
    assert facts["request_ms"]["n"] == 6 * tp["requests"] and facts["request_ms"]["p50"] > 0
    fixed = get_backend("openvino:CPU[requests=3,streams=2]").prepare(model, x, PrepareContext(
        "f32", 2, scenario=THROUGHPUT))
    assert fixed.info["throughput"]["requests"] == 3
    assert fixed.info["properties"]["NUM_STREAMS"] == 2


# ---- end to end ---------------------------------------------------------------------------------

def test_a_throughput_session_end_to_end(tmp_path: Path) -> None:
    proc = run_cli("run", SPEC, "--scenario", "throughput", "--batch", "1,2", "--budget", "0.3",
                   "--processes", "1", "--counters", "off", "--no-report", "--json",
                   "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "images/s" in proc.stderr  # the progress line speaks throughput
    data = json.loads(proc.stdout)
    cells = {(c["spec"], c["backend"]): c for c in data["cells"]}
    assert {c["scenario"] for c in cells.values()} == {THROUGHPUT}
    for (spec, _backend), c in cells.items():
        assert c["status"] == "done", c
        assert c["images_per_s"] == pytest.approx(1000 / c["median_ms"])
        assert c["batch"] == (2 if "batch=2" in spec else 1)
    ov = cells[(with_batch(SPEC, 2), "openvino:CPU")]
    assert ov["throughput"]["mode"] == "async-queue" and ov["throughput"]["in_flight"]["max"] >= 2
    assert ov["parity"]["ok"] is True  # batch 2 against torch, as at batch 1
    assert {s["scenario"] for s in data["speedups"]} == {THROUGHPUT} and len(data["speedups"]) == 2


def test_a_throughput_cell_beside_a_burner_is_invalid(tmp_path: Path) -> None:
    """As for latency (tests/test_interference_e2e.py): the real default gate, one burner."""
    config = tmp_path / "session.toml"
    config.write_text("[session]\nbudget_s = 0.5\nwait_s = 1.0\n")
    proc = run_beside_a_burner(tmp_path, SPEC, "--backends", "openvino:CPU", "--scenario",
                               "throughput", "--threads", "1", "--config", str(config))
    assert proc.returncode == 1, proc.stderr
    (cell,) = json.loads(proc.stdout)["cells"]
    assert cell["scenario"] == THROUGHPUT
    assert cell["status"] == "invalid", cell
    assert "foreign CPU" in cell["reason"] and cell["disturbed_blocks"] > 0
