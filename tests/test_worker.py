"""Worker processes for real: the protocol, parity across backends, crashes, hangs, and the
loader for a user's own model file."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from archs import SpecError
from archs.custom import load_model
from harness.backends import BackendError
from harness.run.client import WorkerClient, WorkerCrashed, WorkerError, WorkerTimeout

TINY = """
import torch
def make():
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                            torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                            torch.nn.Linear(8, 4))
    return m.train(), torch.randn(1, 3, 16, 16)
"""

# Forwards that misbehave inside the worker, at the first inference of setup.
MISBEHAVING = """
import os, signal, sys, time, torch
MARK = {mark!r}
class Act(torch.nn.Module):
    def __init__(self, what):
        super().__init__()
        self.what = what
    def forward(self, x):
        if self.what == "text":
            return "not a tensor"
        open(MARK, "w").close()
        if self.what == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        if self.what == "selfkill":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(120)
def text(): return Act("text"), torch.zeros(1, 3)
def segv(): return Act("segv"), torch.zeros(1, 3)
def selfkill(): return Act("selfkill"), torch.zeros(1, 3)
def sleep(): return Act("sleep"), torch.zeros(1, 3)
def noisy():
    print("chatter on stdout")
    sys.stdout.flush()
    os.write(1, b"raw bytes on fd 1\\n")
    return torch.nn.Identity(), torch.ones(1, 3)
"""

SETUP = {"op": "setup", "spec": None, "seed": 0, "precision": "f32", "threads": 1,
         "ir_key": "", "cache_dir": None}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    (d / "tiny.py").write_text(TINY)
    (d / "bad.py").write_text(MISBEHAVING.format(mark=str(d / "reached")))
    return {"tiny": d / "tiny.py", "bad": d / "bad.py", "mark": d / "reached", "dir": d}


def setup_msg(ref: str, **extra) -> dict:
    return {**SETUP, "model": ref, **extra}


@pytest.fixture(scope="module")
def torch_worker():
    with WorkerClient("torch", 1) as client:
        yield client


@pytest.fixture(scope="module")
def ov_worker():
    with WorkerClient("openvino", 1) as client:
        yield client


# -- archs.custom -----------------------------------------------------------------------------

def test_load_model_returns_eval_module_and_input(files):
    model, x = load_model(f"{files['tiny']}:make")
    assert isinstance(model, torch.nn.Module) and not model.training
    assert tuple(x.shape) == (1, 3, 16, 16)
    again, x2 = load_model(f"{files['tiny']}:make")
    torch.testing.assert_close(x, x2)  # seeded: the same weights and input every time
    torch.testing.assert_close(model[0].weight, again[0].weight)


@pytest.mark.parametrize("ref, needle", [
    ("no_colon.py", "expected path/to/file.py:factory"),
    ("{dir}/tiny.txt:make", "is not a .py file"),
    ("{dir}/tiny.py:make-it", "is not a Python function name"),
    ("{dir}/missing.py:make", "no such file"),
    ("{dir}/tiny.py:absent", "defines no function 'absent'"),
    ("{dir}/raises.py:make", "make() raised ValueError: my factory broke"),
    ("{dir}/syntax.py:make", "importing syntax.py failed: SyntaxError"),
    ("{dir}/single.py:make", "must return (nn.Module, Tensor), got Linear"),
    ("{dir}/swapped.py:make", "returned Tensor where an nn.Module belongs"),
])
def test_load_model_refuses_with_a_reason(files, ref, needle):
    d = files["dir"]
    (d / "raises.py").write_text("def make():\n    raise ValueError('my factory broke')\n")
    (d / "syntax.py").write_text("def make(:\n")
    (d / "single.py").write_text("import torch\ndef make():\n    return torch.nn.Linear(2, 2)\n")
    (d / "swapped.py").write_text(
        "import torch\ndef make():\n    return torch.zeros(1), torch.nn.Linear(2, 2)\n")
    with pytest.raises(SpecError) as err:
        load_model(ref.format(dir=d))
    assert needle in str(err.value)
    assert "Traceback" not in str(err.value)


# -- a real worker on each backend --------------------------------------------------------------

def test_workers_agree_on_the_same_model(files, tmp_path, torch_worker, ov_worker):
    outputs = {}
    for client in (torch_worker, ov_worker):
        reply = client.request(setup_msg(f"{files['tiny']}:make"), timeout=180)
        info = reply["info"]
        assert reply["available"] is True and info["backend"] == client.backend
        assert info["first_ms"] > 0 and info["precision_effective"] == "f32"
        # the thread count asked for (WorkerClient(backend, 1)), set before the library loaded
        assert info["env_threads"] == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                       "OPENBLAS_NUM_THREADS": "1"}
        samples = client.request({"op": "time", "n": 7}, timeout=60)["samples_ms"]
        assert len(samples) == 7 and all(s > 0 for s in samples)
        path = tmp_path / f"{client.pid}.npy"
        answer = client.request({"op": "output", "path": str(path)}, timeout=60)
        assert answer["finite"] is True and answer["shape"] == [1, 4]
        outputs[client.backend] = np.load(path, allow_pickle=False)
        stats = client.request({"op": "stats"}, timeout=30)
        assert stats["pid"] == client.pid and stats["max_rss_bytes"] > 10 * 2**20
        # over the 7 counted inferences: a tiny model, warm, reuses its pages (see the test below
        # for one that faults)
        assert 0 <= stats["minor_faults_per_inference"] < 64
        assert info["allocator"]["policy"] == "fixed thresholds (accelbench)"
        assert info["allocator"]["MALLOC_TRIM_THRESHOLD_"] == str(4 * 2**30)
    ref, out = outputs["torch"], outputs["openvino:CPU"]
    assert out.dtype == np.float32
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 1e-4


FAULTING = """
import mmap, torch
PAGES = 1024
class FreshPages(torch.nn.Module):
    # each call maps 1024 fresh anonymous pages (huge pages off) and writes one byte in each:
    # at least 1024 minor faults per inference, whatever the allocator does
    def forward(self, x):
        size = PAGES * mmap.PAGESIZE
        m = mmap.mmap(-1, size)
        if hasattr(m, "madvise") and hasattr(mmap, "MADV_NOHUGEPAGE"):
            m.madvise(mmap.MADV_NOHUGEPAGE)
        for i in range(0, size, mmap.PAGESIZE):
            m[i] = 1
        m.close()
        return x + 1
def make(): return FreshPages(), torch.zeros(1, 3)
"""


def test_minor_faults_count_fresh_pages_per_inference(tmp_path, torch_worker):
    (tmp_path / "faulting.py").write_text(FAULTING)
    torch_worker.request(setup_msg(f"{tmp_path / 'faulting.py'}:make"), timeout=180)
    torch_worker.request({"op": "time", "n": 5}, timeout=60)
    torch_worker.request({"op": "time", "n": 3, "count": False}, timeout=60)  # not counted
    faults = torch_worker.request({"op": "stats"}, timeout=30)["minor_faults_per_inference"]
    assert 1024 <= faults < 4 * 1024  # a counter stuck at 0, or per block not per call, fails


def test_openvino_worker_reuses_cached_ir(files, tmp_path, ov_worker):
    msg = setup_msg(f"{files['tiny']}:make", ir_key="tiny-0", cache_dir=str(tmp_path))
    first = ov_worker.request(msg, timeout=180)["info"]
    second = ov_worker.request(msg, timeout=180)["info"]
    assert first["ir_cache_hit"] is False and first["convert_s"] > 0
    assert second["ir_cache_hit"] is True and second["convert_s"] == 0.0
    assert second["properties"]["INFERENCE_NUM_THREADS"] == 1


def test_conversion_failure_is_a_readable_conversion_error(files, ov_worker):
    with pytest.raises(WorkerError) as err:
        ov_worker.request(setup_msg(f"{files['bad']}:text"), timeout=180)
    assert err.value.kind == "conversion"
    assert "OpenVINO conversion failed" in str(err.value)
    assert "Traceback" not in str(err.value) and len(str(err.value)) < 700
    # The worker survives a failed setup, with nothing set up.
    with pytest.raises(WorkerError) as err:
        ov_worker.request({"op": "time", "n": 1}, timeout=30)
    assert err.value.kind == "protocol"


def test_build_errors_and_bad_requests_are_reported(files, torch_worker):
    with pytest.raises(WorkerError) as err:
        torch_worker.request({**SETUP, "spec": "nosuchfamily:x=1", "model": None}, timeout=60)
    assert err.value.kind == "build" and "nosuchfamily" in str(err.value)
    with pytest.raises(WorkerError) as err:
        torch_worker.request(setup_msg(f"{files['tiny']}:absent"), timeout=60)
    assert err.value.kind == "build" and "absent" in str(err.value)
    for bad in ({"op": "fly"}, {"op": "time", "n": 0}, {"op": "output", "path": "x.pkl"},
                {**setup_msg(f"{files['tiny']}:make"), "precision": "fp8"}):
        with pytest.raises(WorkerError) as err:
            torch_worker.request(bad, timeout=60)
        assert err.value.kind == "protocol"
    assert torch_worker.request({"op": "stats"}, timeout=30)["ok"] is True


def test_prints_to_stdout_do_not_break_the_protocol(files, torch_worker):
    reply = torch_worker.request(setup_msg(f"{files['bad']}:noisy"), timeout=60)
    assert reply["ok"] is True
    assert "raw bytes on fd 1" in torch_worker.stderr_tail()


def test_missing_device_is_an_availability_error():
    import openvino as ov

    with WorkerClient("openvino:NPU", 1) as client:
        with pytest.raises(WorkerError) as err:
            client.request(setup_msg("unused.py:make"), timeout=120)
    assert err.value.kind == "availability"
    assert "NPU" in str(err.value) and all(d in str(err.value) for d in ov.Core().available_devices)


def test_bad_backend_fails_before_any_process():
    with pytest.raises(BackendError, match="registered"):
        WorkerClient("tensorrt", 1)


# -- crashes and hangs -----------------------------------------------------------------------

def test_segfault_mid_request_names_the_signal(files):
    with WorkerClient("torch", 1) as client:
        with pytest.raises(WorkerCrashed) as err:
            client.request(setup_msg(f"{files['bad']}:segv"), timeout=120)
        assert "SIGSEGV" in err.value.reason
        assert "Fatal Python error" in err.value.reason  # faulthandler's trace, from stderr
        with pytest.raises(WorkerCrashed):  # a dead worker stays dead
            client.request({"op": "stats"}, timeout=5)


def test_sigkill_from_outside_mid_request(files):
    files["mark"].unlink(missing_ok=True)
    with WorkerClient("torch", 1) as client:
        caught: list[BaseException] = []

        def ask() -> None:
            try:
                client.request(setup_msg(f"{files['bad']}:sleep"), timeout=120)
            except BaseException as exc:  # noqa: B036 - handed to the main thread
                caught.append(exc)

        thread = threading.Thread(target=ask)
        thread.start()
        deadline = time.monotonic() + 60
        while not files["mark"].exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert files["mark"].exists(), "the model never started running"
        os.kill(client.pid, signal.SIGKILL)  # what the OOM killer does
        thread.join(30)
    assert len(caught) == 1 and isinstance(caught[0], WorkerCrashed)
    assert "worker killed by SIGKILL (out of memory?)" in caught[0].reason


def test_hanging_request_times_out_and_kills_the_worker(files):
    with WorkerClient("torch", 1) as client:
        client.request({"op": "stats"}, timeout=120)  # started and imported
        t0 = time.monotonic()
        with pytest.raises(WorkerTimeout) as err:
            client.request(setup_msg(f"{files['bad']}:sleep"), timeout=3)
        assert err.value.seconds == 3
        assert time.monotonic() - t0 < 20
        assert client.proc.poll() == -signal.SIGKILL  # killed, not left sleeping
        with pytest.raises(WorkerCrashed):
            client.request({"op": "stats"}, timeout=5)


def test_worker_counts_only_the_counted_blocks(files, torch_worker):
    """The counters window opens after setup; blocks sent with count=False (warm-up) are not
    counted; ``op counters`` stops it and answers the source's figures with their source."""
    torch_worker.request(setup_msg(f"{files['tiny']}:make", counters="model"), timeout=180)
    torch_worker.request({"op": "time", "n": 3, "count": False}, timeout=60)
    torch_worker.request({"op": "time", "n": 5}, timeout=60)
    got = torch_worker.request({"op": "counters"}, timeout=120)["counters"]
    assert got["source"] == "model" and got["inferences_counted"] == 5
    assert got["arithmetic_intensity"] > 0 and "error" not in got
    assert torch_worker.request({"op": "counters"}, timeout=30)["counters"] is None  # stopped
    torch_worker.request(setup_msg(f"{files['tiny']}:make"), timeout=180)  # no counters asked
    assert torch_worker.request({"op": "counters"}, timeout=30)["counters"] is None


def test_a_side_given_the_pairs_profile_counts_from_it(files, torch_worker):
    """The pair's second side is sent the first side's profile (``known_profile``) and its
    counters read that one instead of profiling the model again (a second per model): a
    profile with every layer's working set doubled doubles the bytes the model counts."""
    own = torch_worker.request(setup_msg(f"{files['tiny']}:make", profile=True,
                                         counters="model"), timeout=180)["profile"]
    torch_worker.request({"op": "time", "n": 2}, timeout=60)
    base = torch_worker.request({"op": "counters"}, timeout=120)["counters"]
    doubled = {**own, "layers": [{**ly, "working_set_bytes": 2 * ly["working_set_bytes"]}
                                 for ly in own["layers"]]}
    reply = torch_worker.request(setup_msg(f"{files['tiny']}:make", counters="model",
                                           known_profile=doubled), timeout=180)
    assert reply["profile"] is None  # not profiled again
    torch_worker.request({"op": "time", "n": 2}, timeout=60)
    got = torch_worker.request({"op": "counters"}, timeout=120)["counters"]
    assert base["bytes_touched"] > 0
    assert got["bytes_touched"] == 2 * base["bytes_touched"]


def test_allocator_policy_fixed_by_default_and_the_users_choice_wins(monkeypatch):
    """Why fixed glibc thresholds: see harness.run.allocator (eager PyTorch bimodal by process)."""
    from harness.run import allocator as a

    assert a.worker_env({}) == a.FIXED
    assert a.worker_env({"ACCELBENCH_MALLOC": "default"}) == {}
    assert a.worker_env({"MALLOC_TRIM_THRESHOLD_": "0"}) == {}  # the user's setting stays
    assert a.worker_env({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}) == {}
    with pytest.raises(a.AllocatorPolicyError, match="valid: fixed, default"):
        a.worker_env({"ACCELBENCH_MALLOC": "jemalloc"})
    assert a.describe(a.FIXED)["policy"] == "fixed thresholds (accelbench)"
    assert a.describe({"ACCELBENCH_MALLOC": "default"})["policy"].startswith("glibc default")
    assert a.describe({})["policy"].startswith("glibc default")
    user = a.describe({"LD_PRELOAD": "libtcmalloc.so"})
    assert user["policy"] == "set by the user" and user["LD_PRELOAD"] == "libtcmalloc.so"


def test_worker_under_the_glibc_default_says_so(files, monkeypatch):
    monkeypatch.setenv("ACCELBENCH_MALLOC", "default")
    for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(k, raising=False)
    with WorkerClient("torch", 1) as client:
        info = client.request(setup_msg(f"{files['tiny']}:make"), timeout=180)["info"]
    assert info["allocator"]["policy"] == "glibc default (dynamic thresholds)"
    assert info["allocator"]["MALLOC_MMAP_THRESHOLD_"] is None


def test_a_long_fault_dump_keeps_the_line_that_names_the_fault() -> None:
    """A worker forked from the preloaded server dies with a deeper stack than a new
    interpreter: cut to its last lines, the dump lost "Fatal Python error: Segmentation fault"
    (CI, 2026-12-06). The first line stays, the stack is cut, the module list is left out."""
    from harness.run.client import _last_words

    frames = "\n".join(f'  File "/venv/torch/m{i}.py", line {i} in forward' for i in range(300))
    dump = ("warning: something earlier\nFatal Python error: Segmentation fault\n\n"
            f"Current thread 0x7f (most recent call first):\n{frames}\n"
            "Extension modules: numpy, torch._C\n")
    words = _last_words(dump)
    assert words.startswith("Fatal Python error: Segmentation fault\n...")
    assert words.endswith("line 299 in forward") and "Extension modules" not in words
    assert len(words) <= 1200 + len("\n...")
    assert _last_words("plain last words") == "plain last words"


def test_the_fork_server_preload_starts_no_thread_and_leaves_the_profile_nothing_to_import():
    """The fork server imports ``PRELOAD`` before forking workers: that must start no thread
    (a fork copies only the forking thread), freeze what it loaded (so a worker's garbage
    collections do not copy the shared pages), and cover what a cell's first pass
    imports when it profiles its model (torch's FlopCounterMode pulled in ~840 modules,
    1.5-2.1 s in every worker, before torch._dynamo was preloaded)."""
    import subprocess
    import sys

    code = ("import importlib, sys, threading\n"
            "from harness.run.forkserver import PRELOAD\n"
            "for m in PRELOAD: importlib.import_module(m)\n"
            "threads = threading.active_count()\n"
            "import gc; assert gc.get_freeze_count() > 0, 'preloaded objects not frozen'\n"
            "import archs\n"
            "from archs.profiling import profile_module\n"
            "model, x = archs.build('plain:depth=1,width=8,res=16')\n"
            "before = set(sys.modules)\n"
            "profile_module(model.eval(), x, 'p')\n"
            "print(threads, len(set(sys.modules) - before))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    threads, imported = int(out[-2]), int(out[-1])
    assert threads == 1
    assert imported < 40, f"the first profile still imported {imported} modules"
