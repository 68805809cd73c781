"""OpenVINO's usage telemetry stays out of every process that imports the harness.

It sent from threads that start new Python processes after ``ov.convert_model`` returned, and
those ran beside the first timed blocks of every cell (``harness/__init__.py`` says what it cost).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

pytest.importorskip("openvino")

PROBE = """
import harness
import openvino as ov
from openvino.tools.ovc import telemetry_utils
try:
    import openvino_telemetry
    blocked = False
except ImportError:
    blocked = True
print(blocked, telemetry_utils.tm.__name__)
"""


def _probe(**env: str) -> tuple[bool, str]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=120, env={**os.environ, **env}, check=True).stdout.split()
    return out[0] == "True", out[1]


def test_importing_the_harness_turns_openvino_telemetry_into_its_stub():
    blocked, module = _probe(ACCELBENCH_OPENVINO_TELEMETRY="0")
    assert blocked
    assert module == "openvino.tools.ovc.telemetry_stub"


def test_a_user_can_leave_openvino_telemetry_alone():
    try:
        metadata.version("openvino-telemetry")
    except metadata.PackageNotFoundError:
        pytest.skip("openvino-telemetry is not installed")
    blocked, module = _probe(ACCELBENCH_OPENVINO_TELEMETRY="1")
    assert not blocked
    assert module == "openvino_telemetry"


@pytest.mark.parametrize("telemetry", ["0", "1"])
def test_converting_a_model_starts_no_process(telemetry: str):
    """The behaviour that mattered: no child process outlives or follows the conversion."""
    code = """
import harness, multiprocessing.process, subprocess, time
started = []
for cls, name in ((multiprocessing.process.BaseProcess, "start"), (subprocess.Popen, "__init__")):
    def spy(self, *a, _orig=getattr(cls, name), **k):
        started.append(cls.__name__)
        return _orig(self, *a, **k)
    setattr(cls, name, spy)
import torch, openvino as ov
m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)).eval()
ov.convert_model(m, example_input=torch.randn(1, 3, 16, 16))
time.sleep(1.0)  # the telemetry threads start their processes after the call returns
print(len(started))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=180, env={**os.environ, "ACCELBENCH_OPENVINO_TELEMETRY": telemetry,
                                           "CI": "false"}, check=True)
    started = int(out.stdout.strip().splitlines()[-1])
    if telemetry == "0":
        assert started == 0, out.stdout + out.stderr
    else:  # the control: with telemetry left alone the same conversion does start processes
        consent = Path.home() / "intel" / "openvino_telemetry"
        if consent.is_file() and consent.read_text().strip().startswith("0"):
            pytest.skip(f"OpenVINO telemetry is opted out on this machine ({consent})")
        assert started > 0, "the probe no longer sees OpenVINO's telemetry processes"
