"""The spec grammar: strict, canonical, never a traceback."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archs
from archs import SpecError
from tests.conftest import FAMILY_NAMES


@pytest.mark.parametrize("text, canonical", [
    ("mobilenetv2", "mobilenetv2"),
    ("mobilenetv2:width=1.0", "mobilenetv2"),
    ("mobilenetv2: res = 160 , width=0.75", "mobilenetv2:width=0.75,res=160"),
    ("MobileNetV2:res=160,width=0.75", "mobilenetv2:width=0.75,res=160"),
    ("resnet:depth=50", "resnet"),
    ("resnet:depth=18", "resnet:depth=18"),
])
def test_canonical_form(text, canonical):
    assert archs.format_spec(archs.parse(text)) == canonical


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_round_trip_of_every_family_default_and_small(name):
    fam = archs.family(name)
    assert archs.format_spec(archs.parse(name)) == name
    text = name + ":" + ",".join(f"{k}={v}" for k, v in fam.small) if fam.small else name
    once = archs.format_spec(archs.parse(text))
    assert archs.format_spec(archs.parse(once)) == once


@pytest.mark.parametrize("text, words", [
    ("nosuchnet", ["unknown family", "mobilenetv2", "resnet"]),
    ("resnet:depth=51", ["depth", "18", "50"]),
    ("resnet:colour=red", ["no parameter", "colour", "depth"]),
    ("mobilenetv2:width=abc", ["width", "number"]),
    ("mobilenetv2:res=5", ["res", "out of range"]),
    ("mobilenetv2:res=160,res=128", ["twice"]),
    ("mobilenetv2:res", ["key=value"]),
    ("mobilenetv2:", ["nothing after"]),
    ("", ["empty"]),
    ("mobilenetv2:act=swishy", ["act", "relu"]),
    ("mobilenetv2:width=nan", ["finite"]),
    ("mobilenetv2:res=1e3", ["integer"]),
])
def test_bad_specs_name_what_is_valid(text, words):
    with pytest.raises(SpecError) as err:
        archs.resolve(text)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_parses_or_raises_spec_error(text):
    try:
        spec = archs.parse(text)
    except SpecError:
        return
    assert archs.format_spec(archs.parse(archs.format_spec(spec))) == archs.format_spec(spec)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FAMILY_NAMES), st.lists(st.tuples(
    st.sampled_from(["depth", "width", "res", "batch", "act", "kernel", "stride", "cells", "x"]),
    st.text(alphabet="0123456789.-+abcdefxyz_", min_size=1, max_size=6)), max_size=4))
def test_any_key_value_resolves_or_raises_spec_error(name, pairs):
    text = name + (":" + ",".join(f"{k}={v}" for k, v in pairs) if pairs else "")
    try:
        values = archs.resolve(text)
    except SpecError:
        return
    assert values["batch"] >= 1
