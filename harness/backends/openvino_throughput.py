"""OpenVINO's throughput mode: an ``AsyncInferQueue`` that keeps its requests in flight.

Why a queue and not a loop of synchronous calls: the THROUGHPUT hint splits the CPU into
streams, each running its own requests; one synchronous request at a time would leave all but
one stream idle and measure latency again. benchmark_app keeps ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``
requests in flight and reports frames per second over wall time; so does this module.

What a sample is: the wall time (ms) in which ``jobs`` requests completed, read between
consecutive groups of ``jobs`` completions while the queue is full. Every block submits one group
more than it reports, so the last reported group completes before the queue drains; the first
group starts from an idle queue and its end is only the first boundary. A sample is a real
stretch of wall time (block sizing and the budget read it as such); it finished
``images_per_sample = jobs x batch`` images, which is how reports turn it into images per second
(``harness.measure.estimate``).

The queue counts what it claims: requests in flight are counted up at ``start_async`` and down in
the completion callback, and ``in_flight`` reports the most seen and the time-weighted mean over
each block's full stretch (``tests/test_throughput.py`` checks both against ``jobs``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from harness.backends.base import Prepared


class ThroughputQueue:
    """``jobs`` inference requests on one compiled model, all reading the same input memory."""

    def __init__(self, compiled: Any, data: np.ndarray, jobs: int) -> None:
        import openvino as ov

        if jobs < 1:
            raise ValueError(f"jobs={jobs}: need at least one request")
        self.jobs = jobs
        self.data = data  # the input tensors share this memory
        self.queue = ov.AsyncInferQueue(compiled, jobs)
        for request in self.queue:
            request.set_input_tensor(ov.Tensor(data, shared_memory=True))
        self._lock = threading.Lock()
        self._done_ns: list[int] = []
        self._request_ms: list[float] = []
        self._flight = 0
        self._events: list[tuple[int, int]] = []  # (ns, requests in flight from then on)
        self.max_in_flight = 0
        self.request_ms: list[float] = []  # every timed request's own latency, in order
        self.flight_mean: list[float] = []  # per block: time-weighted requests in flight
        self.queue.set_callback(self._completed)

    def _account(self, now: int, delta: int) -> None:
        """Requests in flight change by ``delta`` at ``now``; caller holds the lock."""
        self._flight += delta
        self._events.append((now, self._flight))
        self.max_in_flight = max(self.max_in_flight, self._flight)

    def _mean_in_flight(self, lo: int, hi: int) -> float | None:
        """Time-weighted requests in flight between ``lo`` and ``hi`` (ns)."""
        if hi <= lo:
            return None
        area, level, at = 0.0, 0, lo
        for t, count in self._events:
            if t <= lo:
                level = count
                continue
            if t >= hi:
                break
            area += level * (t - at)
            at, level = t, count
        area += level * (hi - at)
        return area / (hi - lo)

    def _completed(self, request: Any, started_ns: int) -> None:
        now = time.perf_counter_ns()
        with self._lock:
            self._account(now, -1)
            self._done_ns.append(now)
            self._request_ms.append((now - started_ns) / 1e6)

    def run(self, requests: int) -> tuple[list[int], list[float]]:
        """Submit ``requests`` requests as fast as requests become idle (so ``jobs`` are in
        flight until the last submission) and wait for all; completion times (ns) in order and
        each request's latency (ms)."""
        with self._lock:
            self._done_ns, self._request_ms, self._events = [], [], []
        for _ in range(requests):
            self.queue.get_idle_request_id()  # blocks until a request is free
            with self._lock:
                now = time.perf_counter_ns()
                self._account(now, +1)
            self.queue.start_async(userdata=now)  # takes the idle request
        self.queue.wait_all()
        with self._lock:
            return sorted(self._done_ns), list(self._request_ms)

    def time_block(self, n: int) -> list[float]:
        """``n`` samples: the wall (ms) of each of ``n`` consecutive groups of ``jobs``
        completions, with one group more submitted so the queue stays full throughout."""
        if n < 1:
            raise ValueError(f"n={n}: need at least one sample")
        done, lat = self.run((n + 1) * self.jobs)
        self.request_ms.extend(lat)
        edges = done[self.jobs - 1::self.jobs][: n + 1]  # the completion that ends each group
        with self._lock:
            mean = self._mean_in_flight(edges[0], edges[-1])
        if mean is not None:
            self.flight_mean.append(mean)
        return [(b - a) / 1e6 for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def first_round_ms(self) -> float:
        """One group from an idle queue (the warm-up, never a sample), wall ms."""
        t0 = time.perf_counter_ns()
        self.run(self.jobs)
        return (time.perf_counter_ns() - t0) / 1e6

    def output(self) -> np.ndarray:
        request = self.queue[0]
        request.infer()
        return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)

    def in_flight(self) -> dict[str, Any]:
        """What the queue kept in flight: the most at once, and the time-weighted mean over
        the stretch each block's samples cover (the lowest block's too)."""
        means = self.flight_mean
        return {"jobs": self.jobs, "max": self.max_in_flight,
                "mean": float(np.mean(means)) if means else None,
                "mean_min": float(np.min(means)) if means else None}


def request_percentiles(latencies_ms: list[float]) -> dict[str, Any] | None:
    """p50/p90/p99 of per-request latencies (ms), benchmark_app's figures; None when none."""
    if not latencies_ms:
        return None
    p50, p90, p99 = np.percentile(np.asarray(latencies_ms, dtype=float), [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "n": len(latencies_ms)}


class OpenVINOThroughput(Prepared):
    """A compiled model in the throughput scenario: samples are the wall (ms) of each group of
    ``requests`` completions with the queue full (``ThroughputQueue.time_block``)."""

    def __init__(self, queue: Any, info: dict[str, Any], first_ms: float) -> None:
        self.queue, self.info, self.first_ms = queue, info, first_ms
        self.data = queue.data
        self.source: tuple[Any, Any, str, dict[str, Any]] | None = None

    def kernel_rows(self) -> list[dict[str, Any]] | None:
        from harness.backends.ov_layers import runtime_rows

        return runtime_rows(self.queue.queue[0].get_compiled_model())

    def layer_times(self, n: int) -> list[dict[str, Any]]:
        from harness.backends.ov_layers import layer_times

        if self.source is None:
            raise NotImplementedError("this prepared model keeps no source model to profile")
        return layer_times(*self.source, self.data, n)

    def time_block(self, n: int) -> list[float]:
        return self.queue.time_block(n)

    def output(self) -> np.ndarray:
        return self.queue.output()

    def outputs_for(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        saved = self.data.copy()
        outs = []
        try:
            for x in inputs:  # every request's input tensor shares ``data``'s memory
                self.data[...] = x
                outs.append(self.output())
        finally:
            self.data[...] = saved
        return outs

    def throughput_facts(self) -> dict[str, Any]:
        """Per-request latency percentiles and what the queue kept in flight (worker stats)."""
        return {"request_ms": request_percentiles(self.queue.request_ms),
                "in_flight": self.queue.in_flight()}
