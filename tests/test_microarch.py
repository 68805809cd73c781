"""The microarchitecture from CPUID, and what it does to the machine id (and what it must not)."""

from __future__ import annotations

import pytest

from harness.machine import microarch
from harness.machine.fingerprint import machine_id

CACHES = {"l1d": 32 << 10, "l2": 1 << 20, "l3": 32 << 20}


@pytest.mark.parametrize(("vendor", "family", "model", "stepping", "name"), [
    ("AuthenticAMD", 25, 0x11, 1, "Zen 4"),      # this project's EPYC VM (Genoa)
    ("AuthenticAMD", 25, 0x01, 1, "Zen 3"),      # Milan
    ("AuthenticAMD", 25, 0x61, 2, "Zen 4"),      # Raphael
    ("AuthenticAMD", 25, 0xA0, 2, "Zen 4"),      # Bergamo
    ("AuthenticAMD", 25, 0x50, 0, "Zen 3"),      # Cezanne
    ("AuthenticAMD", 26, 0x02, 1, "Zen 5"),      # Turin
    ("AuthenticAMD", 23, 0x31, 0, "Zen 2"),      # Rome
    ("AuthenticAMD", 25, 0xF0, 0, None),         # not in the table: not guessed
    ("GenuineIntel", 6, 0x8F, 8, "Sapphire Rapids"),
    ("GenuineIntel", 6, 0xCF, 2, "Emerald Rapids"),
    ("GenuineIntel", 6, 0xAD, 1, "Granite Rapids"),
    ("GenuineIntel", 6, 0x6A, 6, "Ice Lake-X"),
    ("GenuineIntel", 6, 0x55, 4, "Skylake-SP"),
    ("GenuineIntel", 6, 0x55, 7, "Cascade Lake"),
    ("GenuineIntel", 6, 0x55, 11, "Cooper Lake"),
    ("GenuineIntel", 6, 0x55, None, None),       # the stepping decides; unknown, so no name
    ("GenuineIntel", 15, 0x01, 0, None),
    ("CentaurHauls", 6, 0x0F, 0, None),
])
def test_named_from_vendor_family_model(vendor, family, model, stepping, name) -> None:
    assert microarch.name(vendor, family, model, stepping) == name


def test_a_masked_model_contradicted_by_the_isa_is_not_named() -> None:
    # The real Intel store: a Xeon with AMX whose VM reports family 6 model 167 (Rocket Lake).
    flags = ["avx512f", "amx_tile", "amx_bf16"]
    assert microarch.name("GenuineIntel", 6, 167, None, flags) is None
    assert "AMX" in microarch.describe("GenuineIntel", 6, 167, None, flags)["note"]
    assert microarch.name("AuthenticAMD", 25, 0x01, 1, ["avx512f"]) is None  # Zen 3 has none
    assert microarch.name("AuthenticAMD", 25, 0x11, 1, ["avx512f"]) == "Zen 4"


def test_labels_add_the_microarch_only_where_the_brand_lacks_it() -> None:
    epyc = {"cpu": {"brand_raw": "AMD EPYC", "vendor": "AuthenticAMD", "family": 26, "model": 2}}
    assert microarch.cpu_label(epyc) == "AMD EPYC (Zen 5)"  # an old fingerprint: derived
    assert microarch.cpu_label({**epyc, "microarch": {"name": "Zen 4"}}) == "AMD EPYC (Zen 4)"
    named = {"cpu": {"brand_raw": "AMD EPYC 9654 (Zen 4)", "vendor": "AuthenticAMD",
                     "family": 25, "model": 0x11}}
    assert microarch.cpu_label(named) == "AMD EPYC 9654 (Zen 4)"
    assert microarch.cpu_label({"cpu": {"brand_raw": "Some CPU"}}) == "Some CPU"


@pytest.mark.parametrize(("brand", "ambiguous"), [
    ("AMD EPYC", True), ("AMD EPYC Processor", True), ("Intel Xeon Processor (Icelake)", True),
    ("AMD EPYC 9654 96-Core Processor", False), ("AMD EPYC 7B13", False),
    ("Intel(R) Xeon(R) Platinum 8480+", False), ("13th Gen Intel(R) Core(TM) i7-13700K", False),
])
def test_brand_ambiguity(brand: str, ambiguous: bool) -> None:
    assert microarch.brand_is_ambiguous(brand) is ambiguous


def test_ids_part_two_epyc_vms_and_keep_every_named_part_as_it_was() -> None:
    def mid(brand: str, arch: str | None) -> str:
        return machine_id("runner", brand, 2, CACHES, 8 << 30, microarch=arch)

    # Two VMs that both say "AMD EPYC", a Zen 4 and a Zen 5 with the same caches and memory.
    assert mid("AMD EPYC", "Zen 4") != mid("AMD EPYC", "Zen 5")
    # A brand that names the part implies its microarchitecture: the id is the old one.
    for brand in ("AMD EPYC 9654 96-Core Processor", "Intel(R) Xeon(R) Platinum 8480+"):
        assert mid(brand, "Zen 4") == mid(brand, None)
    # Nothing known about the microarchitecture: the old id too.
    assert mid("AMD EPYC", None) == machine_id("runner", "AMD EPYC", 2, CACHES, 8 << 30)
