"""The session report's figures that are not tied to one topic: each ``plot_x(report, path)``.

``core`` holds the drawing rules every figure follows (``COLORS``, ``text`` for literal labels,
``footer``: where the numbers come from, ``save``) and the core sections' figures (speed-ups,
latency against FLOPs); ``study`` holds the study's figures (speed-up against depth/width per
pattern, working set, overlap); ``throughput`` images/s against batch with the knee. A figure that belongs to one topic's computation lives with it
(``reports.ladder``, ``reports.layers``, ``reports.roofline``). Each returns the written path, or
None when there is nothing to plot; sections wrap it in a ``reports.document.Figure``.
"""
