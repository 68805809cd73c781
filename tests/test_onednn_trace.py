"""Which oneDNN kernels PyTorch reaches (issue 23): the verbose log read exactly, a real trace
recorded with every eager cell, and the report's explanation of a bf16 slower than f32."""

from __future__ import annotations

import pytest

from harness.backends import PrepareContext, get_backend, onednn_trace
from harness.backends.precision import cpu_bf16

LOG = [
    "onednn_verbose,v1,info,oneDNN v3.12.0 (commit 80afa71)",
    "onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with Intel DL Boost and bfloat16 support",
    "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:bf16 dst:bf16,,1x16x48x48,0.75",
    "onednn_verbose,v1,primitive,exec,cpu,convolution,jit_bf16:avx512_core_bf16,forward_inference,"
    "src:bf16 wei:bf16,alg:convolution_direct,mb1_ic3oc16,0.5",
    "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:bf16 dst:bf16,,1x16x48x48,0.25",
    "onednn_verbose,v1,primitive,create:cache_miss,cpu,reorder,jit:uni,undef,,,,0.125",
]


def test_the_log_is_summarized_exactly():
    got = onednn_trace.summarize(LOG, wall_ms=4.0)
    assert got["isa"] == "Intel AVX-512 with Intel DL Boost and bfloat16 support"
    assert got["primitives"] == [
        {"kind": "reorder", "impl": "jit:uni", "calls": 2, "ms": 1.0},
        {"kind": "convolution", "impl": "jit_bf16:avx512_core_bf16", "calls": 1, "ms": 0.5}]
    assert got["calls"] == 3 and got["onednn_ms"] == 1.5 and got["wall_ms"] == 4.0  # no create
    assert got["reorder_calls"] == 2 and got["reorder_share"] == pytest.approx(1.0 / 1.5, abs=1e-4)
    assert onednn_trace.describe(got) == ("oneDNN ran convolution as jit_bf16:avx512_core_bf16 "
                                         "(1 calls) and 2 layout reorders, 67% of its oneDNN time")
    assert onednn_trace.describe({"error": "x"}) is None


@pytest.mark.parametrize("precision", ["f32", "bf16"])
def test_an_eager_cell_records_the_kernels_it_reached(precision: str):
    ok, why = cpu_bf16()
    if precision == "bf16" and not ok:
        pytest.skip(why)
    import os

    import archs

    model, x = archs.build("plain:depth=2,width=16,res=32", seed=0)
    before = os.fstat(1)
    prepared = get_backend("torch").prepare(model, x, PrepareContext(precision, 1))
    after = os.fstat(1)  # fd 1 points where it did (a worker's is its stderr), not at the log
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    trace = prepared.info["properties"]["onednn"]
    assert "error" not in trace, trace
    convs = [p for p in trace["primitives"] if p["kind"] == "convolution"]
    assert trace["wall_ms"] > 0
    if precision == "bf16":  # bf16 convolutions run in oneDNN, in bf16 kernels
        assert convs and trace["onednn_ms"] > 0, trace
    # (in f32 PyTorch runs small convolutions with its own kernels: none may be a bf16 one)
    assert all(("bf16" in p["impl"]) == (precision == "bf16") for p in convs), convs


def test_the_report_explains_a_slow_bf16_with_its_kernels():
    from reports.render import render_markdown
    from reports.tables import build_report
    from tests.test_report_sections import MACHINE, SESSION, cell, noisy

    trace = onednn_trace.summarize(LOG)
    cells = [cell("mobilenetv2", "torch", samples=noisy(6.0, seed=2)),
             cell("mobilenetv2", "torch", samples=noisy(9.0, seed=3), precision="bf16",
                  meta={"properties": {"precision_method": "autocast", "onednn": trace}})]
    md = render_markdown(build_report(SESSION, cells, MACHINE))
    assert ("torch on mobilenetv2 (0.67x, autocast; oneDNN ran convolution as "
            r"jit\_bf16:avx512\_core\_bf16 (1 calls) and 2 layout reorders, 67% of its oneDNN time)"
            in md), md[md.find("bf16 is slower"):][:400]


def test_later_process_pairs_do_not_trace_again():
    """The trace explains a cell once (its first process pair); later pairs only time."""
    import archs

    model, x = archs.build("plain:depth=2,width=16,res=32", seed=0)
    later = get_backend("torch").prepare(model, x, PrepareContext("f32", 1, first_pass=False))
    assert "onednn" not in later.info["properties"]
