"""A user's own model: ``path/to/file.py:factory`` where ``factory() -> (nn.Module, Tensor)``.

Why strict: this runs the user's file, so every way it can go wrong (no such file, not Python,
no such function, the wrong return value, an exception inside it) becomes a ``SpecError`` that
says which of those it was, with the user's own message and none of the harness's internals.
Only a ``.py`` file and an identifier are accepted: nothing here evaluates text.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import torch
from torch import nn

from .spec import SpecError


def split_ref(ref: str) -> tuple[Path, str]:
    """``"models/net.py:make"`` -> ``(Path("models/net.py"), "make")``, checked."""
    if not isinstance(ref, str) or ":" not in ref:
        raise SpecError(f"model {ref!r}: expected path/to/file.py:factory")
    path_text, _, factory = ref.rpartition(":")
    path = Path(path_text).expanduser()
    if path.suffix != ".py":
        raise SpecError(f"model {ref!r}: {path_text!r} is not a .py file")
    if not factory.isidentifier():
        raise SpecError(f"model {ref!r}: {factory!r} is not a Python function name")
    if not path.is_file():
        raise SpecError(f"model {ref!r}: no such file {str(path)!r}")
    return path, factory


def load_model(ref: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """Import the file, call the factory with torch seeded by ``seed``; eval-mode module."""
    path, factory_name = split_ref(ref)
    resolved = path.resolve()
    # A name unique to the file, so two user files called model.py do not collide.
    mod_name = "accelbench_user_" + hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(mod_name, resolved)
    if spec is None or spec.loader is None:
        raise SpecError(f"model {ref!r}: cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # @dataclass in the user's file looks its module up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise SpecError(f"model {ref!r}: importing {path.name} failed: {_say(exc)}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise SpecError(f"model {ref!r}: {path.name} defines no function {factory_name!r}")
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            result = factory()
    except Exception as exc:
        raise SpecError(f"model {ref!r}: {factory_name}() raised {_say(exc)}") from None
    if not (isinstance(result, tuple) and len(result) == 2):
        raise SpecError(
            f"model {ref!r}: {factory_name}() must return (nn.Module, Tensor), "
            f"got {type(result).__name__}"
        )
    model, example = result
    if not isinstance(model, nn.Module):
        raise SpecError(f"model {ref!r}: {factory_name}() returned {type(model).__name__} "
                        "where an nn.Module belongs")
    if not isinstance(example, torch.Tensor):
        raise SpecError(f"model {ref!r}: {factory_name}() returned {type(example).__name__} "
                        "where the example input Tensor belongs")
    return model.eval(), example


def _say(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
