"""A benchmark session's configuration: presets, TOML files and command-line overrides.

One frozen dataclass holds everything that decides what a session measures; it is stored with
the session so ``--resume`` and reports see exactly what ran. Checks only raise (``ConfigError``
with a message naming what is valid); nothing here touches a backend or the store.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import archs
from harness.backends import DEFAULT_BACKENDS, DEFAULT_BASELINE
from harness.backends.base import PRECISIONS
from harness.measure.results import LATENCY, SCENARIOS
from harness.run.errors import ConfigError
from harness.run.workload_text import (
    MODEL_PREFIX,
    backend_parses,
    canonical_workload,
    suggest_backend,
    with_batch,
)

PRESETS = ("quick", "paper", "full", "ladder", "axes", "sparse", "kernels", "holdout",
           "holdout2")


def default_threads() -> int:
    """All cores this process may use: the same count is given to every backend."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class SessionConfig:
    """What a session measures: workloads x backends x precisions x threads, and how long.

    ``budget_s`` is the timing budget of one cell (so a comparison of two backends spends up to
    twice that); ``target`` the relative half-width of the median's 95% CI at which timing stops
    early; ``timeout_s`` the hard limit on one cell's setup (build + convert + compile).

    Interference (``harness.run.interference``): a round of blocks whose foreign CPU load
    exceeds ``max_foreign_cpu`` cores is set aside and the runner waits for a quiet machine,
    spending at most ``wait_s`` per group on disturbed rounds and pauses (apart from the
    budget); a cell needs ``min_pairs`` clean rounds (alternated block pairs) to be reported
    at all, or it is ``invalid``. Why 0.5 core: ``/proc/stat`` counts 10 ms ticks, so a pair of
    0.1 s blocks reads a quiet machine as 0–0.3 core, while one competing busy process reads
    as about 1 core on any machine; a lower limit would set quiet pairs aside at random.
    ``ACCELBENCH_MAX_FOREIGN_CPU`` changes that default (e.g. for a test suite that is not about
    interference on a shared CI runner); the value used is stored with the session and cells.
    """

    workloads: tuple[str, ...]
    backends: tuple[str, ...] = DEFAULT_BACKENDS
    precisions: tuple[str, ...] = ("f32",)
    threads: tuple[int, ...] = ()
    budget_s: float = 10.0
    target: float = 0.01
    min_samples: int = 30
    block_s: float = 0.1
    timeout_s: float = 600.0
    seed: int = 0
    baseline: str = DEFAULT_BASELINE
    name: str = "custom"
    max_foreign_cpu: float = field(default_factory=lambda: _env_number(
        "ACCELBENCH_MAX_FOREIGN_CPU", 0.5))
    wait_s: float = 60.0
    min_pairs: int = 6
    counters: str = "auto"  # harness.counters: auto | perf | cachegrind | model | off
    # Per-layer times after each comparison's timed blocks, stored in the cell's meta["layers"].
    layers: bool = False
    # Worker process pairs per cell, spread over the session (``harness.run.passes``): the
    # fewest, and the most the adaptive stop may add (0: twice ``processes``).
    processes: int = 3
    max_processes: int = 0
    # What each cell measures (harness.measure.results): latency (one request at a time) and/or
    # throughput (images per second with requests in flight: OpenVINO's THROUGHPUT hint).
    scenarios: tuple[str, ...] = (LATENCY,)
    # A batch sweep: every spec is run at each of these batch sizes (its ``batch=`` key); empty:
    # each spec's own batch.
    batches: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.workloads:
            raise ConfigError("a session needs at least one spec (or --model)")
        object.__setattr__(self, "workloads", tuple(canonical_workload(w) for w in self.workloads))
        twice = sorted({w for w in self.workloads if self.workloads.count(w) > 1})
        if twice:
            raise ConfigError(f"{', '.join(repr(w) for w in twice)} is listed twice "
                              "(after canonicalisation)")
        from harness.backends import BackendError, parse_backend

        try:
            canon = tuple(parse_backend(b).text for b in self.backends)
        except BackendError as exc:
            bad = next((b for b in self.backends if not backend_parses(b)), "")
            raise ConfigError(f"{exc}{suggest_backend(bad)}") from None
        if not canon:
            raise ConfigError("a session needs at least one backend")
        twice_b = sorted({b for b in canon if canon.count(b) > 1})
        if twice_b:
            raise ConfigError(f"backend {', '.join(twice_b)} is listed twice")
        object.__setattr__(self, "backends", canon)
        try:
            baseline = parse_backend(self.baseline).text
        except BackendError as exc:
            raise ConfigError(f"baseline: {exc}") from None
        # Speed-ups are relative to the baseline; when it is not measured, the first backend is.
        object.__setattr__(self, "baseline", baseline if baseline in canon else canon[0])
        for p in self.precisions:
            if p not in PRECISIONS:
                raise ConfigError(f"precision {p!r} is not valid; valid: {', '.join(PRECISIONS)}")
        if not self.precisions:
            raise ConfigError("a session needs at least one precision")
        if not self.threads:
            object.__setattr__(self, "threads", (default_threads(),))
        for t in self.threads:
            check_field("threads", t)
        for name in ("budget_s", "target", "block_s", "timeout_s"):
            check_field(name, getattr(self, name))
        for name in ("max_foreign_cpu", "wait_s"):
            check_field(name, getattr(self, name))
        if not isinstance(self.min_pairs, int) or isinstance(self.min_pairs, bool) \
                or not 4 <= self.min_pairs <= 10**6:
            raise ConfigError("min_pairs must be an integer from 4 (the fewest a paired-block "
                              f"interval can use) to 1000000, got {self.min_pairs!r}")
        for name in ("processes", "max_processes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            check_field(name, value)
        if self.max_processes and self.max_processes < self.processes:
            raise ConfigError(f"max_processes ({self.max_processes}) is below processes "
                              f"({self.processes}); give at least as many, or 0 for twice")
        if not isinstance(self.min_samples, int) or not 6 <= self.min_samples <= 10**7:
            raise ConfigError("min_samples must be an integer from 6 to 10000000")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**31:
            raise ConfigError("seed must be an integer from 0 to 2**31-1")
        from harness.counters import choices

        if self.counters not in choices():
            raise ConfigError(f"counters {self.counters!r} is not valid; valid: {', '.join(choices())}")
        if not isinstance(self.layers, bool):
            raise ConfigError(f"layers must be true or false, got {self.layers!r}")
        if not self.scenarios:
            raise ConfigError("a session needs at least one scenario")
        for sc in self.scenarios:
            if sc not in SCENARIOS:
                raise ConfigError(f"scenario {sc!r} is not valid; valid: {', '.join(SCENARIOS)}")
        for name, values in (("scenarios", self.scenarios), ("batches", self.batches)):
            if len(set(values)) != len(values):
                raise ConfigError(f"{name}: {', '.join(map(str, values))} lists a value twice")
        for b in self.batches:
            check_field("batches", b, "batch")
        if self.batches:
            models = [w for w in self.workloads if w.startswith(MODEL_PREFIX)]
            if models:
                raise ConfigError(f"a batch sweep applies to specs (their batch= key); "
                                  f"{models[0]} sets its own batch in its example input")

    def specs_to_run(self) -> tuple[str, ...]:
        """The workloads with the batch sweep applied: each spec at each of ``batches``
        (canonical, so ``mobilenetv2`` at batch 1 is ``mobilenetv2``), in the listed order."""
        if not self.batches:
            return self.workloads
        out: list[str] = []
        for w in self.workloads:
            for b in self.batches:
                text = with_batch(w, b)
                if text not in out:
                    out.append(text)
        return tuple(out)

    @property
    def block_cap_s(self) -> float:
        """The time cap of one timed block: blocks sized from a fast warm-up must not stretch
        to seconds when the machine slows down, or the backends stop alternating."""
        return 3 * self.block_s

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "config",
                  also_valid: tuple[str, ...] = ()) -> SessionConfig:
        """``also_valid``: keys the caller has taken out already (a TOML's ``model``), named
        in the message about unknown keys so that it lists every key the file may use."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; valid: "
                              f"{sorted(valid | set(also_valid))}")
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in ("workloads", "backends", "precisions", "threads", "scenarios",
                          "batches"):
                if f.name == "backends" and isinstance(value, str):
                    from harness.backends import split_backend_list

                    value = split_backend_list(value)  # "torch,openvino:CPU", as --backends
                elif f.name in ("precisions", "scenarios") and isinstance(value, str):
                    value = [p.strip() for p in value.split(",")]
                if isinstance(value, (str, int)):
                    value = [value]
                if not isinstance(value, list):
                    raise ConfigError(f"{where}: {f.name} must be a list")
                value = tuple(value)
                kind = int if f.name in ("threads", "batches") else str
                if not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
                    raise ConfigError(f"{where}: every item of {f.name} must be {kind.__name__}")
            elif f.name in ("budget_s", "target", "block_s", "timeout_s", "max_foreign_cpu",
                            "wait_s"):
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise ConfigError(f"{where}: {f.name} must be a number")
                value = float(value)
            elif f.name in ("min_samples", "seed", "min_pairs", "processes", "max_processes"):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ConfigError(f"{where}: {f.name} must be an integer")
            elif f.name == "layers":
                if not isinstance(value, bool):
                    raise ConfigError(f"{where}: layers must be true or false")
            elif not isinstance(value, str):
                raise ConfigError(f"{where}: {f.name} must be text")
            kwargs[f.name] = value
        if "workloads" not in kwargs:
            raise ConfigError(f"{where}: no workloads; list the specs to run, e.g. "
                              'workloads = ["mobilenetv2", "resnet:depth=18"]')
        try:
            return cls(**kwargs)
        except ConfigError as exc:  # name the file (or session) the bad value came from
            raise ConfigError(f"{where}: {exc}") from None


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r}: expected a number of cores, e.g. 0.5") from None


# Bounds of the numeric fields: one table for the dataclass's checks and the CLI's flags,
# so `--budget -1` and `budget_s = -1` in a TOML are refused by the same rule.
LIMITS: dict[str, tuple[float, float]] = {
    "threads": (1, 1024), "budget_s": (0.1, 86400), "target": (1e-4, 0.5),
    "block_s": (0.001, 60), "timeout_s": (1, 86400),
    "processes": (1, 1000), "max_processes": (0, 1000), "batches": (1, 256),
    "max_foreign_cpu": (0.01, 4096), "wait_s": (0, 86400),
}


def check_field(name: str, value: Any, label: str | None = None) -> None:
    """Raise ConfigError unless ``value`` is within ``LIMITS[name]``; ``label`` is what the
    user typed (``--budget``), so the message speaks the user's words, not the field's."""
    lo, hi = LIMITS[name]
    integral = name in ("threads", "batches")
    kind = int if integral else (int, float)
    if not isinstance(value, kind) or isinstance(value, bool) or not lo <= value <= hi:
        what = "an integer" if integral else "a number"
        raise ConfigError(f"{label or name} must be {what} from {lo:g} to {hi:g}, got {value!r}")


def check_model_files(config: SessionConfig) -> None:
    """Before a session is stored: every user model's file exists and defines its factory
    (read, not run: running the user's code is a worker's job)."""
    from archs.custom import check_ref

    for w in config.workloads:
        if w.startswith(MODEL_PREFIX):
            try:
                check_ref(w[len(MODEL_PREFIX):])
            except archs.SpecError as exc:
                raise ConfigError(str(exc)) from None


def load_toml(path: str | Path, *, workloads: tuple[str, ...] = ()) -> SessionConfig:
    """A session from a TOML file whose keys are SessionConfig's fields (table ``[session]``).

    ``workloads`` (from the command line) replace the file's, which may then be left out.
    ``model = "file.py:factory"`` (or a list) adds user models, like ``--model``; their paths,
    and those of ``"@file.py:factory"`` workloads, are relative to the TOML file's folder.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    return _from_toml_text(text, str(path), workloads, base=path.resolve().parent)


def _from_toml_text(text: str, where: str, workloads: tuple[str, ...] = (),
                    base: Path | None = None) -> SessionConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    extra = sorted(set(data) - {"session"})
    if extra or not isinstance(data.get("session"), dict):
        raise ConfigError(f"{where}: expected one [session] table, found {sorted(data) or 'nothing'}")
    table = dict(data["session"])
    models = table.pop("model", [])
    models = [models] if isinstance(models, str) else models
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ConfigError(f'{where}: model must be "file.py:factory" or a list of them')
    listed = table.get("workloads", [])
    listed = [listed] if isinstance(listed, str) else listed
    if not isinstance(listed, list):
        raise ConfigError(f"{where}: workloads must be a list")
    if models or any(isinstance(w, str) and w.startswith(MODEL_PREFIX) for w in listed):
        try:
            table["workloads"] = [
                canonical_workload(w, base) if isinstance(w, str) and w.startswith(MODEL_PREFIX)
                else w for w in [*listed, *(MODEL_PREFIX + m for m in models)]]
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if workloads:
        table["workloads"] = list(workloads)
    return SessionConfig.from_dict(table, where=where, also_valid=("model",))


def _preset_text(name: str) -> str:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return resources.files("harness").joinpath(f"presets/{name}.toml").read_text(encoding="utf-8")


def load_preset(name: str) -> SessionConfig:
    return replace(_from_toml_text(_preset_text(name), f"preset {name}"), name=name)


def preset_value(name: str, key: str) -> Any:
    """One key of a preset as written (the field's default when absent), without building the
    session: help texts need it, and building would import every family."""
    table = tomllib.loads(_preset_text(name)).get("session", {})
    return table.get(key, next(f.default for f in fields(SessionConfig) if f.name == key))


def with_overrides(config: SessionConfig, **overrides: Any) -> SessionConfig:
    """Apply command-line overrides (None = not given) and re-run every check."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(config, **given)
