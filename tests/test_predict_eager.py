"""What eager PyTorch moves inside a convolution call (issue 26): which convolutions ATen runs
through oneDNN, read from oneDNN's own log, and the layout conversions that path adds to the
bytes an inference moves (which decide whether a network's weights come from memory)."""

from __future__ import annotations

import pytest
import torch

from harness.backends import onednn_trace
from harness.predict.design import cold_weight_mb, moved_bytes
from harness.predict.eager import conversion_bytes, runs_onednn
from harness.predict.fusion import Kernel, backend_kernels
from harness.predict.units import model_units

# (channels in, channels out, map, kernel, stride, groups, batch, threads)
CASES = [
    (16, 16, 32, 3, 1, 1, 1, 2),      # 16384 input elements: ATen's own im2col + GEMM
    (20, 20, 32, 3, 1, 1, 1, 2),      # 20480: still its own
    (8, 8, 64, 3, 1, 1, 1, 2),        # 32768: oneDNN
    (36, 36, 32, 1, 1, 1, 1, 2),      # a 1x1 over the threshold: oneDNN
    (72, 72, 16, 1, 1, 1, 1, 2),      # a 1x1 under it: its own
    (3, 16, 64, 3, 2, 1, 1, 2),       # a strided stem on 12288 elements: its own
    (16, 16, 16, 5, 1, 1, 1, 2),      # a kernel over 3 in both dimensions: oneDNN at any size
    (16, 16, 16, (7, 1), 1, 1, 1, 2),  # over 3 in one dimension only: the size decides
    (16, 16, 16, 3, 1, 16, 1, 2),     # depthwise: oneDNN at any size
    (16, 16, 8, 3, 1, 1, 2, 2),       # a batch of 2: oneDNN
    (64, 64, 64, 1, 1, 1, 1, 1),      # one thread, an unstrided 1x1: its own at any size
    (64, 64, 64, 3, 1, 1, 1, 1),      # one thread, a 3x3 over the threshold: oneDNN
]


def _conv(cin: int, cout: int, kernel: int | tuple[int, int], stride: int,
          groups: int) -> torch.nn.Module:
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, k, stride, (k[0] // 2, k[1] // 2),
                                               groups=groups, bias=False)).eval()


def _ran_onednn(model: torch.nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        model(x)  # primitives created and cached before the traced call
        lines, _ = onednn_trace.capture(lambda: model(x))
    return any(",exec," in ln and ",convolution," in ln for ln in lines)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN")
def test_the_rule_says_which_convolutions_pytorch_runs_through_onednn() -> None:
    before = torch.get_num_threads()
    said, ran = [], []
    try:
        for cin, cout, res, kernel, stride, groups, batch, threads in CASES:
            torch.set_num_threads(threads)
            model = _conv(cin, cout, kernel, stride, groups)
            x = torch.randn(batch, cin, res, res)
            (unit,) = [u for u in model_units(model, x) if u["kind"] != "other"]
            said.append(runs_onednn(unit, threads=threads, precision="f32"))
            ran.append(_ran_onednn(model, x))
    finally:
        torch.set_num_threads(before)
    assert said == ran, [c for c, s, r in zip(CASES, said, ran, strict=True) if s != r]
    assert any(ran) and not all(ran)  # both paths among the cases


def test_a_narrower_float_always_takes_onednn_and_other_kinds_never() -> None:
    conv = {"kind": "conv", "kernel_size": [3, 3], "stride": 1, "groups": 1, "cin": 16,
            "out_shape": [1, 16, 8, 8], "in_bytes": 16 * 64 * 4, "out_bytes": 4096,
            "weight_bytes": 9216}
    assert not runs_onednn(conv, threads=2, precision="f32")  # 1024 elements
    assert runs_onednn(conv, threads=2, precision="bf16")
    # the unit's float32 bytes, halved
    assert conversion_bytes(conv, threads=2, precision="bf16") == 4096 + 4096 + 9216
    assert not runs_onednn({**conv, "kind": "linear"}, threads=2, precision="bf16")
    assert conversion_bytes({**conv, "kind": "batchnorm"}, threads=2, precision="bf16") == 0


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN")
def test_onednn_reads_a_narrow_input_as_it_is_and_converts_a_wide_one() -> None:
    """The reorders oneDNN's log shows around one call: weights and output always, the input
    from 16 channels on (``PLAIN_INPUT_BELOW``); and the bytes counted for each."""
    from harness.predict.eager import PLAIN_INPUT_BELOW

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for cin in (3, 8, PLAIN_INPUT_BELOW, 32):
            model, x = _conv(cin, 16, 3, 1, 1), torch.randn(1, cin, 128, 128)  # oneDNN's
            with torch.no_grad():
                model(x)
                lines, _ = onednn_trace.capture(lambda m=model, x=x: m(x))
            reorders = sum(",exec," in ln and ",reorder," in ln for ln in lines)
            assert reorders == (3 if cin >= PLAIN_INPUT_BELOW else 2), (cin, reorders)
            (unit,) = [u for u in model_units(model, x) if u["kind"] != "other"]
            got = conversion_bytes(unit, threads=2, precision="f32")
            maps = unit["out_bytes"] + (unit["in_bytes"] if cin >= PLAIN_INPUT_BELOW else 0)
            assert got == 2 * (maps + unit["weight_bytes"])
            assert conversion_bytes(unit, threads=2, precision="f32",
                                    layout="channels_last") == 2 * unit["weight_bytes"]
            assert conversion_bytes(unit, threads=2, precision="bf16") == got // 2
    finally:
        torch.set_num_threads(before)


def test_eager_kernels_carry_their_conversions_and_openvino_none() -> None:
    """A 3x3 convolution on 16 channels at 64x64 (65536 elements: oneDNN) then one on 16 at
    32x32 (16384: ATen's own) in eager PyTorch; OpenVINO's conversions are kernels of their
    own."""
    model = torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, 1, 1, bias=False), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2),
                                torch.nn.Conv2d(16, 16, 3, 1, 1, bias=False)).eval()
    x = torch.randn(1, 16, 64, 64)
    got = backend_kernels(model, x, ["torch", "openvino:CPU"], precision="f32", threads=2)
    eager = {k.units[0]: k for k in got["torch"]}
    big, small = eager["0"], eager["3"]
    assert big.conversion_bytes == 2 * (big.in_bytes + big.out_bytes + big.weight_bytes) > 0
    assert small.conversion_bytes == 0
    assert eager["1"].conversion_bytes == 0 and eager["2"].conversion_bytes == 0
    assert all(k.conversion_bytes == 0 for k in got["openvino:CPU"])
    assert moved_bytes(got["torch"]) == sum(k.bytes for k in got["torch"]) + big.conversion_bytes
    # in channels_last only the weights are converted (the layout read from what it resolved)
    nhwc = backend_kernels(model, x, ["torch[layout=channels_last]"], precision="f32",
                           threads=2)["torch[layout=channels_last]"]
    assert nhwc[0].conversion_bytes == 2 * big.weight_bytes


def test_conversions_can_put_a_network_over_the_cache() -> None:
    """The same kernels moving 20 MB of their own and 16 MB of conversions: over a 32 MiB cache
    only with the conversions counted, and then every weight byte is read from memory."""
    k = Kernel(kind="conv", units=("c",), flops=1, bytes=20_000_000, kernel=3, stride=1,
               groups=1, cin=64, cout=64, in_bytes=8_000_000, out_bytes=8_000_000,
               weight_bytes=4_000_000)
    cache = 32 << 20
    assert cold_weight_mb([k], cache) == 0.0
    assert cold_weight_mb([Kernel(**{**k.as_json(), "units": ("c",),
                                     "conversion_bytes": 16_000_000})], cache) == 4.0


def test_a_kernel_cached_before_conversions_reads_as_none() -> None:
    k = Kernel(kind="pointwise", units=("p",), flops=2, bytes=3, kernel=1, stride=1, groups=1,
               cin=1, cout=1, conversion_bytes=7)
    assert Kernel.from_json(k.as_json()) == k
    old = {key: v for key, v in k.as_json().items() if key != "conversion_bytes"}
    assert Kernel.from_json(old).conversion_bytes == 0


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN")
def test_onednn_pads_the_channels_the_predictor_pads() -> None:
    """oneDNN's log of a call says which maps it pads and to what block (``aBcd16b`` with ``p``
    among its flags); ``padded`` scales a call's FLOPs and map bytes by the same channels: 24
    computed as 32 (on AVX-512), 32 as itself, a depthwise convolution's channels once, a
    convolution off oneDNN (20 channels at 32x32, ATen's own) not at all."""
    import re

    from harness.predict.eager import onednn_block, padded

    block = onednn_block()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for c, res, groups in ((24, 64, 1), (32, 64, 1), (36, 64, 36), (20, 32, 1)):
            model, x = _conv(c, c, 3, 1, groups), torch.randn(1, c, res, res)
            with torch.no_grad():
                model(x)
                lines, _ = onednn_trace.capture(lambda m=model, x=x: m(x))
            conv = [ln for ln in lines if ",exec," in ln and ",convolution," in ln]
            (unit,) = [u for u in model_units(model, x) if u["kind"] != "other"]
            flops, maps = padded(unit, threads=2, precision="f32", block=block)
            if not conv:  # ATen's own path: nothing padded
                assert (flops, maps) == (unit["flops"], unit["in_bytes"] + unit["out_bytes"])
                continue
            dst = re.search(r"dst:f32:(\w*):blocked:(\w+)", conv[0])
            blocked = re.search(r"(\d+)b$", dst.group(2))
            assert blocked and int(blocked.group(1)) == block, conv[0]
            want = -(-c // block) * block / c
            assert ("p" in dst.group(1)) == (want > 1), conv[0]
            assert flops == round(unit["flops"] * want ** (1 if groups > 1 else 2))
            assert maps == round((unit["in_bytes"] + unit["out_bytes"]) * want)
            # channels_last (oneDNN's acdb) and a narrower float: the model's figures
            assert padded(unit, threads=2, precision="f32", block=block,
                          layout="channels_last")[0] == unit["flops"]
            assert padded(unit, threads=2, precision="bf16", block=block)[0] == unit["flops"]
    finally:
        torch.set_num_threads(before)


def test_an_eager_row_prices_the_padded_convolution_and_openvino_the_model() -> None:
    """A 24-channel 3x3 convolution at 64x64: eager PyTorch's row carries its padded FLOPs and
    maps, OpenVINO's (channels-last) its FLOPs at whole blocks of output channels and the
    model's maps."""
    from harness.predict.design import FEATURES, KERNEL_KINDS, TERMS, kernel_row
    from harness.predict.eager import onednn_block

    model = torch.nn.Sequential(torch.nn.Conv2d(24, 24, 3, 1, 1, bias=False)).eval()
    x = torch.randn(1, 24, 64, 64)
    got = backend_kernels(model, x, ["torch", "openvino:CPU"], precision="f32", threads=2)
    (eager,) = [k for k in got["torch"] if k.kind == "conv"]
    want = (-(-24 // onednn_block()) * onednn_block() / 24)
    assert eager.padded_flops == round(eager.flops * want ** 2) > eager.flops
    i = len(TERMS) + KERNEL_KINDS.index("conv") * len(FEATURES)
    row = kernel_row(got["torch"])
    assert row[i + 1] == pytest.approx(eager.padded_flops / 1e6)
    assert row[i + 2] == pytest.approx((eager.in_bytes + eager.out_bytes) * want / 1e6, rel=1e-6)
    (compiled,) = [k for k in got["openvino:CPU"] if k.kind == "conv"]
    assert compiled.padded_flops == round(compiled.flops * want) and compiled.padded_map_bytes == 0
    ov_row = kernel_row(got["openvino:CPU"])
    assert ov_row[i + 1] == pytest.approx(compiled.flops * want / 1e6)
    assert ov_row[i + 2] == pytest.approx((compiled.bytes - compiled.weight_bytes) / 1e6)


def test_openvino_computes_whole_blocks_of_output_channels() -> None:
    """OpenVINO's convolutions carry their FLOPs at whole blocks of output channels (20 or 24
    computed as 32 on AVX-512; 32 as itself; a depthwise convolution's channels too), their maps
    and input channels as the model's; none in bf16, whose blocks differ."""
    from harness.predict.eager import onednn_block

    block = onednn_block()
    for cout, groups in ((24, 1), (32, 1), (20, 20)):
        cin = cout if groups > 1 else 16
        model = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 3, 1, 1, groups=groups,
                                                    bias=False)).eval()
        x = torch.randn(1, cin, 32, 32)
        (conv,) = [k for k in backend_kernels(model, x, ["openvino:CPU"], precision="f32",
                                              threads=2)["openvino:CPU"]
                   if k.kind in ("conv", "depthwise")]
        want = -(-cout // block) * block
        assert conv.padded_flops == (round(conv.flops * want / cout) if want != cout else 0)
        assert conv.padded_map_bytes == 0
    depthwise = torch.nn.Sequential(torch.nn.Conv2d(20, 20, 3, 1, 1, groups=20,
                                                    bias=False)).eval()
    (bf16,) = [k for k in backend_kernels(depthwise, torch.randn(1, 20, 32, 32), ["openvino:CPU"],
                                          precision="bf16", threads=2)["openvino:CPU"]
               if k.kind == "depthwise"]
    assert bf16.padded_flops == 0
