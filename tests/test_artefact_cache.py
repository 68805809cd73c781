"""The IR cache is keyed by what the model is: an edit to a file the model file imports is a
new model (issue 28, item 1), seen as a user meets it: ``accelbench run --model`` twice."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch

from harness.backends import artefacts
from tests.conftest import run_cli

NET = """
import torch
from blocks import Block

def make():
    torch.manual_seed(0)
    return Block().eval(), torch.randn(1, 3, 16, 16)
"""

BLOCKS = """
import torch

WIDTH = {width}

class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, WIDTH, 3, padding=1)
        self.head = torch.nn.Linear(WIDTH, 4)

    def forward(self, x):
        y = {act}
        return self.head(y.mean(dim=(2, 3)))
"""


def _write(folder: Path, width: int, act: str = "torch.relu(self.conv(x))") -> None:
    (folder / "blocks.py").write_text(BLOCKS.format(width=width, act=act))


def _openvino_cell(folder: Path, store: Path) -> dict:
    proc = run_cli("run", "--model", f"{folder / 'net.py'}:make", "--store", str(store),
                   "--budget", "0.3", "--threads", "1", "--no-report", "--json", cwd=folder,
                   env={"ACCELBENCH_CACHE": str(folder / "ircache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    with sqlite3.connect(store) as conn:
        meta = conn.execute("SELECT meta FROM cells WHERE backend LIKE 'openvino%' "
                            "ORDER BY id DESC LIMIT 1").fetchone()[0]
    cells = json.loads(proc.stdout)["cells"]
    assert [c["status"] for c in cells] == ["done", "done"], cells
    return json.loads(meta)


@pytest.mark.slow
def test_an_edit_to_an_imported_file_is_converted_again(tmp_path: Path):
    (tmp_path / "net.py").write_text(NET)
    store = tmp_path / "s.sqlite"
    _write(tmp_path, width=8)
    first = _openvino_cell(tmp_path, store)
    again = _openvino_cell(tmp_path, store)
    assert first["ir_cache_hit"] is False and again["ir_cache_hit"] is True
    assert again["artefact_key"] == first["artefact_key"]  # same model, other processes

    _write(tmp_path, width=16)  # net.py is byte for byte the same
    wider = _openvino_cell(tmp_path, store)
    assert wider["ir_cache_hit"] is False and wider["artefact_key"] != first["artefact_key"]
    assert wider["parity"]["ok"] is True  # OpenVINO ran the new network, not the cached one

    # Same outputs (relu is idempotent), another program: a new key all the same.
    _write(tmp_path, width=16, act="torch.relu(torch.relu(self.conv(x)))")
    same_out = _openvino_cell(tmp_path, store)
    assert same_out["ir_cache_hit"] is False
    assert len({first["artefact_key"], wider["artefact_key"], same_out["artefact_key"]}) == 3
    assert len(list((tmp_path / "ircache").glob("*.xml"))) == 3


def test_key_follows_weights_input_shape_and_settings_not_the_object():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    x = torch.randn(1, 3, 8, 8)
    key = artefacts.artefact_key("openvino-ir", net, x)
    clone = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    clone.load_state_dict(net.state_dict())
    assert artefacts.artefact_key("openvino-ir", clone, x) == key
    with torch.no_grad():
        clone[0].bias[0] += 1e-3
    assert artefacts.artefact_key("openvino-ir", clone, x) != key
    assert artefacts.artefact_key("openvino-ir", net, torch.randn(1, 3, 9, 9)) != key
    assert artefacts.artefact_key("int8-ir", net, x) != key
    assert artefacts.artefact_key("openvino-ir", net, x, precision="int8") != key
    assert key.startswith("openvino-ir:")


def test_a_user_model_cell_is_named_by_file_name_and_content(tmp_path: Path) -> None:
    import hashlib
    import re

    specs = []
    for folder in ("alice", "bob"):  # two checkouts of the same file
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "net.py").write_text(NET)
        _write(tmp_path / folder, width=8)
        proc = run_cli("run", "--model", f"{tmp_path / folder / 'net.py'}:make", "--dry-run",
                       "--json")
        assert proc.returncode == 0, proc.stderr
        specs += [c["spec"] for c in json.loads(proc.stdout)["cells"]]
    digest = hashlib.sha256(NET.encode()).hexdigest()[:8]
    assert set(specs) == {f"@net.py#{digest}:make"}  # no absolute path: comparable anywhere
    (tmp_path / "bob" / "net.py").write_text(NET + "\n# edited\n")
    proc = run_cli("run", "--model", f"{tmp_path / 'bob' / 'net.py'}:make", "--dry-run", "--json")
    (edited,) = {c["spec"] for c in json.loads(proc.stdout)["cells"]}
    assert re.fullmatch(r"@net\.py#[0-9a-f]{8}:make", edited) and edited != specs[0]
