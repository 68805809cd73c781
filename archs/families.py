"""Imports every built-in family module so their ``@register`` decorators run."""

from . import darts, mlp, mobilenetv2, overlap, patterns, resnet  # noqa: F401
