"""Property-based: any spec text or config value is accepted or refused cleanly (exit 0 or 2)."""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archs
from harness.run.config import SessionConfig
from tests.faults.support import (
    TINY,
    main_in_process,
)

# ---------------------------------------------------------------------- 6: any input


def assert_clean(rc: int, out: str, err: str) -> None:
    assert rc in (0, 2), (rc, out, err)
    assert "Traceback" not in err
    if rc == 2:
        assert err.startswith(("accelbench: error:", "usage:")), err
    else:
        assert "cells" in out, out


FAMILIES = {f.name: [p.name for p in f.params] for f in archs.list_archs()}
KEYS = [f.name for f in fields(SessionConfig)]
WORDS = ["", "0", "1", "-1", "16", "0.5", "1e9", "1e400", "nan", "inf", "true", "false",
         "cifar", "imagenet", "DARTS_V2", "relu", " ", "=", ",", ":", "\x00", "é", "@x.py:f"]
value_text = st.one_of(st.sampled_from(WORDS), st.integers(-2**70, 2**70).map(str),
                       st.floats().map(repr), st.text(max_size=6))


@st.composite
def near_specs(draw) -> str:
    """Spec-shaped text: a family (or not), its keys (or others), values of any kind."""
    fam = draw(st.sampled_from([*FAMILIES, "", "nope", "PLAIN"]))
    keys = [*FAMILIES.get(fam, []), "bogus", "", "res "]
    pairs = draw(st.lists(st.tuples(st.sampled_from(keys), value_text), max_size=4))
    sep = draw(st.sampled_from([":", ":", "", "::", ": "]))
    return fam + (sep + ",".join(f"{k}={v}" for k, v in pairs) if pairs or sep else "")


spec_text = st.one_of(st.text(max_size=40), near_specs())
scalars = st.one_of(st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=10),
                    st.sampled_from(WORDS), st.datetimes(), st.dates())
toml_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                     st.dictionaries(st.text(max_size=5), inner, max_size=2)),
    max_leaves=6)
plausible = {
    "workloads": st.lists(st.one_of(near_specs(), st.just(TINY), st.just("@m.py:make")),
                          max_size=3),
    "backends": st.lists(st.sampled_from(["torch", "openvino:CPU", "openvino", "torch-compile",
                                          "torch:cuda", "openvino:GPU", "tensorflow", "", ":"]),
                         max_size=3),
    "precisions": st.lists(st.sampled_from(["f32", "bf16", "f16", ""]), max_size=3),
    "threads": st.lists(st.integers(-2, 2000), max_size=3),
    "baseline": st.sampled_from(["torch", "openvino:CPU", "nope"]),
}


def toml(value) -> str:
    """A value written as TOML (the standard library reads TOML but does not write it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml(str(k))} = {toml(v)}" for k, v in value.items()) + "}"


@st.composite
def session_tables(draw) -> dict:
    chosen = draw(st.lists(st.sampled_from([*KEYS, "bogus"]), unique=True, max_size=len(KEYS)))
    return {k: draw(st.one_of(toml_values, plausible.get(k, toml_values))) for k in chosen}


FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "session.toml"


@FUZZ
@given(text=spec_text)
def test_any_spec_text_is_listed_or_refused_cleanly(text):
    assert_clean(*main_in_process("run", "--dry-run", "--", text))


@FUZZ
@given(table=session_tables())
def test_any_config_values_are_accepted_or_refused_cleanly(table, config_file):
    body = "".join(f"{toml(k)} = {toml(v)}\n" for k, v in table.items())
    config_file.write_text("[session]\n" + body, encoding="utf-8")
    assert_clean(*main_in_process("run", "--config", str(config_file), "--dry-run"))


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(
    lambda b: b"[session]\nworkloads = [\"plain\"]\n" + b)))
def test_any_config_bytes_are_accepted_or_refused_cleanly(data, config_file):
    config_file.write_bytes(data)
    assert_clean(*main_in_process("run", "--config", str(config_file), "--dry-run", "--json"))
