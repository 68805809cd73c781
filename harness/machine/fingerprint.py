"""The machine fingerprint: what ran the benchmark, stored with every result.

Why: a speed-up is a property of a (network, runtime, machine) triple. Results from different
machines must never merge by accident, and a comparison across machines must be able to say
*what* differs (ISA extensions such as AVX-512/AMX decide which OpenVINO kernels exist, cache
sizes decide which layers spill to DRAM). pytest-benchmark's idea: the fingerprint goes into
every result file.

``id`` hashes only hardware identity (hostname, CPU brand, logical CPU count, cache sizes,
memory) so upgrading torch keeps the id while moving to another box changes it. The
microarchitecture (``harness.machine.microarch``, from CPUID family/model) joins the hash only when the
brand names no part (``AMD EPYC`` on a VM): there it is what tells a Zen 4 from a Zen 5 host,
while a brand with a part number already implies it, so every such machine keeps the id it
had before the microarchitecture was recorded (its stored sessions and peaks stay its own). Cache sizes
come from sysfs first (per-core L1d/L2, the L3 shared by cpu0): py-cpuinfo's figures are
sometimes summed over cores. ``fingerprint()`` is cached per process because py-cpuinfo takes
about a second.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import platform
import re
import socket
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.machine import microarch
from harness.machine.microarch import brand_is_ambiguous as _brand_is_ambiguous

SYSFS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")
ISA_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
)


def fingerprint() -> dict[str, Any]:
    """The fingerprint as plain JSON-able data; a fresh copy each call (callers may mutate it)."""
    return copy.deepcopy(_fingerprint())


@functools.cache
def _fingerprint() -> dict[str, Any]:
    info = _cpuinfo()
    flags = sorted(set(info.get("flags", [])) | set(_proc_flags()))
    caches, geometry = read_sysfs_caches(SYSFS_CACHE)
    if any(caches.get(k) for k in ("l1d", "l2", "l3")):
        caches["source"] = "sysfs"
    else:
        caches, geometry = cpuinfo_caches(info), {}
    memory = _memory_bytes()
    cpu = {
        "brand_raw": info.get("brand_raw") or platform.processor() or "unknown",
        "vendor": info.get("vendor_id_raw"),
        "arch": info.get("arch_string_raw") or platform.machine(),
        "count": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "hz": (info.get("hz_actual") or info.get("hz_advertised") or [None])[0],
        "family": info.get("family"),
        "model": info.get("model"),
        "stepping": info.get("stepping"),
        "flags": flags,
    }
    # The kernel's decoding of CPUID (extended family/model applied) where /proc has it.
    cpu.update({k: v for k, v in proc_cpuid(Path("/proc/cpuinfo")).items() if v is not None})
    arch = microarch.describe(cpu["vendor"], cpu["family"], cpu["model"], cpu["stepping"], flags)
    hostname = socket.gethostname()
    out: dict[str, Any] = {
        "id": machine_id(hostname, cpu["brand_raw"], cpu["count"], caches, memory,
                         microarch=arch["name"] if arch else None),
        "hostname": hostname,
        "cpu": cpu,
        "microarch": arch,
        "isa": isa(flags),
        "caches": caches,
        "cache_geometry": geometry,
        "memory_bytes": memory,
        "os": {"system": platform.system(), "release": platform.release(),
               "machine": platform.machine(), "python": platform.python_version()},
        "versions": _versions(),
    }
    # What each backend wants recorded (OpenVINO's devices, torch's build...), keys merged.
    from harness.backends import machine_info

    for key, value in machine_info().items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    from harness.counters import availability_report

    out["counters"] = availability_report()
    return out


def local_caches() -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """Cache sizes and geometry without the full fingerprint (py-cpuinfo costs a second): what a
    worker hands its counter source (``harness.counters``) for the cache geometry."""
    sizes, geometry = read_sysfs_caches(SYSFS_CACHE)
    if any(sizes.values()):
        return sizes, geometry
    fp = fingerprint()
    return fp["caches"], fp.get("cache_geometry") or {}


def machine_id(hostname: str, brand: str, logical: int | None, caches: dict[str, Any],
               memory_bytes: int | None, *, microarch: str | None = None) -> str:
    """12 hex digits of a hash of the hardware identity. Memory is rounded to whole GiB because
    the usable total shifts by megabytes with kernel versions and firmware reservations.

    ``microarch`` is hashed only when the brand is ambiguous (see the module docstring): the
    identity list of every other machine is exactly what it was, so its id does not change."""
    memory_gib = round(memory_bytes / 2**30) if memory_bytes else None
    identity = [hostname, brand, logical, [caches.get(k) for k in ("l1d", "l2", "l3")], memory_gib]
    if microarch and _brand_is_ambiguous(brand):
        identity.append({"microarch": microarch})
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]


def isa(flags: list[str]) -> dict[str, bool]:
    """The ISA extensions that decide kernels, by name; flag spellings differ between
    /proc/cpuinfo (``avx512_vnni``) and CPUID tools (``avx512vnni``), so underscores are ignored."""
    have = {f.replace("_", "").lower() for f in flags}
    return {name: name.replace("_", "") in have for name in ISA_FLAGS}


def read_sysfs_caches(root: Path) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """``({"l1d", "l2", "l3"}, geometry)`` from ``root/index*/``; sizes None where absent."""
    sizes: dict[str, Any] = {"l1d": None, "l2": None, "l3": None}
    geometry: dict[str, dict[str, int]] = {}
    for index in sorted(root.glob("index*")) if root.is_dir() else []:
        try:
            level = int(_read(index / "level"))
            kind = _read(index / "type")
            size = parse_size(_read(index / "size"))
        except (OSError, ValueError):
            continue
        if kind == "Instruction" or level not in (1, 2, 3):
            continue
        key = "l1d" if level == 1 else f"l{level}"
        sizes[key] = size
        geo = {"size": size}
        for name, file in (("ways", "ways_of_associativity"), ("line", "coherency_line_size")):
            try:
                geo[name] = int(_read(index / file))
            except (OSError, ValueError):
                pass
        geometry[key] = geo
    return sizes, geometry


def parse_size(text: str) -> int:
    """``"32K"``, ``"32768K"``, ``"1M"``, ``"512 KiB"``, ``"65536"`` -> bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"cache size {text!r}")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2).upper()]


def cpuinfo_caches(info: dict[str, Any]) -> dict[str, Any]:
    """The fallback: py-cpuinfo's sizes (ints, or text in older versions)."""
    out: dict[str, Any] = {"source": "py-cpuinfo"}
    for key, field in (("l1d", "l1_data_cache_size"), ("l2", "l2_cache_size"), ("l3", "l3_cache_size")):
        value = info.get(field)
        try:
            out[key] = value if isinstance(value, int) else parse_size(str(value)) if value else None
        except ValueError:
            out[key] = None
    if not any(out[k] for k in ("l1d", "l2", "l3")):
        out["source"] = "unknown"
    return out


def _cpuinfo() -> dict[str, Any]:
    try:
        import cpuinfo

        return cpuinfo.get_cpu_info()
    except Exception:  # noqa: BLE001 - fall back to platform and /proc
        return {}


def _proc_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line.split(":", 1)[1].split()
    except OSError:
        pass
    return []


def proc_cpuid(path: Path) -> dict[str, Any]:
    """``vendor``, ``family``, ``model``, ``stepping`` of the first CPU in /proc/cpuinfo."""
    fields = {"vendor_id": "vendor", "cpu family": "family", "model": "model",
              "stepping": "stepping"}
    out: dict[str, Any] = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.split("\n\n", 1)[0].splitlines():
        name, _, value = (p.strip() for p in line.partition(":"))
        if name in fields:
            out[fields[name]] = value if name == "vendor_id" else _int_or_none(value)
    return out


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _physical_cores() -> int | None:
    cores = set()
    for topo in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
        try:
            cores.add((_read(topo / "physical_package_id"), _read(topo / "core_id")))
        except OSError:
            continue
    return len(cores) or None


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("accelbench", "numpy"):  # each backend adds its runtime's (machine_info)
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _read(path: Path) -> str:
    return path.read_text().strip()
