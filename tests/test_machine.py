"""harness.machine.fingerprint: the fingerprint's shape, a stable id, and the parsers behind it."""

from __future__ import annotations

import json

import pytest

from harness.backends.openvino_backend import OpenVINOBackend
from harness.backends.openvino_props import openvino_devices
from harness.counters import SOURCES
from harness.machine import fingerprint as machine


@pytest.fixture(scope="module")
def fp():
    return machine.fingerprint()


def test_keys_and_types(fp):
    assert set(fp) >= {"id", "hostname", "cpu", "isa", "caches", "memory_bytes", "os", "versions",
                       "openvino_devices", "torch", "counters"}
    assert isinstance(fp["id"], str) and len(fp["id"]) == 12
    cpu = fp["cpu"]
    assert isinstance(cpu["brand_raw"], str) and cpu["brand_raw"]
    assert isinstance(cpu["count"], int) and cpu["count"] >= 1
    assert cpu["physical_cores"] is None or 1 <= cpu["physical_cores"] <= cpu["count"]
    assert isinstance(cpu["flags"], list) and all(isinstance(f, str) for f in cpu["flags"])
    assert all(isinstance(v, bool) for v in fp["isa"].values())
    assert {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni"} <= set(fp["isa"])
    assert set(fp["caches"]) >= {"l1d", "l2", "l3", "source"}
    assert fp["caches"]["source"] in ("sysfs", "py-cpuinfo", "unknown")
    for key in ("l1d", "l2", "l3"):
        assert fp["caches"][key] is None or fp["caches"][key] > 0
    assert set(fp["os"]) == {"system", "release", "machine", "python"}
    # the runtimes extra's versions are recorded too (None where a package is absent)
    assert set(fp["versions"]) == {"accelbench", "torch", "openvino", "numpy", "torchao", "nncf",
                                   "onnxruntime", "onnxscript", "onnx"}
    assert fp["versions"]["torch"]
    assert set(fp["torch"]) == {"cuda_available", "num_threads", "mkldnn"}
    assert isinstance(fp["openvino_devices"], list)
    for device in fp["openvino_devices"]:
        assert isinstance(device["name"], str)
    assert set(fp["counters"]) == set(SOURCES)
    for entry in fp["counters"].values():
        assert isinstance(entry["ok"], bool) and isinstance(entry["why"], str) and entry["why"]
    assert fp["counters"]["model"]["ok"] is True
    assert json.loads(json.dumps(fp)) == fp


def test_id_is_stable_and_copies_are_independent(fp):
    again = machine.fingerprint()
    assert again == fp and again["id"] == fp["id"]
    again["cpu"]["flags"].clear()
    again["id"] = "changed"
    assert machine.fingerprint()["id"] == fp["id"]
    assert machine.fingerprint()["cpu"]["flags"] == fp["cpu"]["flags"]


def test_id_depends_on_each_hardware_field():
    caches = {"l1d": 32768, "l2": 1 << 20, "l3": 32 << 20}
    base = machine.machine_id("host", "CPU X", 8, caches, 16 << 30)
    assert base == machine.machine_id("host", "CPU X", 8, dict(caches), (16 << 30) + (5 << 20))
    others = {
        machine.machine_id("other", "CPU X", 8, caches, 16 << 30),
        machine.machine_id("host", "CPU Y", 8, caches, 16 << 30),
        machine.machine_id("host", "CPU X", 4, caches, 16 << 30),
        machine.machine_id("host", "CPU X", 8, {**caches, "l3": 16 << 20}, 16 << 30),
        machine.machine_id("host", "CPU X", 8, caches, 32 << 30),
    }
    assert base not in others and len(others) == 5


def test_isa_flags_consistent_with_flag_list(fp):
    have = {f.replace("_", "") for f in fp["cpu"]["flags"]}
    for name, value in fp["isa"].items():
        assert value == (name.replace("_", "") in have), name


def test_isa_accepts_both_spellings():
    flags = machine.isa(["avx2", "avx512vnni", "amx_bf16"])
    assert flags["avx2"] and flags["avx512_vnni"] and flags["amx_bf16"]
    assert not flags["avx512f"] and not flags["amx_tile"]


def _cache_dir(root, index, level, kind, size, ways=None, line=None):
    d = root / f"index{index}"
    d.mkdir()
    (d / "level").write_text(f"{level}\n")
    (d / "type").write_text(f"{kind}\n")
    (d / "size").write_text(f"{size}\n")
    if ways:
        (d / "ways_of_associativity").write_text(f"{ways}\n")
    if line:
        (d / "coherency_line_size").write_text(f"{line}\n")


def test_read_sysfs_caches(tmp_path):
    _cache_dir(tmp_path, 0, 1, "Data", "48K", 12, 64)
    _cache_dir(tmp_path, 1, 1, "Instruction", "32K", 8, 64)
    _cache_dir(tmp_path, 2, 2, "Unified", "2048K", 16, 64)
    _cache_dir(tmp_path, 3, 3, "Unified", "105M")
    sizes, geometry = machine.read_sysfs_caches(tmp_path)
    assert sizes == {"l1d": 48 << 10, "l2": 2 << 20, "l3": 105 << 20}
    assert geometry["l1d"] == {"size": 48 << 10, "ways": 12, "line": 64}
    assert geometry["l3"] == {"size": 105 << 20}


def test_read_sysfs_caches_missing_dir(tmp_path):
    assert machine.read_sysfs_caches(tmp_path / "nope") == ({"l1d": None, "l2": None, "l3": None}, {})


@pytest.mark.parametrize("text,expected", [
    ("32K", 32768), ("32768K", 32 << 20), ("1M", 1 << 20), ("512 KiB", 512 << 10), ("65536", 65536),
])
def test_parse_size(text, expected):
    assert machine.parse_size(text) == expected


def test_parse_size_rejects_garbage():
    with pytest.raises(ValueError):
        machine.parse_size("lots")


def test_cpuinfo_fallback():
    caches = machine.cpuinfo_caches({"l1_data_cache_size": 32768, "l2_cache_size": "1 MiB"})
    assert caches == {"source": "py-cpuinfo", "l1d": 32768, "l2": 1 << 20, "l3": None}
    assert machine.cpuinfo_caches({})["source"] == "unknown"


def test_broken_openvino_plugin_is_a_note_not_a_crash(monkeypatch):
    import openvino

    def boom(*args, **kwargs):
        raise RuntimeError("plugin exploded")

    monkeypatch.setattr(openvino, "Core", boom)
    devices, error = openvino_devices()
    assert devices == [] and "plugin exploded" in error
    info = OpenVINOBackend.machine_info()  # what the fingerprint records from it
    assert info["openvino_devices"] == [] and "plugin exploded" in info["openvino_error"]


def test_openvino_devices_have_full_names():
    devices, error = openvino_devices()
    if error:
        pytest.skip(f"OpenVINO unavailable here: {error}")
    assert any(d["name"].startswith("CPU") for d in devices)
    for d in devices:
        assert isinstance(d.get("full_name"), str) and d["full_name"]
