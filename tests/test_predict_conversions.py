"""OpenVINO's layout conversions as the latency predictor reads them (issue 26): Reorders read
from the compiled model's runtime graph as kernels of their own, by implementation and by what
they convert (a plane that aliases in the L1, a vector), with their shapes."""

from __future__ import annotations

import pytest

import archs
from harness.predict.design import switches
from harness.predict.fusion import (
    REORDER_ALIASED,
    REORDER_KINDS,
    REORDER_VECTOR,
    aliases,
    backend_kernels,
    reorder_kernel,
)


def test_openvino_layout_conversions_are_kernels_of_their_own() -> None:
    """A one-kernel cell on OpenVINO runs a Reorder of its input into the plugin's layout and
    one of its output back (read from the compiled model): each is a reorder kernel carrying
    the bytes of the tensor it converts, not part of the convolution's cost, and neither counts
    as a switch between kernels. Eager PyTorch has none."""
    model, example = archs.build("kernel:op=dwconv,cin=16,res=64")
    got = backend_kernels(model, example, ["torch", "openvino:CPU"], precision="f32", threads=1)
    ov = got["openvino:CPU"]
    assert [k.kind for k in ov if k.kind == "depthwise"] == ["depthwise"]
    reorders = [k for k in ov if k.kind in REORDER_KINDS]
    assert len(reorders) == 2, [(k.kind, k.units) for k in ov]
    tensor = 16 * 64 * 64 * 4
    assert all(k.in_bytes == k.out_bytes == tensor and k.weight_bytes == 0 for k in reorders)
    assert ov[0].kind in REORDER_KINDS and ov[-1].kind in REORDER_KINDS  # input, then output
    assert switches(ov) == 0
    assert not any(k.kind in REORDER_KINDS for k in got["torch"])


@pytest.mark.parametrize("res", [64, 56])
def test_a_generic_conversion_on_planes_that_alias_in_the_l1_is_a_kind_of_its_own(res: int) -> None:
    """The runtime rows carry each primitive's logical shape, and a Reorder's kind follows its
    implementation and that shape: the JIT and brgemm ones are ``reorder``; the generic one is
    ``reorder_aliased`` where its planes (64x64 floats: 16 KiB) are a multiple of the L1's way,
    so the 16 channels it moves together share one set, and ``reorder_ref`` where they are not
    (56x56: 12.25 KiB). Which implementation the plugin picks is its choice; the kind must
    follow it."""
    from harness.backends import PrepareContext, get_backend

    model, example = archs.build(f"kernel:op=dwconv,cin=16,res={res}")
    prepared = get_backend("openvino:CPU").prepare(model, example,
                                                   PrepareContext(precision="f32", threads=1))
    conversions = [r for r in prepared.kernel_rows() if r["type"] == "Reorder"]
    assert len(conversions) == 2
    for row in conversions:
        assert row["out_shape"] == [1, 16, res, res]
        generic = not any(t in str(row["exec_type"]) for t in ("jit", "brgemm"))
        want = ("reorder_aliased" if res == 64 else "reorder_ref") if generic else "reorder"
        assert reorder_kernel(row).kind == want, row


def test_which_conversions_alias() -> None:
    """Planes a multiple of 4 KiB apart alias when a whole block of 16 channels shares their L1
    set (more lines than its 8 or 12 ways); nothing else does."""
    assert aliases([1, 16, 64, 64], 16 * 64 * 64 * 4)  # 16 KiB planes
    assert aliases([1, 64, 32, 32], 64 * 32 * 32 * 4)  # 4 KiB planes
    assert not aliases([1, 64, 32, 32], 64 * 32 * 32 * 2)  # the same map in bf16: 2 KiB
    assert not aliases([1, 16, 56, 56], 16 * 56 * 56 * 4)
    assert not aliases([1, 12, 64, 64], 12 * 64 * 64 * 4)  # under a block: 12 ways hold them
    assert not aliases([1, 16, 0, 64], 16)  # an empty tensor
    assert not aliases([1, 3, 64, 64], 3 * 64 * 64 * 4)  # a network's image
    assert not aliases([1, 1000], 4000) and not aliases(None, 0) and not aliases([1, 16, 0, 64], 0)
    row = {"name": "r", "type": "Reorder", "exec_type": "reorder_f32", "out_bytes": 16 * 64 * 64 * 4,
           "out_shape": [1, 16, 64, 64]}
    assert reorder_kernel(row).kind == REORDER_ALIASED
    assert reorder_kernel({**row, "exec_type": "jit_uni_f32"}).kind == "reorder"
    assert reorder_kernel({**row, "out_shape": None}).kind == "reorder_ref"  # no shape: no claim
    vector = {**row, "out_bytes": 128, "out_shape": [1, 32, 1, 1]}
    assert reorder_kernel(vector).kind == reorder_kernel({**vector, "exec_type": "jit_uni_f32"}
                                                         ).kind == REORDER_VECTOR


def test_the_conversion_before_a_convnets_classifier_is_a_vectors() -> None:
    """Read from a compiled ConvNet: the one conversion between its global pool and its
    flatten converts a 1x1 map, and is priced as a vector's, not as a map's."""
    model, example = archs.build("overlap:depth=3,width=32,res=64")
    ov = backend_kernels(model, example, ["openvino:CPU"], precision="f32", threads=1)["openvino:CPU"]
    kinds = [k.kind for k in ov]
    assert kinds.index("global_pool") < kinds.index(REORDER_VECTOR) < kinds.index("linear"), kinds
    assert kinds[0] in ("reorder", "reorder_ref")  # the image: 3 channels, no vector, no alias


def test_the_runtime_rows_keep_the_input_reorder_and_no_constant_subgraph() -> None:
    """OpenVINO's rows: a primitive fed by no other primitive is either the Reorder of the
    model's input (kept: it runs on every inference) or absent (a weight's constant sub-graph,
    run once at compile time); every row says what it writes."""
    from harness.backends import PrepareContext, get_backend

    model, example = archs.build("residual:depth=1,width=8,res=16")
    prepared = get_backend("openvino:CPU").prepare(model, example,
                                                   PrepareContext(precision="f32", threads=1))
    rows = prepared.kernel_rows()
    unfed = [r for r in rows if not r["inputs"]]
    assert [r["type"] for r in unfed] == ["Reorder"], unfed
    assert unfed[0]["out_bytes"] == example.numel() * 4
    assert all(isinstance(r["out_bytes"], int) and r["out_bytes"] > 0 for r in rows)
