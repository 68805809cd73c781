"""The session level in a prediction's interval: a predicted latency is checked against a
measurement taken in one session, and fitted on kernel cells taken in a few; on a shared machine
a whole session runs faster or slower than the next (issue 21's session level, measured by an
A/A run and kept with the machine: ``harness.machine.noise``). Each draw of a prediction is
multiplied by one session factor per backend, built from the machine's recorded standard
deviations (log scale) of a latency and of a speed-up between sessions:

* a part common to both backends, ``sqrt(latency² - own²)``, and one of each backend's own,
  ``own = speedup / sqrt(2)``, so that a latency moves by the latency's deviation and a speed-up
  (the ratio of two latencies of one session) by the speed-up's;
* scaled by ``sqrt(1 + 1/m)``: the measured network's session and the kernel cells' (each a
  geometric mean over ``m`` sessions) are independent draws of the same level.

Why: drawn from the kernel cells' scatter alone, OpenVINO's intervals (±15% at the median) held
77-86% of the quick sessions' measured networks once the aliased conversions were priced apart;
with the session level of this machine's A/A record (latency ±5.5%, speed-up ±3.4%; two kernel
runs), ±23-28%, holding 91-100% (Zen 4 VM, 2026-12-07). Without a record the term is left out
and the prediction says so: its interval then covers the model's error, not the machine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SessionLevel:
    latency_sd: float  # log-scale sd of a latency between sessions (the machine's A/A record)
    speedup_sd: float  # of a speed-up between sessions
    kernel_sessions: float  # sessions each kernel cell's figure is the geometric mean of
    recorded_at: float | None = None  # when the A/A run was recorded (epoch seconds)

    @property
    def scale(self) -> float:
        return float(np.sqrt(1.0 + 1.0 / max(self.kernel_sessions, 1.0)))

    def factors(self, backends: list[str], n: int, rng: np.random.Generator
                ) -> dict[str, np.ndarray]:
        """``n`` multiplicative session factors per backend, paired draw by draw. A record whose
        speed-up moved more than √2 times its latency (the two backends' sessions moving against
        each other) has no common part: each latency then moves by speedup_sd / √2, more than
        recorded."""
        own = self.speedup_sd / np.sqrt(2.0)
        common = np.sqrt(max(self.latency_sd ** 2 - own ** 2, 0.0))
        shared = rng.standard_normal(n)
        return {b: np.exp(self.scale * (common * shared + own * rng.standard_normal(n)))
                for b in backends}

    def as_json(self) -> dict[str, Any]:
        return {"latency_sd": self.latency_sd, "speedup_sd": self.speedup_sd,
                "kernel_sessions": self.kernel_sessions, "recorded_at": self.recorded_at}


def of_machine(machine_id: str | None, kernel_sessions: float) -> SessionLevel | None:
    """The machine's session level from its A/A record, or None when it has none (or only a
    latency's or only a speed-up's)."""
    from harness.machine import noise
    from harness.measure.session_level import terms_of

    record = noise.load(machine_id)  # one read: the terms and when they were recorded
    terms = terms_of(record)
    lat, su = terms.get("latency"), terms.get("speedup")
    if record is None or lat is None or su is None:
        return None
    return SessionLevel(float(lat.sd), float(su.sd), float(kernel_sessions),
                        record.get("measured_at"))


def describe(level: SessionLevel | None) -> dict[str, Any] | None:
    """What ``--json`` says of the session level an interval carries (None: none recorded)."""
    return level.as_json() if level is not None else None
