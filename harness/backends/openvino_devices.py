"""OpenVINO's device grammar: ``CPU``, ``GPU.1``, and the virtual devices that place work on
others (``HETERO:GPU,CPU``, ``AUTO``). Checked when a backend string is parsed, so a bad device
is a usage error before any model is built."""

from __future__ import annotations

import re

from harness.backends.errors import BackendError

_PHYSICAL = re.compile(r"^[A-Z][A-Z0-9_]*(\.\d+)?$")
VIRTUAL = ("AUTO", "HETERO", "MULTI", "BATCH")  # devices that place work on other devices

def split_device(device: str) -> tuple[str | None, list[str]]:
    """``"HETERO:GPU,CPU"`` -> ``("HETERO", ["GPU", "CPU"])``; ``"CPU"`` -> ``(None, ["CPU"])``."""
    head, sep, rest = device.partition(":")
    if head in VIRTUAL:
        targets = rest.split(",") if sep else []
        if head != "AUTO" and not targets:
            raise BackendError(f"OpenVINO device {head} needs a device list, e.g. {head}:GPU,CPU")
    elif sep or "," in device:
        raise BackendError(
            f"OpenVINO device {device!r}: a device list is only valid after {', '.join(VIRTUAL)}"
        )
    else:
        targets = [device]
    for t in targets:
        if not _PHYSICAL.match(t):
            raise BackendError(f"OpenVINO device {t!r} in {device!r}: expected a name like CPU, GPU.1")
    return (head if head in VIRTUAL else None), targets


def present(device: str, available: list[str]) -> bool:
    """``GPU`` is present when ``GPU`` or any ``GPU.N`` is listed; ``GPU.1`` only as itself."""
    return device in available or ("." not in device and any(
        a.split(".")[0] == device for a in available))
