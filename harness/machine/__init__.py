"""The machine a session ran on: who it is and what it can reach.

``fingerprint`` is its identity (CPU, ISA, caches, memory, versions), stored with every session
so results from different machines never merge by accident; ``peak`` measures its limits (GEMM
GFLOP/s per backend, triad bandwidth), the roofs a roofline places cells under.
"""
