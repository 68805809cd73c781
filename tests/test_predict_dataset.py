"""The predictor's data (issue 26): a cell read at its quiet-state latency, and a cell run in
several sessions read at their geometric mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.measure.results import DONE, CellKey, CellResult, SessionInfo
from harness.store import Store


def test_the_predictor_reads_a_cell_in_its_quiet_state() -> None:
    """A kernel cell whose second of three processes ran in a host slow stretch (2x) is read
    without it, at the low percentile of the other two; a one-process cell that a slow stretch
    covered for 60% of its samples (1.5x) at its unslowed latency, where its median is the
    slowed one."""
    from harness.measure.nested import SPEEDUP_QUANTILE
    from harness.predict.dataset import quiet_figure

    quiet = 100 * SPEEDUP_QUANTILE

    key = CellKey("kernel:cin=16,cout=16", "torch", "f32", 2)
    samples, blocks, owner = [], [], []
    for proc, scale in enumerate((1.0, 2.0, 1.02)):
        for _ in range(4):
            samples += [scale * (1 + 0.001 * i) for i in range(10)]
            blocks.append(10)
            owner.append(proc)
    meta = {"blocks": blocks, "disturbed": [False] * len(blocks), "block_process": owner}
    cell = CellResult(key, DONE, None, samples, None, meta)
    kept = samples[:40] + samples[80:]
    assert quiet_figure(cell) == pytest.approx(np.percentile(kept, quiet))
    assert quiet_figure(cell) < 1.01
    partly = [1 + 0.001 * i for i in range(40)] + [1.5 + 0.001 * i for i in range(60)]
    one = CellResult(key, DONE, None, partly, None,
                     {"blocks": [10] * 10, "disturbed": [False] * 10, "block_process": [0] * 10})
    assert float(np.median(partly)) > 1.5  # the plain median is the slow stretch's
    assert quiet_figure(one) == pytest.approx(np.percentile(partly, quiet))
    assert quiet_figure(one) < 1.04


def test_a_cell_run_in_several_sessions_is_read_at_their_geometric_mean(tmp_path: Path) -> None:
    """Two runs of a kernel on the same machine and library versions are two draws of the
    host's state: the predictor reads the cell at their geometric mean. A run on another
    machine, or with another torch, is not mixed in: the latest session's provenance decides."""
    from harness.predict.dataset import measured

    spec = "kernel:cin=8,res=8"
    runs = [("20260101T000000-aaaa0000", "m1", "2.12.0", 9.0),  # another torch: left out
            ("20260102T000000-bbbb0000", "m2", "2.13.0", 7.0),  # another machine: left out
            ("20260103T000000-cccc0000", "m1", "2.13.0", 1.0),
            ("20260104T000000-dddd0000", "m1", "2.13.0", 4.0)]
    path = tmp_path / "k.sqlite"
    with Store.open(path) as s:
        for i, (sid, machine, torch_version, ms) in enumerate(runs):
            s.begin_session(SessionInfo(id=sid, started=1.7e9 + i, machine_id=machine))
            s.put_cell(sid, CellResult(CellKey(spec, "torch", "f32", 1), DONE,
                                       samples_ms=[ms] * 20,
                                       meta={"properties": {"torch_version": torch_version}}))
    assert measured(path, kernels_only=True)[("f32", 1)]["torch"][spec] == pytest.approx(2.0)
    with Store.open(path) as s:  # a newer torch: only its own run counts
        s.begin_session(SessionInfo(id="20260105T000000-eeee0000", started=1.8e9, machine_id="m1"))
        s.put_cell("20260105T000000-eeee0000", CellResult(
            CellKey(spec, "torch", "f32", 1), DONE, samples_ms=[3.0] * 20,
            meta={"properties": {"torch_version": "2.14.0"}}))
    assert measured(path, kernels_only=True)[("f32", 1)]["torch"][spec] == pytest.approx(3.0)


def test_repeatability_is_the_best_score_a_perfect_predictor_could_get(tmp_path: Path) -> None:
    """``score`` states the best score the measurements allow: each session's figure against
    the geometric mean of the others (leave one out), rescaled to a perfect predictor's error
    against one session (sqrt((n-1)/n)) and against the mean of the n sessions (sqrt(n-1)/n),
    per backend and for the speed-up. Three sessions of one network: PyTorch 1, 1, 1.2 ms,
    OpenVINO 0.5 ms each time; a throughput cell of the same network is not read."""
    from harness.predict.dataset import runs
    from harness.predict.predictor import repeatability

    spec = "plain:depth=1,width=8,res=32"
    path = tmp_path / "s.sqlite"
    with Store.open(path) as s:
        for i, torch_ms in enumerate((1.0, 1.0, 1.2)):
            sid = f"2026010{i + 1}T000000-aaaa000{i}"
            s.begin_session(SessionInfo(id=sid, started=1.7e9 + i, machine_id="m1"))
            for backend, ms in (("torch", torch_ms), ("openvino:CPU", 0.5)):
                s.put_cell(sid, CellResult(CellKey(spec, backend, "f32", 1), DONE,
                                           samples_ms=[ms] * 20, meta={}))
            s.put_cell(sid, CellResult(CellKey(spec, "torch", "f32", 1, scenario="throughput"),
                                       DONE, samples_ms=[50.0] * 20, meta={}))
    sessions = runs(path, kernels_only=False)[("f32", 1)]
    assert sorted(sessions["torch"][spec].values()) == pytest.approx([1.0, 1.0, 1.2])
    got = repeatability(sessions, "torch")
    assert got["sessions"] == [3]
    # by hand, log scale: the sessions' mean lies log(1.2)/3 above the two 1 ms sessions and
    # 2 log(1.2)/3 below the 1.2 ms one; a perfect predictor's error against one session is
    # that times sqrt(3/2), against the mean of three, times 1/sqrt(2)
    r = np.array([np.log(1.2) / 3, np.log(1.2) / 3, -2 * np.log(1.2) / 3])
    for field, scale in (("one_session", np.sqrt(3 / 2)), ("mean_of_sessions", 1 / np.sqrt(2))):
        e = np.expm1(r * scale)
        st = got["torch"][field]
        assert st["n"] == 3
        assert st["rmspe"] == pytest.approx(np.sqrt(np.mean(e ** 2)))
        assert st["within_10"] == pytest.approx(np.mean(np.abs(e) <= 0.10))
        assert got["openvino:CPU"][field]["rmspe"] == pytest.approx(0.0)
        # OpenVINO steady: each session's speed-up moves as its PyTorch time does
        assert got["speedup openvino:CPU/torch"][field] == pytest.approx(st)
    # against one session, the 20% session misses ±10%; against the mean of three it does not
    assert got["torch"]["one_session"]["within_10"] == pytest.approx(2 / 3)
    assert got["torch"]["mean_of_sessions"]["within_10"] == 1.0
    one = {b: {spec: dict(list(per[spec].items())[:1])} for b, per in sessions.items()}
    assert repeatability(one, "torch") == {}  # one session: nothing to compare


def test_repeatability_recovers_a_known_session_error() -> None:
    """Simulated: 2000 networks, each measured in four sessions whose log figures scatter by a
    known σ = 5% around the truth. A perfect predictor of the truth is off by σ against one
    session and by σ/2 against the mean of four; ``repeatability`` must say so from the
    sessions alone (its RMSPE is the root mean square of expm1 of the log error)."""
    from harness.predict.predictor import repeatability

    rng = np.random.default_rng(26)
    sigma, n = 0.05, 4
    truth = rng.uniform(-1, 3, 2000)
    sessions = {"torch": {f"net{i}": {f"s{k}": float(np.exp(t + rng.normal(0, sigma)))
                                      for k in range(n)} for i, t in enumerate(truth)}}
    got = repeatability(sessions, "torch")["torch"]

    def rms(log_sd: float) -> float:  # expected RMSPE of a normal log error with that sd
        return float(np.sqrt(np.mean(np.expm1(rng.normal(0, log_sd, 200_000)) ** 2)))

    assert got["one_session"]["rmspe"] == pytest.approx(rms(sigma), rel=0.03)
    assert got["mean_of_sessions"]["rmspe"] == pytest.approx(rms(sigma / np.sqrt(n)), rel=0.03)
