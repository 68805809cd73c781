"""What a cell measures (``--scenario``), the one list every layer reads.

``latency``: single-stream latency, one request at a time (MLPerf's SingleStream).
``throughput``: as many images per second as the backend finishes with requests in flight
(MLPerf's Offline; OpenVINO's THROUGHPUT hint). Both keep raw wall times as samples; a
throughput cell's ``meta["images_per_sample"]`` says how many images each sample finished
(``harness.measure.estimate.per_image``).
"""

LATENCY, THROUGHPUT = "latency", "throughput"
SCENARIOS = (LATENCY, THROUGHPUT)
