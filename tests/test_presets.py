"""Every preset loads, and the holdout presets stay what they are for: networks the predictor was
not fitted on (none in the kernel preset), not the quick preset's nor each other's, two of every
family."""

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


HOLDOUTS = ("holdout", "holdout2")


@pytest.mark.parametrize("name", HOLDOUTS)
def test_holdout_shares_no_network_with_the_kernel_or_quick_presets_or_the_other_holdout(name):
    holdout = set(load_preset(name).workloads)
    for other in ("kernels", "quick", *(h for h in HOLDOUTS if h != name)):
        assert not holdout & set(load_preset(other).workloads), other


@pytest.mark.parametrize("name", HOLDOUTS)
def test_holdout_covers_every_family_but_the_kernels_twice(name):
    families = [w.split(":", 1)[0] for w in load_preset(name).workloads]
    expected = sorted(f for f in archs.FAMILIES if f != "kernel")
    assert sorted(set(families)) == expected
    assert all(families.count(f) == 2 for f in expected)
    assert len(families) >= 20  # the "at least 20 specs across all families"
