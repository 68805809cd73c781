"""A user's own model: ``path/to/file.py:factory`` where ``factory() -> (nn.Module, Tensor)``.

Why strict: this runs the user's file, so every way it can go wrong (no such file, not Python,
no such function, the wrong return value, an exception inside it) becomes a ``SpecError`` that
says which of those it was, with the user's own message and none of the harness's internals.
Only a ``.py`` file and an identifier are accepted: nothing here evaluates text.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Any

from .spec import SpecError


def parse_ref(ref: str) -> tuple[Path, str]:
    """``"models/net.py:make"`` -> ``(Path("models/net.py"), "make")``; text only, no file I/O.

    The one parser of ``file.py:factory`` (the session config uses it too).
    """
    if not isinstance(ref, str) or ":" not in ref:
        raise SpecError(f"model {ref!r}: expected path/to/file.py:factory")
    path_text, _, factory = ref.rpartition(":")
    if not path_text.endswith(".py"):
        raise SpecError(f"model {ref!r}: {path_text!r} is not a .py file "
                        "(expected path/to/file.py:factory)")
    if not factory.isidentifier():
        raise SpecError(f"model {ref!r}: {factory!r} is not a Python function name")
    return Path(path_text).expanduser(), factory


def split_ref(ref: str) -> tuple[Path, str]:
    """``parse_ref`` plus: the file exists."""
    path, factory = parse_ref(ref)
    if not path.is_file():
        raise SpecError(f"model {ref!r}: no such file {str(path)!r}")
    return path, factory


def check_ref(ref: str) -> None:
    """What can be checked without running the user's code: the file exists, is Python, and
    defines ``factory`` at module level (a def, an assignment or an import). Why not import it:
    importing runs the user's code, which belongs in a worker process."""
    path, factory = split_ref(ref)
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise SpecError(f"model {ref!r}: {path.name} is not readable Python: {_say(exc)}") from None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(a.name == "*" for a in node.names):
                return  # a star import may define it: the worker will tell
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            return  # definitions under a condition: only running the file can tell
    if factory not in names:
        defined = sorted(n for n in names if not n.startswith("_"))
        raise SpecError(f"model {ref!r}: {path.name} defines no function {factory!r}"
                        + (f"; it defines {', '.join(defined)}" if defined else ""))


def load_model(ref: str, seed: int = 0) -> tuple[Any, Any]:
    """Import the file, call the factory with torch seeded by ``seed``; eval-mode module.

    The file's folder goes first on ``sys.path`` so a model split over sibling modules
    (``from mixer import ConvMixer``) imports as it does when the user runs it themselves.
    """
    import torch
    from torch import nn

    path, factory_name = split_ref(ref)
    resolved = path.resolve()
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
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
        raise SpecError(f"model {ref!r}: importing {path.name} failed: {_say(exc)}"
                        f"{_where(exc)}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise SpecError(f"model {ref!r}: {path.name} defines no function {factory_name!r}")
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            result = factory()
    except Exception as exc:
        raise SpecError(f"model {ref!r}: {factory_name}() raised {_say(exc)}{_where(exc)}") from None
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


def _where(exc: BaseException) -> str:
    """`` (at net.py:12)`` — the innermost frame in the user's own files (not torch's or ours)."""
    ours = (Path(__file__).resolve().parent, Path(__file__).resolve().parent.parent / "harness",
            Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve())
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<") and "site-packages" not in f.filename
              and not any(Path(f.filename).resolve().is_relative_to(d) for d in ours)]
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f" (at {Path(exc.filename).name}:{exc.lineno})"
    return f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
