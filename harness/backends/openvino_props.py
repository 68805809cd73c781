"""Reading OpenVINO's properties: devices for the machine fingerprint, a compiled model's
resolved settings for a cell, both as plain JSON.

Why a module of its own: OpenVINO returns enums, ``ov.Type`` objects, sets and nested maps, and
properties a device lacks raise; turning them into stored JSON is one concern, apart from
converting and timing models (``openvino_backend``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

# Compiled-model properties worth keeping with a cell (those a device lacks are left out).
READ_BACK = (
    "EXECUTION_DEVICES", "PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS",
    "INFERENCE_PRECISION_HINT", "EXECUTION_MODE_HINT", "ENABLE_CPU_PINNING",
    "ENABLE_HYPER_THREADING", "SCHEDULING_CORE_TYPE", "ENABLE_CPU_RESERVATION",
    "CPU_DENORMALS_OPTIMIZATION", "MODEL_DISTRIBUTION_POLICY", "OPTIMAL_NUMBER_OF_INFER_REQUESTS",
    "PERFORMANCE_HINT_NUM_REQUESTS", "MULTI_DEVICE_PRIORITIES", "LOADED_FROM_CACHE",
    "CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE",
)


def openvino_devices() -> tuple[list[dict[str, Any]], str | None]:
    """Every device OpenVINO sees, with its full name; a broken plugin gives ``([], why)``."""
    try:
        import openvino as ov

        core = ov.Core()
        devices = []
        for name in core.available_devices:
            entry: dict[str, Any] = {"name": name}
            for key, prop in (("full_name", "FULL_DEVICE_NAME"),
                              ("capabilities", "OPTIMIZATION_CAPABILITIES")):
                try:
                    value = core.get_property(name, prop)
                    entry[key] = list(value) if isinstance(value, (list, tuple)) else str(value)
                except Exception as exc:  # noqa: BLE001 - a property a plugin lacks is a note
                    entry[f"{key}_error"] = str(exc)
            devices.append(entry)
        return devices, None
    except Exception as exc:  # noqa: BLE001 - never let a plugin crash the fingerprint
        return [], f"{type(exc).__name__}: {exc}"


def read_properties(cm: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    supported = cm.get_property("SUPPORTED_PROPERTIES")
    out = {}
    for key in keys:
        if key in supported:
            try:
                out[key] = plain(cm.get_property(key))
            except Exception:
                continue
    return out


def plain(value: Any) -> Any:
    """JSON-ready form of an OpenVINO property value (types, enums, sets, nested dicts)."""
    import openvino as ov

    if isinstance(value, ov.Type):
        return value.get_type_name()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else str(value)


def effective_precision(props: dict[str, Any]) -> str | None:
    """The inference precision the (first) execution device resolved to."""
    if "INFERENCE_PRECISION_HINT" in props:
        return props["INFERENCE_PRECISION_HINT"]
    per_device = props.get("DEVICE_PROPERTIES") or {}
    for dev in props.get("EXECUTION_DEVICES") or list(per_device):
        hint = per_device.get(dev, {}).get("INFERENCE_PRECISION_HINT")
        if hint:
            return hint
    return None


def runtime_precisions(cm: Any) -> dict[str, int]:
    """Layers of the executed graph by the precision they run in: what really ran."""
    counts: Counter[str] = Counter()
    try:
        for op in cm.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            if info["layerType"].astype(str) in ("Input", "Output", "Const"):
                continue
            counts[info["runtimePrecision"].astype(str)] += 1
    except Exception:  # virtual devices may not expose a runtime model
        return {}
    return dict(counts)


def fully_connected_kernels(cm: Any) -> dict[str, int]:
    """The kernels OpenVINO picked for the executed graph's FullyConnected layers, counted.

    Why: setting ``CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE`` only says OpenVINO *may* pack sparse
    weights; the kernel name (``..._sparse`` where it did) says whether it did on this CPU.
    """
    counts: Counter[str] = Counter()
    try:
        for op in cm.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            if info["layerType"].astype(str) == "FullyConnected":
                counts[info["primitiveType"].astype(str)] += 1
    except Exception:  # virtual devices may not expose a runtime model
        return {}
    return dict(counts)
