"""The ``accelbench`` pytest fixture, as a user meets it: a suite run with pytester."""

from __future__ import annotations

import json
from importlib import metadata

import pytest

pytest_plugins = ("pytester",)

USER_TEST = '''
import torch

def make():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(8, 4)).eval(), torch.randn(1, 3, 16, 16)

def test_tiny(accelbench):
    model, x = make()
    result = accelbench(model, x, budget_s={budget})
    s = result.speedup()
    assert (s.baseline, s.candidate) == ("torch", "openvino:CPU")
    assert s.ci95[0] <= s.value <= s.ci95[1] and s.ci_method == "paired-blocks"
    assert s.significant is (s.ci95[0] > 1 or s.ci95[1] < 1)  # the interval excludes "no change"
    assert result.summary("openvino:CPU")["n"] > 0
    print("SPEEDUP", s.value, s.ci95)
'''


def _plugin_args() -> list[str]:
    """Load the plugin by module name unless an installed entry point already does."""
    names = {ep.name for ep in metadata.entry_points(group="pytest11")}
    return [] if "accelbench" in names else ["-p", "harness.pytest_bench.plugin"]


def test_fixture_reports_both_backends_and_gates(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST.format(budget=0.5))
    args = [*_plugin_args(), "-p", "no:cacheprovider", "--benchmark-only", "-s"]
    res = pytester.runpytest_subprocess(*args, "--benchmark-json=run1.json")
    res.assert_outcomes(passed=1)
    out = res.stdout.str()
    assert "test_tiny[torch]" in out and "test_tiny[openvino:CPU]" in out and "SPEEDUP" in out
    data = json.loads((pytester.path / "run1.json").read_text())
    names = {b["name"] for b in data["benchmarks"]}
    assert names == {"test_tiny[torch]", "test_tiny[openvino:CPU]"}
    ov = next(b for b in data["benchmarks"] if b["param"] == "openvino:CPU")
    sp = ov["extra_info"]["accelbench"]["speedup"]
    assert sp["over"] == "torch" and sp["ci95"][0] <= sp["value"] <= sp["ci95"][1]
    assert ov["stats"]["rounds"] == len(ov["stats"]["data"]) > 0

    # gate against the saved run: a 1000% threshold does not fail; against a run made 100x
    # faster (every time scaled by 0.01), median:5% must
    res = pytester.runpytest_subprocess(*args, "--benchmark-compare=run1.json",
                                        "--benchmark-compare-fail=median:1000%")
    res.assert_outcomes(passed=1)
    assert "Performance has regressed" not in res.stdout.str() + res.stderr.str()
    for b in data["benchmarks"]:
        st = b["stats"]
        for k in ("min", "max", "mean", "median", "q1", "q3", "ld15iqr", "hd15iqr", "stddev",
                  "iqr", "total"):
            st[k] *= 0.01
        st["data"] = [x * 0.01 for x in st["data"]]
    (pytester.path / "fast.json").write_text(json.dumps(data))
    res = pytester.runpytest_subprocess(*args, "--benchmark-compare=fast.json",
                                        "--benchmark-compare-fail=median:5%")
    text = res.stdout.str() + res.stderr.str()
    assert "Performance has regressed" in text and "median" in text
    assert "test_tiny[torch]" in text and "test_tiny[openvino:CPU]" in text
    assert res.ret != 0


def test_fixture_under_benchmark_disable_is_a_smoke_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST.format(budget=30))
    res = pytester.runpytest_inprocess(*_plugin_args(), "-p", "no:cacheprovider",
                                       "--benchmark-disable", "-s")
    res.assert_outcomes(passed=1)  # 30 s asked, but disabled: a short run, no table
    assert "test_tiny[torch]" not in res.stdout.str()
    assert res.duration < 25
