"""A regression gate needs a unit (issue 28, item 5): ``median:5`` once meant five seconds and
passed a 1.9x slowdown; now it is refused with exit 2, and ``--help`` says why."""

from __future__ import annotations

import pytest

from reports.compare.gates import Rule
from tests.compare_support import AMD, INTEL
from tests.conftest import run_cli


@pytest.mark.parametrize("rule", ["median:5", "speedup:0.2", "median:5x", "speedup:2ms"])
def test_a_rule_without_its_unit_exits_2(rule: str) -> None:
    proc = run_cli("compare", str(INTEL), str(AMD), "--fail-on-regression", rule)
    assert proc.returncode == 2 and proc.stdout == ""
    assert rule in proc.stderr and "median:2ms" in proc.stderr  # says how to write it
    if rule in ("median:5", "speedup:0.2"):
        assert "has no unit" in proc.stderr


def test_units_parse_to_the_same_threshold():
    assert Rule.parse("median:2ms") == Rule("median", 2.0, "ms")
    assert str(Rule.parse("median:0.002s")) == "median:0.002s"
    assert Rule.parse("median:5%").percent and not Rule.parse("median:5ms").percent
    assert Rule.parse("speedup:0.2×") == Rule("speedup", 0.2, "x")


def test_compare_help_names_the_units_and_prints_single_percent_signs():
    text = run_cli("compare", "--help").stdout
    assert "a unit is required (%, ms, s" in " ".join(text.split())
    assert "95% intervals" in " ".join(text.split()) and "%%" not in text
