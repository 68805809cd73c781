"""Every preset loads, and the holdout preset stays what it is for: networks the predictor was
not fitted on (none in the kernel preset) and not the quick preset's, two of every family."""

import pytest

import archs
from harness.run.config import PRESETS, ConfigError, load_preset


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_with_canonical_specs(name):
    config = load_preset(name)
    assert config.workloads, name
    for w in config.workloads:
        # as the store keys cells: the spec written the way the parser writes it back
        assert str(archs.parse(w)) == w, (name, w)


def test_an_unknown_preset_names_the_valid_ones():
    with pytest.raises(ConfigError, match="holdout"):
        load_preset("nonesuch")


def test_holdout_shares_no_network_with_the_kernel_or_quick_presets():
    holdout = set(load_preset("holdout").workloads)
    for other in ("kernels", "quick"):
        assert not holdout & set(load_preset(other).workloads), other


def test_holdout_covers_every_family_but_the_kernels_twice():
    families = [w.split(":", 1)[0] for w in load_preset("holdout").workloads]
    expected = sorted(f for f in archs.FAMILIES if f != "kernel")
    assert sorted(set(families)) == expected
    assert all(families.count(f) == 2 for f in expected)
    assert len(families) >= 20  # the "at least 20 specs across all families"
