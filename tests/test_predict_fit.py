"""The latency predictor's fit (issue 26), on synthetic machines with known kernel costs: per-kind
coefficients, the cell terms (overhead, boundary, cold weights, switches), chains beside their
single kernel, and kinds priced as their broader kind where a store has no cell of their own.
The prediction intervals: ``test_predict_intervals.py``."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

from harness.predict.design import (
    CELL,
    FEATURES,
    KERNEL_KINDS,
    cold_weight_mb,
    switched,
    switches,
)
from harness.predict.fusion import (
    CONCAT,
    CONCAT_INPLACE,
    FUNCTIONS,
    LINEAR_ACT,
    REORDER_KINDS,
    Kernel,
)
from harness.predict.model import chain_pairs, fit


def _kernel(kind: str, flops: float, mb: float, weight_mb: float = 0.0) -> Kernel:
    w, b = int(weight_mb * 1e6), int(mb * 1e6)
    return Kernel(kind, ("x",), int(flops), b + w, 3, 1, 1, 8, 8, in_bytes=b // 2,
                  out_bytes=b - b // 2, weight_bytes=w)


def test_fit_recovers_known_kernel_costs() -> None:
    """Per kind: a cost per kernel, per MFLOP, per activation MB and per weight MB (eager
    PyTorch reorders a convolution's weights on every call: its weight bytes cost apart)."""
    rng = np.random.default_rng(3)
    truth = {"overhead": 0.02, "conv": (0.005, 0.01, 0.2, 0.08), "add": (0.002, 0.0, 0.5, 0.0)}
    rows = []
    for i in range(40):
        ks = [_kernel("conv", rng.uniform(1e6, 5e7), rng.uniform(0.01, 2), rng.uniform(0, 3))
              for _ in range(rng.integers(1, 4))]
        ks += [_kernel("add", 0, rng.uniform(0.01, 1)) for _ in range(rng.integers(0, 3))]
        ms = truth["overhead"] + sum(
            truth[k.kind][0] + truth[k.kind][1] * k.flops / 1e6
            + truth[k.kind][2] * (k.bytes - k.weight_bytes) / 1e6
            + truth[k.kind][3] * k.weight_bytes / 1e6 for k in ks)
        rows.append((f"s{i}", ms, ks))
    f = fit({"synthetic": rows})["synthetic"]
    coef = f.coefficients()
    assert coef["overhead_ms"] == pytest.approx(0.02, rel=1e-6)
    for kind in ("conv", "add"):
        got = [coef[kind][n] for n in ("ms_per_kernel", "ms_per_MFLOP", "ms_per_activation_MB",
                                       "ms_per_weight_MB")]
        assert got == pytest.approx(truth[kind], rel=1e-6, abs=1e-9)
    assert len(f.coef) == len(CELL) + 2 * len(FUNCTIONS) + len(KERNEL_KINDS) * len(FEATURES)
    assert f.out_of_range([_kernel("conv", 1e7, 0.5, 1.0)]) == []
    (heavy,) = f.out_of_range([_kernel("conv", 1e7, 0.5, 50.0)])  # weights beyond the cells
    assert "weight MB 50 outside" in heavy
    notes = f.out_of_range([_kernel("conv", 1e10, 0.5), _kernel("linear", 1e6, 0.1)])
    assert any("MFLOP" in n and "outside" in n for n in notes)
    assert any("no linear kernel was measured" in n for n in notes)
    odd = dataclasses.replace(_kernel("conv", 1e7, 0.5, 1.0), cin=24)  # in range but 24 in
    (channels,) = f.out_of_range([odd, odd])  # one note per kind and channel count
    assert "24 channels" in channels and "measured: 8" in channels


def _chain(kind: str, n: int, act_mb: float, weight_mb: float = 0.0) -> list[Kernel]:
    """``n`` copies of one kernel, each reading and writing ``act_mb`` megabytes (its channels
    grow with its weights, as a real kernel's do)."""
    b, w = int(act_mb * 1e6), int(weight_mb * 1e6)
    c = 8 + int(weight_mb * 100)
    return [Kernel(kind, (f"{i}",), 0, 2 * b + w, 3, 1, 1, c, c, in_bytes=b, out_bytes=b,
                   weight_bytes=w) for i in range(n)]


def test_the_boundary_is_paid_once_per_network_not_once_per_kernel() -> None:
    """A synthetic runtime converts a cell's input and output once (0.05 ms/MB) and each kernel
    costs 0.002 ms + 0.01 ms/MB: the fit, on one-kernel cells and chains of them, must charge
    the conversion to the boundary, so a network of 30 kernels is predicted at its cost and
    not at 30 one-kernel cells'. Without the boundary term it is over-predicted by half."""
    truth_overhead, boundary, per_kernel, per_mb = 0.01, 0.05, 0.002, 0.01

    def cost(ks: list[Kernel]) -> float:
        io = (ks[0].in_bytes + ks[-1].out_bytes) / 1e6
        return truth_overhead + boundary * io + sum(per_kernel + per_mb * k.bytes / 1e6 for k in ks)

    rows = [(f"c{mb}x{n}", cost(ks), ks) for mb in (0.1, 0.3, 0.8, 2.0) for n in (1, 4)
            for ks in [_chain("conv", n, mb)]]
    f = fit({"synthetic": rows})["synthetic"]
    coef = f.coefficients()
    assert coef["boundary_ms_per_MB"] == pytest.approx(boundary, rel=1e-6)
    network = _chain("conv", 30, 0.5)
    assert f.predict_ms(network) == pytest.approx(cost(network), rel=1e-6)


def test_weights_of_a_cell_moving_more_than_the_cache_are_all_cold_and_under_it_all_warm() -> None:
    """A cell that moves more bytes in one inference (maps and weights) than the machine's
    last-level cache holds streams all its weights from memory on every inference (between two
    uses of a weight everything else has passed through the cache, and an LRU cache has
    evicted it): cells over the cache identify that cost; a network under it pays none of it.
    A network just over the cache pays for every weight byte, not for the excess; one whose
    weights fit but whose maps push it over pays for its weights too."""
    cache = 32_000_000
    assert cold_weight_mb(_chain("conv", 3, 0.01, 10.0), cache) == 0.0
    assert cold_weight_mb(_chain("conv", 4, 0.01, 10.0), cache) == pytest.approx(40.0, rel=1e-3)
    assert cold_weight_mb(_chain("conv", 4, 0.01, 10.0), 0) == 0.0  # no cache size: no term
    # 20 MB of weights fit; with 24 MB of maps read and written the cell moves 44 MB
    assert cold_weight_mb(_chain("conv", 4, 3.0, 5.0), cache) == pytest.approx(20.0, rel=1e-3)
    assert cold_weight_mb(_chain("conv", 2, 3.0, 5.0), cache) == 0.0

    def cost(ks: list[Kernel]) -> float:
        w, moved = sum(k.weight_bytes for k in ks), sum(k.bytes for k in ks)
        return 0.01 + sum(0.003 + 0.02 * k.bytes / 1e6 for k in ks) + 0.04 * (moved > cache) * w / 1e6

    rows = [(f"w{w}a{a}x{n}", cost(ks), ks) for w in (1.0, 5.0, 9.0, 16.0) for n in (1, 2, 4, 8)
            for a in (0.01, 2.0) for ks in [_chain("conv", n, a, w)]]
    f = fit({"synthetic": rows}, cache_bytes=cache)["synthetic"]
    coef = f.coefficients()
    assert coef["cold_weight_ms_per_MB"] == pytest.approx(0.04, rel=1e-6)
    assert coef["cold_identified"] is True
    for net in (_chain("conv", 12, 0.01, 9.0), _chain("conv", 3, 0.01, 9.0),
                _chain("conv", 4, 0.01, 8.5), _chain("conv", 6, 2.0, 3.0)):
        assert f.predict_ms(net) == pytest.approx(cost(net), rel=1e-6)
        # the cold weights are a named term of the prediction, with the kernels' shares its sum
        w, moved = sum(k.weight_bytes for k in net), sum(k.bytes for k in net)
        assert f.terms(net)["cold_weight_ms"] == pytest.approx(0.04 * (moved > cache) * w / 1e6,
                                                               rel=1e-6, abs=1e-12)
        assert sum(f.kernel_ms(k) for k in net) + sum(f.terms(net).values()) == \
            pytest.approx(f.predict_ms(net), rel=1e-9)
    warm_only = [r for r in rows if sum(k.bytes for k in r[2]) <= cache]
    assert fit({"synthetic": warm_only}, cache_bytes=cache)["synthetic"].cold_identified is False


def _on_map(kind: str, mb: float, window: int = 3) -> Kernel:
    """A kernel of ``kind`` on 8 channels that reads and writes ``mb`` MB each."""
    b = int(mb * 1e6)
    return Kernel(kind, (kind[0],), 0, 2 * b, window, 1, 1, 8, 8, in_bytes=b, out_bytes=b)


def test_the_switch_cost_is_identified_by_mixed_chains_beside_same_kernel_chains() -> None:
    """A synthetic runtime charges 0.04 ms plus 0.03 ms per MB of its input whenever a
    convolution follows a different kernel (the input written by another kernel's threads, in the other
    core's cache): fitted on one-kernel cells, same-kernel chains and mixed chains, both are
    recovered and a network of alternating kernels is predicted at its cost; without mixed
    chains the terms are left out (coefficients 0, ``switch_identified`` False) rather than
    guessed."""
    conv = functools.partial(_on_map, "conv")
    act = functools.partial(_on_map, "activation", window=1)

    def cost(ks: list[Kernel]) -> float:
        per = {"conv": (0.01, 0.02), "activation": (0.002, 0.01)}
        moved = sum(k.in_bytes for k in switched(ks)) / 1e6
        return 0.01 + 0.04 * switches(ks) + 0.03 * moved + sum(
            per[k.kind][0] + per[k.kind][1] * k.bytes / 1e6 for k in ks)

    same = [[make(mb)] * n for make in (conv, act) for mb in (0.1, 0.4, 1.5) for n in (1, 4)]
    mixed = [[(conv if i % 2 else act)(mb) for i in range(n)] for mb in (0.1, 0.4, 1.5)
             for n in (4, 8)]
    rows = [(f"r{i}", cost(ks), ks) for i, ks in enumerate(same + mixed)]
    f = fit({"synthetic": rows})["synthetic"]
    coef = f.coefficients()
    assert coef["switch_identified"] is True
    assert coef["switch_ms"] == pytest.approx(0.04, rel=1e-6)
    assert coef["switch_ms_per_MB"] == pytest.approx(0.03, rel=1e-6)
    net = [(conv if i % 3 else act)(0.7) for i in range(30)]  # act, conv, conv, act, ...
    # a switch is a convolution after another kernel: act, conv, conv, act, ... has 10
    assert switches(net) == 10 and switches([conv(0.7)] * 5) == 0
    assert switches([conv(0.7), act(0.7)]) == 0 and switches([act(0.7), conv(0.7)]) == 1
    assert f.predict_ms(net) == pytest.approx(cost(net), rel=1e-6)
    # the prediction, split: each kernel's share and the whole inference's terms, named
    terms = f.terms(net)
    assert terms["switch_ms"] == pytest.approx(0.04 * 10, rel=1e-6)
    assert terms["switched_input_ms"] == pytest.approx(0.03 * 10 * 0.7, rel=1e-6)
    assert sum(f.kernel_ms(k) for k in net) + sum(terms.values()) == \
        pytest.approx(f.predict_ms(net), rel=1e-9)
    alone = fit({"synthetic": [r for r in rows if switches(r[2]) == 0]})["synthetic"]
    assert alone.coefficients()["switch_identified"] is False
    assert alone.coefficients()["switch_ms"] == 0.0
    assert alone.coefficients()["switch_ms_per_MB"] == 0.0


def test_a_compiled_runtime_has_no_switch_terms() -> None:
    """The switch terms are an eager runtime's (a call's setup, found warm only when the same
    kernel ran just before): a backend whose cells include the runtime's own layout
    conversions ran a compiled graph, and gets none, even with mixed chains beside same-kernel
    ones. On OpenVINO with its aliased conversions priced apart, the fit had found 19.5 µs per
    switched MB and put networks of many small kernels at 1.05-1.23x their time."""
    conv = functools.partial(_on_map, "conv")
    act = functools.partial(_on_map, "activation", window=1)

    def reorder(mb: float) -> Kernel:
        b = int(mb * 1e6)
        return Kernel(REORDER_KINDS[0], ("r",), 0, 2 * b, 0, 0, 0, 0, 0, in_bytes=b, out_bytes=b)

    def cost(ks: list[Kernel]) -> float:  # a switch costs 0.04 ms, as in the eager test above
        return 0.01 + 0.04 * switches(ks) + sum(0.01 + 0.02 * k.bytes / 1e6 for k in ks)

    same = [[make(mb)] * n for make in (conv, act) for mb in (0.1, 0.4, 1.5) for n in (1, 4)]
    mixed = [[(conv if i % 2 else act)(mb) for i in range(n)] for mb in (0.1, 0.4, 1.5)
             for n in (4, 8)]
    eager = [(f"r{i}", cost(ks), ks) for i, ks in enumerate(same + mixed)]
    graph = [(s, ms, [reorder(0.1)] + ks + [reorder(0.1)]) for s, ms, ks in eager]
    assert fit({"eager": eager})["eager"].switch_identified is True
    f = fit({"compiled": graph})["compiled"]
    coef = f.coefficients()
    assert coef["switch_identified"] is False
    assert coef["switch_ms"] == 0.0 and coef["switch_ms_per_MB"] == 0.0


def test_a_chained_shape_is_priced_by_its_measurement_not_its_kinds_regression(monkeypatch) -> None:
    """A synthetic runtime: every convolution costs 0.004 ms + 0.02 ms/MB, except one shape whose
    library path costs 3x that (eager PyTorch's 1x1 convolution of 36 channels at 32x32 took 4x
    the one of 72 at 16x16, with the same FLOPs). Fitted on single kernels and their chains, a
    network of the odd shape is priced by the chain's marginal cost (within 2%); the kind's
    regression alone, which no feature lets follow the odd shape, misses it by over 30%."""
    def conv(c: int, mb: float) -> Kernel:
        b = int(mb * 1e6)
        return Kernel("conv", ("c",), 0, 2 * b, 3, 1, 1, c, c, in_bytes=b, out_bytes=b)

    odd = conv(48, 0.6)

    def cost(ks: list[Kernel]) -> float:
        return 0.01 + sum((3.0 if k == odd else 1.0) * (0.004 + 0.02 * k.bytes / 1e6) for k in ks)

    shapes = [(16, 0.2), (24, 0.5), (32, 1.0), (48, 0.6), (64, 1.6), (96, 0.3), (128, 2.4)]
    rows = [(f"c{c}x{n}", cost(ks), ks) for c, mb in shapes for n in (1, 4)
            for ks in [[conv(c, mb)] * n]]
    assert sorted(chain_pairs(rows)) == [(2 * i, 2 * i + 1) for i in range(len(shapes))]
    f = fit({"synthetic": rows})["synthetic"]
    net = [odd] * 10
    assert all(f.is_measured(k) for k in net) and not f.is_measured(conv(40, 0.8))
    assert f.predict_ms(net) == pytest.approx(cost(net), rel=0.02)
    monkeypatch.setattr(f, "measured", {})
    assert f.predict_ms(net) < 0.7 * cost(net)


def test_chain_pairs_match_a_chain_with_its_own_single_kernel_only() -> None:
    def conv(c: int) -> Kernel:
        return Kernel("conv", ("c",), 0, 2000, 3, 1, 1, c, c, in_bytes=1000, out_bytes=1000)

    relu = Kernel("activation", ("a",), 0, 2000, 0, 0, 1, 8, 8, in_bytes=1000, out_bytes=1000)
    reorder = Kernel(REORDER_KINDS[0], ("r",), 0, 2000, 0, 0, 0, 0, 0, in_bytes=1000,
                     out_bytes=1000)
    rows = [("a1", 1.0, [reorder, conv(8), reorder]),  # a single kernel between conversions
            ("a4", 2.0, [reorder] + [conv(8)] * 4 + [reorder]),
            ("b4", 2.0, [conv(16)] * 4),  # no single kernel of its shape
            ("mix", 2.0, [conv(8), relu] * 2)]  # not one shape
    assert chain_pairs(rows) == [(0, 1)]


def test_a_copying_concatenation_is_priced_as_an_in_place_one_where_no_copy_was_measured() -> None:
    """A store measured before OpenVINO's copying concatenations were told apart has in-place
    ones only (the preset's ``concat(x, x)``): a network's copying concatenation is then priced
    as one, and the prediction says so; with copying cells, at their own, higher price."""
    def cat(kind: str, mb: float) -> Kernel:
        b = int(mb * 1e6)
        return Kernel(kind, ("cat",), 0, b, 0, 0, 1, 36, 72, in_bytes=b // 3, out_bytes=2 * b // 3)

    def cost(k: Kernel) -> float:
        return 0.005 + (0.0007 if k.kind == CONCAT_INPLACE else 0.003 + 0.025 * k.bytes / 1e6)

    in_place = [(f"i{mb}", cost(cat(CONCAT_INPLACE, mb)), [cat(CONCAT_INPLACE, mb)])
                for mb in (0.2, 0.6, 1.2)]
    f = fit({"ov": in_place})["ov"]
    copy = cat(CONCAT, 1.2)
    assert f.predict_ms([copy]) == pytest.approx(cost(cat(CONCAT_INPLACE, 1.2)), rel=1e-6)
    (note,) = f.out_of_range([copy])
    assert f"no {CONCAT} kernel was measured; priced as {CONCAT_INPLACE}" in note
    copies = [(f"c{mb}", cost(cat(CONCAT, mb)), [cat(CONCAT, mb)]) for mb in (0.2, 0.6, 1.2)]
    g = fit({"ov": in_place + copies})["ov"]
    assert g.predict_ms([copy]) == pytest.approx(cost(copy), rel=1e-6)
    assert g.out_of_range([copy]) == []


def test_a_kind_no_cell_measured_is_priced_as_its_broader_kind() -> None:
    """A store measured before ``linear_act`` was a kind has linear cells only: a linear layer
    with its ReLU is then priced as a linear layer (not at 0, which an unfitted kind's
    coefficients would give) and the prediction says so. With cells of its own, it is priced
    by them."""
    def linear(kind: str, mb: float) -> Kernel:
        b = int(mb * 1e6)
        return Kernel(kind, ("l",), 0, b, 0, 0, 1, 256, 256, in_bytes=1024, out_bytes=1024,
                      weight_bytes=b)

    def cost(ks: list[Kernel]) -> float:
        per = {"linear": 0.01, LINEAR_ACT: 0.02}
        return 0.005 + sum(0.002 + per[k.kind] * k.weight_bytes / 1e6 for k in ks)

    bare = [(f"l{mb}", cost([linear("linear", mb)]), [linear("linear", mb)]) for mb in (0.3, 1, 3)]
    f = fit({"synthetic": bare})["synthetic"]
    fused = linear(LINEAR_ACT, 2.0)
    assert f.predict_ms([fused]) == pytest.approx(cost([linear("linear", 2.0)]), rel=1e-6)
    assert f.kernel_ms(fused) > 0.015  # its weights at the linear kind's 0.01 ms per MB, not 0
    (note,) = f.out_of_range([fused])
    assert f"no {LINEAR_ACT} kernel was measured; priced as linear" in note
    own = [(f"a{mb}", cost([linear(LINEAR_ACT, mb)]), [linear(LINEAR_ACT, mb)]) for mb in (0.3, 1, 3)]
    g = fit({"synthetic": bare + own})["synthetic"]
    assert g.predict_ms([fused]) == pytest.approx(cost([fused]), rel=1e-6)
    assert g.out_of_range([fused]) == []


def test_activation_functions_are_priced_by_the_bytes_they_write() -> None:
    """A synthetic machine where a convolution costs 0.01 ms + 0.05 ms/MB, a ReLU-like
    activation 0.002 ms + 0.01 ms/MB, and a GELU or Tanh costs a further 0.12 or 0.6 ms per MB it
    writes, alone or fused into a convolution (as OpenVINO fuses it), and a GELU run as a kernel
    of its own 0.005 ms more a call (eager PyTorch's erf GELU on a short vector). Fitted on
    one-function cells of each form, the per-MB and per-call costs come back, a fused kernel is
    priced with its function's cost and no call, and a function no cell evaluated is priced as a
    ReLU and said so."""
    per_mb = {"gelu": 0.12, "tanh": 0.6}
    per_call = {"gelu": 0.005, "tanh": 0.0}

    def kernel(kind: str, mb: float, function: str | None = None) -> Kernel:
        b = int(mb * 1e6)
        fused = ((function, b),) if function else ()
        return Kernel(kind, (kind,), 0, 2 * b, 3 if kind == "conv" else 0, 1, 1, 8, 8,
                      in_bytes=b, out_bytes=b, functions=fused)

    def cost(ks: list[Kernel]) -> float:
        own = {"conv": (0.01, 0.05), "activation": (0.002, 0.01)}
        return 0.02 + sum(own[k.kind][0] + own[k.kind][1] * 2 * k.out_bytes / 1e6
                          + sum(per_mb[f] * w / 1e6 + (per_call[f] if k.kind == "activation"
                                                       else 0.0) for f, w in k.functions)
                          for k in ks)

    rows = []
    for i, mb in enumerate((0.05, 0.1, 0.2, 0.4, 0.8, 1.6)):
        for fn in (None, "gelu", "tanh"):
            for ks in ([kernel("activation", mb, fn)], [kernel("conv", mb, fn)],
                       [kernel("conv", mb), kernel("activation", mb, fn)]):
                rows.append((f"{fn}-{i}-{len(ks)}-{ks[0].kind}", cost(ks), ks))
    f = fit({"synthetic": rows})["synthetic"]
    got = f.coefficients()["function_ms_per_MB"]
    assert got == pytest.approx(per_mb, rel=1e-6)
    assert f.coefficients()["function_ms_per_call"] == pytest.approx(per_call, abs=1e-9)
    alone, in_conv = [kernel("activation", 0.01, "gelu")], [kernel("conv", 0.01, "gelu")]
    assert f.predict_ms(alone) == pytest.approx(cost(alone), rel=1e-6)  # its call paid
    assert f.predict_ms(in_conv) == pytest.approx(cost(in_conv), rel=1e-6)  # none when fused
    fused = [kernel("conv", 0.3, "tanh")]
    assert f.predict_ms(fused) == pytest.approx(cost(fused), rel=1e-6)
    assert f.kernel_ms(fused[0]) == pytest.approx(cost(fused) - 0.02, rel=1e-6)
    assert f.out_of_range(fused) == []
    silu = [kernel("conv", 0.3, "silu")]
    assert f.predict_ms(silu) == pytest.approx(cost([kernel("conv", 0.3)]), rel=1e-6)
    (note,) = f.out_of_range(silu)
    assert "no kernel with a silu activation was measured; priced as a ReLU" in note


def test_a_chain_with_its_function_pairs_with_its_own_single_and_pays_it_once() -> None:
    """Chains of a convolution with a fused GELU beside chains of the bare one, of the same
    shape: each chain pairs with the single of its own functions; the chained shape is priced
    by measurement (the marginal cost without the function) and the function on top, once, so
    a network of such kernels is predicted at its cost, and its kernels' shares plus the
    whole inference's terms (here the overhead alone) add up to the prediction."""
    gelu_per_mb, overhead = 0.12, 0.02

    def conv(mb: float, gelu: bool = False) -> Kernel:
        b = int(mb * 1e6)
        return Kernel("conv", ("c",), int(mb * 4e7), 2 * b, 3, 1, 1, 8, 8, in_bytes=b,
                      out_bytes=b, functions=(("gelu", b),) if gelu else ())

    def cost(ks: list[Kernel]) -> float:
        return overhead + sum(0.01 + 0.05 * 2 * k.out_bytes / 1e6
                              + sum(gelu_per_mb * w / 1e6 for _, w in k.functions) for k in ks)

    rows = []
    for mb in (0.05, 0.1, 0.2, 0.4, 0.8):
        for gelu in (False, True):
            for n in (1, 4):
                ks = [conv(mb, gelu)] * n
                rows.append((f"{mb}-{'gelu' if gelu else 'bare'}-{n}", cost(ks), ks))
    pairs = chain_pairs(rows)
    assert len(pairs) == 10
    assert all(rows[a][0].rsplit("-", 1)[0] == rows[b][0].rsplit("-", 1)[0] for a, b in pairs)
    f = fit({"synthetic": rows})["synthetic"]
    assert f.coefficients()["function_ms_per_MB"]["gelu"] == pytest.approx(gelu_per_mb, rel=1e-6)
    net = [conv(0.2, gelu=True)] * 3 + [conv(0.4)] * 2
    assert all(f.is_measured(k) for k in net)
    assert f.predict_ms(net) == pytest.approx(cost(net), rel=1e-6)
    assert sum(f.kernel_ms(k) for k in net) + sum(f.terms(net).values()) == \
        pytest.approx(f.predict_ms(net), rel=1e-9)
    assert f.terms(net)["overhead_ms"] == pytest.approx(overhead, rel=1e-6)
    assert f.kernel_ms(conv(0.2, gelu=True)) - f.kernel_ms(conv(0.2)) == \
        pytest.approx(gelu_per_mb * 0.2, rel=1e-6)
