"""The CPU microarchitecture, named from the CPUID vendor, family and model.

Why: virtual machines often report a brand string that names no part ("AMD EPYC"), and this
project has run on a Zen 4 (family 25: AVX-512 on a 256-bit datapath) and a Zen 5 (family 26:
full-width AVX-512, about twice the GEMM roof) under that one name. The brand cannot tell them
apart; CPUID family and model can, and they survive the masking that hypervisors apply to the
brand. Two machines that differ here are never the same machine (see ``machine_id``).

Sources of the tables (each result records ``source``): AMD from the Linux kernel's
``arch/x86/kernel/cpu/amd.c`` (``bsp_init_amd``, the ranges that set ``X86_FEATURE_ZEN1..6``);
Intel from ``arch/x86/include/asm/intel-family.h`` (family 6 model numbers). A family/model not
in the tables is reported as unknown, never guessed.
"""

from __future__ import annotations

import re
from typing import Any

SOURCE = "CPUID vendor/family/model; tables after Linux arch/x86 (amd.c, intel-family.h)"

# (family, ((first model, last model), ...), name) - AMD ranges as the kernel sets its ZEN caps.
_AMD: tuple[tuple[int, tuple[tuple[int, int], ...], str], ...] = (
    (0x17, ((0x00, 0x2F), (0x50, 0x5F)), "Zen"),
    (0x17, ((0x30, 0x4F), (0x60, 0x7F), (0x90, 0x91), (0xA0, 0xAF)), "Zen 2"),
    (0x19, ((0x00, 0x0F), (0x20, 0x5F)), "Zen 3"),
    (0x19, ((0x10, 0x1F), (0x60, 0xAF)), "Zen 4"),
    (0x1A, ((0x00, 0x2F), (0x40, 0x4F), (0x60, 0x7F)), "Zen 5"),
    (0x1A, ((0x50, 0x5F), (0x80, 0xAF), (0xC0, 0xCF)), "Zen 6"),
)

# Intel family 6 model -> name (intel-family.h). Model 0x55 is split by stepping below.
_INTEL6: dict[int, str] = {
    0x3C: "Haswell", 0x3F: "Haswell-X", 0x45: "Haswell", 0x46: "Haswell",
    0x3D: "Broadwell", 0x47: "Broadwell", 0x4F: "Broadwell-X", 0x56: "Broadwell-D",
    0x4E: "Skylake", 0x5E: "Skylake", 0x8E: "Kaby Lake", 0x9E: "Coffee Lake",
    0xA5: "Comet Lake", 0xA6: "Comet Lake", 0xA7: "Rocket Lake",
    0x6A: "Ice Lake-X", 0x6C: "Ice Lake-D", 0x7D: "Ice Lake", 0x7E: "Ice Lake",
    0x8C: "Tiger Lake", 0x8D: "Tiger Lake",
    0x97: "Alder Lake", 0x9A: "Alder Lake", 0xB7: "Raptor Lake", 0xBA: "Raptor Lake",
    0xBF: "Raptor Lake", 0xAA: "Meteor Lake", 0xAC: "Meteor Lake", 0xBD: "Lunar Lake",
    0xC5: "Arrow Lake", 0xC6: "Arrow Lake",
    0x8F: "Sapphire Rapids", 0xCF: "Emerald Rapids", 0xAD: "Granite Rapids",
    0xAE: "Granite Rapids-D", 0xAF: "Sierra Forest", 0xB6: "Grand Ridge",
}


def _intel_0x55(stepping: int | None) -> str | None:
    """Skylake-SP, Cascade Lake and Cooper Lake share model 0x55; the stepping tells them apart."""
    if stepping is None:
        return None
    if stepping <= 4:
        return "Skylake-SP"
    if stepping <= 7:
        return "Cascade Lake"
    return "Cooper Lake" if stepping in (10, 11) else None


# Parts whose ISA contradicts a table's answer: a hypervisor may present a model number that is
# not the host's (a Xeon with AMX seen as family 6 model 0xA7, a client part). Such a name is
# withheld rather than shown wrong.
_AMX_PARTS = {"Sapphire Rapids", "Emerald Rapids", "Granite Rapids", "Granite Rapids-D"}
_NO_AVX512 = {"Zen", "Zen 2", "Zen 3", "Haswell", "Haswell-X", "Broadwell", "Broadwell-X",
              "Broadwell-D", "Skylake", "Kaby Lake", "Coffee Lake", "Comet Lake", "Alder Lake",
              "Raptor Lake", "Meteor Lake", "Arrow Lake", "Lunar Lake", "Sierra Forest",
              "Grand Ridge"}


def _table(vendor: str | None, family: int, model: int, stepping: int | None) -> str | None:
    v = (vendor or "").lower()
    if "amd" in v:
        for fam, ranges, label in _AMD:
            if fam == family and any(lo <= model <= hi for lo, hi in ranges):
                return label
        return None
    if "intel" in v and family == 6:
        return _intel_0x55(stepping) if model == 0x55 else _INTEL6.get(model)
    return None


def contradiction(label: str | None, flags: list[str] | None) -> str | None:
    """Why the ISA flags rule ``label`` out (None when they do not)."""
    have = {f.replace("_", "").lower() for f in flags or ()}
    if label is None or not have:
        return None
    if "amxtile" in have and label not in _AMX_PARTS and label in _INTEL6.values():
        return f"the CPU has AMX, which {label} lacks"
    if "avx512f" in have and label in _NO_AVX512:
        return f"the CPU has AVX-512, which {label} lacks"
    return None


def name(vendor: str | None, family: int | None, model: int | None,
         stepping: int | None = None, flags: list[str] | None = None) -> str | None:
    """The microarchitecture, or None where the tables do not know it or the ISA flags
    contradict them (a masked model number)."""
    if not isinstance(family, int) or not isinstance(model, int):
        return None
    label = _table(vendor, family, model, stepping)
    return None if contradiction(label, flags) else label


def describe(vendor: str | None, family: int | None, model: int | None,
             stepping: int | None = None, flags: list[str] | None = None) -> dict[str, Any] | None:
    """What the fingerprint records: the name with the figures it came from (None if no CPUID)."""
    if not isinstance(family, int) or not isinstance(model, int):
        return None
    out = {"name": name(vendor, family, model, stepping, flags), "vendor": vendor,
           "family": family, "model": model, "stepping": stepping, "source": SOURCE}
    why = contradiction(_table(vendor, family, model, stepping), flags)
    if why:
        out["note"] = (f"model {model:#x} reads as {_table(vendor, family, model, stepping)} but "
                       f"{why}: a masked model number, so no name is given")
    return out


def of(fingerprint: dict[str, Any] | None) -> str | None:
    """The microarchitecture of a stored fingerprint, also of one recorded before it was kept.

    Older fingerprints hold ``cpu.vendor``, ``cpu.family`` and ``cpu.model`` already, so the
    name is derived from them the same way rather than left blank.
    """
    if not isinstance(fingerprint, dict):
        return None
    recorded = fingerprint.get("microarch")
    if isinstance(recorded, dict) and recorded.get("name"):
        return str(recorded["name"])
    cpu = fingerprint.get("cpu") if isinstance(fingerprint.get("cpu"), dict) else {}
    return name(cpu.get("vendor"), cpu.get("family"), cpu.get("model"), cpu.get("stepping"),
                cpu.get("flags"))


def cpu_label(fingerprint: dict[str, Any] | None) -> str | None:
    """The brand with the microarchitecture where the brand does not already say it:
    ``AMD EPYC (Zen 4)``. What report and compare headers show."""
    if not isinstance(fingerprint, dict):
        return None
    cpu = fingerprint.get("cpu") if isinstance(fingerprint.get("cpu"), dict) else {}
    brand = cpu.get("brand_raw") or cpu.get("brand") or fingerprint.get("brand")
    arch = of(fingerprint)
    if brand is None:
        return arch
    brand = str(brand)
    if arch is None or arch.lower().replace(" ", "") in brand.lower().replace(" ", ""):
        return brand
    return f"{brand} ({arch})"


def brand_is_ambiguous(brand: str | None) -> bool:
    """True when the brand names no part number, so it cannot tell two generations apart.

    A part number is a token of three or more letters and digits with at least one digit
    (``9654``, ``7B13``, ``8480+``, ``i7-12700K``); ``AMD EPYC``, ``AMD EPYC Processor`` and
    ``Intel Xeon Processor (Icelake)`` have none.
    """
    return not re.search(r"\b(?=[A-Za-z]*\d)[A-Za-z0-9]{3,}", brand or "")
