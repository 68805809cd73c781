"""accelbench inside pytest-benchmark's world, both directions.

``plugin`` is the ``accelbench`` pytest fixture (registered through the ``pytest11`` entry
point) that times a user's own model on each backend as pytest-benchmark entries; ``exchange``
reads and writes pytest-benchmark's JSON files, so sessions travel to and from its tooling.
"""
