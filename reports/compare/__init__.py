"""Comparing sessions (across machines or runs), a product of its own beside the session report.

``analysis`` joins sessions on cell identity and gives each latency and speed-up ratio a
bootstrap interval (``build_comparison``); ``gates`` turns a comparison into pass/fail rules in
pytest-benchmark's style (``Rule``, ``regressions``); ``render`` writes it as Markdown, a
self-contained HTML page and a bar chart. A new kind of comparison figure or table goes in
``render``; a new gate in ``gates``. Nothing here opens a store: ``accelbench compare`` reads the
sessions and passes ``analysis.Source`` values in.
"""
