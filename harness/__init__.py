"""The timing harness: sessions, worker processes, backends, the store.

Knows nothing about specific architectures; ``archs`` builds them and ``reports`` explains them.

OpenVINO's usage telemetry is kept out of every process that imports the harness (workers,
the coordinator, ``accelbench peak``). Why: ``ov.convert_model``, NNCF and the OpenVINO
``torch.compile`` backend send it unless the user opted out, from threads that start fresh
Python processes *after* the call returns — on two cores they took 1-1.7 cores during the
first pass of every cell (its IR was converted there) and made that process's latencies 2-4x
slower, which was most of the "process-level" spread of the third wave's first A/A runs.
A measurement tool must not run background work beside its timed blocks, nor phone home. Both
libraries fall back to their own no-op stubs when the package cannot be imported, which is
what ``None`` in ``sys.modules`` makes ``import openvino_telemetry`` do. Set
``ACCELBENCH_OPENVINO_TELEMETRY=1`` to leave it alone.
"""

import os
import sys
from importlib import metadata

if os.environ.get("ACCELBENCH_OPENVINO_TELEMETRY", "0") != "1":
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]

try:
    __version__ = metadata.version("accelbench")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"
