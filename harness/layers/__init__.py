"""Per-layer timing joined across backends: which layer kinds earn a speed-up.

Why its own package: the joining is pure data work over the layer tables the workers send back
(``kinds`` names a unit's kind from its module type and shape, ``matching`` maps each backend's
primitives onto the model's modules, ``explain`` groups them into the per-kind table), so it is
testable without a backend; only ``units`` touches PyTorch, to list and time a model's modules.

A *unit* is what the PyTorch side can time on its own: a leaf module (``features.3.conv.0``) or
a functional op called in a non-leaf module's ``forward`` (``layer1.0::add`` for the residual
``out + identity``), so adds and concats that are not modules still have a torch-side time.
"""

from harness.layers.explain import Explanation, explain
from harness.layers.kinds import KINDS

__all__ = ["KINDS", "Explanation", "explain"]
