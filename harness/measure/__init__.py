"""Measurements and what is derived from them.

A measurement (``results``) is a cell's identity (network, backend, precision, threads, batch),
its raw latency samples with the timed blocks they came in, and metadata (machine, versions,
faults). Nothing derived is stored as the truth: ``stats`` computes medians, speed-ups and
their intervals from the raw samples whenever they are asked for, and ``parity`` decides from a
cell's recorded outputs whether two backends computed the same function. A better estimator
later therefore re-reads old stores correctly.

What varies where: ``nested`` makes intervals over processes, blocks and iterations (a
hierarchical bootstrap), and ``estimate`` reads a cell's figures through it (one-process
cells, from older stores, keep their old interval and a note).
"""
