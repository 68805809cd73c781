"""``accelbench run``: assemble a session from preset/config/flags, run it, show the speed-ups.

Flags that override the session's configuration are declared once, in ``OVERRIDES`` (flag ->
config field): building the config, comparing with a session being resumed and wording errors
all read that table, so a new session flag is one ``add_argument`` and one entry there.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Any

from rich.console import Console

from harness.cli.common import add_store_option, make_console, plural, warn
from harness.counters import choices as counter_choices
from harness.measure.scenarios import LATENCY
from harness.run.config import (
    PRESETS,
    ConfigError,
    SessionConfig,
    check_field,
    check_model_files,
    default_threads,
    load_preset,
    load_toml,
    preset_value,
    with_overrides,
)
from harness.run.workload_text import MODEL_PREFIX

EXIT_OK, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 1, 130

# flag -> SessionConfig field it overrides (argparse dest is the flag without dashes)
OVERRIDES = {"--backends": "backends", "--precision": "precisions", "--threads": "threads",
             "--budget": "budget_s", "--target": "target", "--timeout": "timeout_s",
             "--counters": "counters", "--layers": "layers", "--processes": "processes",
             "--max-processes": "max_processes", "--scenario": "scenarios", "--batch": "batches"}


def _default(name: str) -> Any:
    return next(f.default for f in fields(SessionConfig) if f.name == name)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run a benchmark session (default: the quick preset)",
        description="Time specs on every backend, store raw samples, report speed-ups. "
                    "With no spec, runs the 'quick' preset. A preset or --config file sets "
                    "its own values; the flags below override them.",
    )
    p.add_argument("specs", nargs="*", metavar="SPEC", help="e.g. mobilenetv2:width=0.5,res=128")
    p.add_argument("--preset", help=f"{' | '.join(PRESETS)} (default: quick when no SPEC is given)")
    p.add_argument("--config", metavar="FILE.toml",
                   help="a session file with a [session] table (keys: see the README)")
    p.add_argument("--model", action="append", default=[], metavar="FILE.py:FACTORY",
                   help="benchmark your own nn.Module: FACTORY() returns (module, example_input)")
    p.add_argument("--backends", help=f"comma list (default: {','.join(_default('backends'))}; "
                                      "a device as name:DEVICE, e.g. openvino:GPU; options in brackets, "
                                      "e.g. 'openvino:CPU[hint=THROUGHPUT,streams=4]')")
    p.add_argument("--precision", help="f32, bf16 or int8, comma list for several "
                                       f"(default: {','.join(_default('precisions'))})")
    p.add_argument("--threads", help="threads per backend, comma list to sweep "
                                     f"(default: all {default_threads()} cores)")
    p.add_argument("--scenario", help="latency (one request at a time; the default), throughput "
                                      "(images/s with requests in flight: OpenVINO's THROUGHPUT "
                                      "hint and an async queue; batched calls elsewhere), or "
                                      "latency,throughput for both")
    p.add_argument("--batch", help="batch sizes to sweep, comma list (e.g. 1,4,16): every spec "
                                   "runs at each (its batch= key); batched cells report images/s")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help=f"timing budget per cell (default: {_default('budget_s'):g} s for specs; "
                        f"the quick preset uses {preset_value('quick', 'budget_s'):g} s)")
    p.add_argument("--target", type=float, help="stop a cell once its median's 95%% CI is within "
                                                f"±TARGET (fraction; default {_default('target'):g})")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help=f"limit on one cell's setup (default: {_default('timeout_s'):g} s)")
    p.add_argument("--processes", type=int, metavar="N",
                   help="worker process pairs per cell, spread over the session so minutes "
                        "separate them; the interval resamples processes, then blocks "
                        f"(default {_default('processes')})")
    p.add_argument("--max-processes", type=int, metavar="N",
                   help="most process pairs a cell may get when the process level dominates "
                        "its interval and budget remains (default: twice --processes)")
    add_store_option(p)
    p.add_argument("--ladder", action="store_true",
                   help="time every rung of the baseline ladder (eager, channels_last, "
                        "torch.compile with and without freezing), openvino:CPU, then the other runtimes "
                        "(torch.compile with the OpenVINO backend, ONNX Runtime); add --precision f32,int8 "
                        "for the int8 rungs (PT2E, NNCF)")
    p.add_argument("--counters", choices=counter_choices(), help="cache/instruction counters per cell: "
                   "auto (perf where it works, else model; the default), perf, cachegrind (slow), "
                   "model, off")
    p.add_argument("--resume", nargs="?", const="", metavar="SESSION",
                   help="finish an interrupted session (default: the latest)")
    p.add_argument("--json", action="store_true", help="print the session's results as JSON")
    p.add_argument("--no-report", action="store_true", help="do not render the report files")
    p.add_argument("--dry-run", action="store_true",
                   help="check the session (build user models once, check the backends' devices) "
                        "and list its cells without measuring anything")
    p.add_argument("--layers", action="store_true", default=None,
                   help="also time every layer (after the timed blocks) and store the tables "
                        "with the cells; see `accelbench explain`")
    p.set_defaults(func=cmd_run)


def _flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The override flags the user gave, parsed and checked in the flags' own words."""
    from harness.backends import split_backend_list

    raw = {flag: getattr(args, flag[2:].replace("-", "_")) for flag in OVERRIDES}
    out: dict[str, Any] = {}
    if raw["--backends"] is not None:
        out["--backends"] = tuple(split_backend_list(raw["--backends"]))
    if raw["--precision"] is not None:
        out["--precision"] = _csv(raw["--precision"], str, "--precision")
    if raw["--scenario"] is not None:
        out["--scenario"] = _csv(raw["--scenario"], str, "--scenario")
    if raw["--batch"] is not None:
        out["--batch"] = _csv(raw["--batch"], int, "--batch")
        for b in out["--batch"]:
            check_field("batches", b, "--batch")
    if raw["--threads"] is not None:
        out["--threads"] = _csv(raw["--threads"], int, "--threads")
        for t in out["--threads"]:
            check_field("threads", t, "--threads")
    for flag in ("--budget", "--target", "--timeout", "--processes", "--max-processes"):
        if raw[flag] is not None:
            check_field(OVERRIDES[flag], raw[flag], flag)
            out[flag] = raw[flag]
    for flag in ("--counters", "--layers"):  # choices and a switch: argparse checked them
        if raw[flag] is not None:
            out[flag] = raw[flag]
    if getattr(args, "ladder", False):  # the baseline ladder: every rung and OpenVINO
        from harness.backends.ladder import ladder_backends

        if "--backends" in out:
            raise ConfigError("--ladder sets the backends; give --ladder or --backends, not both")
        out["--backends"] = ladder_backends()
    return out


def _workloads(args: argparse.Namespace) -> list[str]:
    return list(args.specs) + [MODEL_PREFIX + m for m in args.model]


def build_config(args: argparse.Namespace) -> SessionConfig:
    if args.preset and args.config:
        raise ConfigError("give --preset or --config, not both")
    workloads = _workloads(args)
    if args.config:
        base = load_toml(args.config, workloads=tuple(workloads))
    elif args.preset or not workloads:
        base = load_preset(args.preset or "quick")
    else:
        base = SessionConfig(workloads=tuple(workloads))
    flags = _flag_values(args)
    overrides = {OVERRIDES[flag]: value for flag, value in flags.items()}
    if workloads:
        overrides["workloads"] = tuple(workloads)
    return with_overrides(base, **overrides)


def _csv(text: str, kind: type, flag: str) -> tuple:
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        return tuple(kind(t) for t in items)
    except ValueError:
        raise ConfigError(f"{flag}: expected a comma list of {kind.__name__}, got {text!r}") from None


def resumed_config(args: argparse.Namespace, stored: SessionConfig, session_id: str) -> SessionConfig:
    """The stored config, after checking that what the command line asks for is the same.

    Why refuse rather than apply: the finished cells were measured under the stored settings;
    a session whose cells disagree about budget, backends or threads is no longer one
    experiment. Repeating the original command line plus ``--resume`` is fine.
    """
    if args.preset or args.config or _workloads(args):
        wanted = build_config(args)
        diff = [f.name for f in fields(SessionConfig) if f.name != "name"
                and getattr(wanted, f.name) != getattr(stored, f.name)]
        asked = {name: getattr(wanted, name) for name in diff}
    else:
        flags = _flag_values(args)
        asked = {OVERRIDES[flag]: value for flag, value in flags.items()}
        asked = {k: tuple(v) if isinstance(v, list) else v for k, v in asked.items()}
        diff = [OVERRIDES[flag] for flag in flags
                if asked[OVERRIDES[flag]] != getattr(stored, OVERRIDES[flag])]
    if not diff:
        return stored
    flag_of = {v: k for k, v in OVERRIDES.items()} | {"workloads": "SPEC/--model"}

    def show(v: Any) -> str:
        return ",".join(map(str, v)) if isinstance(v, tuple) else f"{v:g}" if isinstance(
            v, float) else str(v)

    what = "; ".join(f"{flag_of.get(name, name)} {show(asked[name])} (session: "
                     f"{show(getattr(stored, name))})" for name in diff)
    raise ConfigError(f"--resume continues session {session_id} with the settings it was started "
                      f"with, and this command line differs: {what}. Drop those options to "
                      "finish it, or leave out --resume to start a new session")


def _check_allocator_policy() -> None:
    """A bad ``ACCELBENCH_MALLOC`` is bad usage, found before any worker starts."""
    import os

    from harness.cli.common import UsageError
    from harness.run.allocator import AllocatorPolicyError, worker_env

    try:
        worker_env(os.environ)
    except AllocatorPolicyError as exc:
        raise UsageError(str(exc)) from None


def cmd_run(args: argparse.Namespace) -> int:
    from harness.run.session import run_session
    from harness.store import Store, StoreError

    out = make_console(stderr=bool(args.json))
    _check_allocator_policy()
    if args.dry_run:
        return dry_run(args)
    if args.resume is None:
        config = build_config(args)  # checked before the store is touched
        check_model_files(config)
        _warn_about(config)
    store = Store.open(args.store, create=args.resume is None)
    with store:
        resume = None
        if args.resume is not None:
            resume = store.session(args.resume) if args.resume else _latest_here(store)
            stored = SessionConfig.from_dict(resume.config, where=f"session {resume.id}")
            config = resumed_config(args, stored, resume.id)
            check_model_files(config)
        from harness.cli.progress import SessionProgress

        started: list[str] = []

        def on_start(info, total: int) -> None:  # noqa: ANN001 - a SessionInfo
            started.append(info.id)
            progress.start(info.id, total)

        try:
            with SessionProgress(out) as progress:
                outcome = run_session(
                    store, args.store.home, config, resume=resume, argv=sys.argv,
                    on_start=on_start, on_cell=progress.cell, on_block=progress.block,
                    on_wait=progress.wait,
                )
        except StoreError as e:
            if not started:
                raise
            # The store went away mid-session (server stopped, disk full): the committed cells
            # are there, the session stays resumable. Say how, in the one error paragraph.
            raise StoreError(f"{e}. Session {started[0]} keeps its saved cells; finish it with "
                             f"`accelbench run --resume {started[0]} --store {args.store.cli}`"
                             ) from None
        from harness.machine.peaks_home import machine_with_peaks

        machine = machine_with_peaks(store, outcome.info.machine_id, args.store.cli)
        from harness.machine.noise import with_session_level

        machine = with_session_level(machine)
    if outcome.interrupted:
        # The user asked to stop and the cells are saved: further Ctrl-Cs must not turn the
        # short way out (report, resume hint, exit 130) into a death by signal.
        import signal

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
    return finish(args, config, outcome, machine, out)


def _latest_here(store):  # noqa: ANN001, ANN202 - a Store, a SessionInfo
    """``--resume`` without an id: the latest session of *this* machine. In a fleet database the
    latest session overall is often another machine's, which must never be resumed here."""
    from harness.machine.fingerprint import fingerprint
    from harness.store import StoreError

    here = fingerprint()["id"]
    mine = [s for s in store.sessions() if s.machine_id in (here, None)]  # None: not recorded
    if not mine:
        raise StoreError(f"store {store.where} has no session of this machine ({here}) to resume")
    return mine[-1]


def _warn_about(config: SessionConfig) -> None:
    """What is allowed but probably not meant: said on stderr, never an error."""
    cores = default_threads()
    over = [t for t in config.threads if t > cores]
    if over:
        warn(f"--threads {','.join(map(str, over))} exceeds the {plural(cores, 'core')} this "
             "process may use; the backends will oversubscribe them and time contention")
    if len(config.backends) == 1:
        warn(f"only one backend ({config.backends[0]}): cells are timed but nothing is compared; "
             f"a speed-up needs a baseline too, e.g. --backends {_pair_for(config.backends[0])}")


def _pair_for(backend: str) -> str:
    """A backend list that compares ``backend`` with the default baseline (or the defaults)."""
    baseline = _default("baseline")
    return ",".join(_default("backends")) if backend == baseline else f"{baseline},{backend}"


def dry_run(args: argparse.Namespace) -> int:
    from harness.cli.preflight import preflight
    from harness.run.plan import plan_groups

    if args.resume is not None:
        raise ConfigError("--dry-run lists a new session's cells; it does not combine with --resume")
    config = build_config(args)
    check_model_files(config)
    _warn_about(config)
    problems = preflight(list(config.workloads), list(config.backends), MODEL_PREFIX)
    if problems:
        raise ConfigError("the session would not run as asked: " + "; ".join(problems))
    cells = [plan.key(b).as_dict() for plan in plan_groups(config, set()) for b in plan.backends]
    if args.json:
        from harness.cli.common import print_json

        print_json({"config": config.as_dict(), "cells": cells})
        return EXIT_OK
    print(f"{plural(len(cells), 'cell')} ({config.name}); budget {config.budget_s:g} s per cell, "
          f"target ±{config.target:.1%}, baseline {config.baseline}")
    for c in cells:
        print(f"  {c['spec']}  {c['backend']}  {c['precision']}  threads={c['threads']}"
              + (f"  {c['scenario']}" if c["scenario"] != LATENCY else ""))
    return EXIT_OK


def finish(args, config, outcome, machine, out: Console) -> int:
    import reports
    from harness.cli.common import write_report_files
    from harness.measure.results import DONE

    report = reports.build_report(outcome.info, outcome.cells, machine, baseline=config.baseline,
                                  store=str(args.store))
    paths = {}
    if not args.no_report:
        paths = write_report_files(report, args.store.home / outcome.info.id)
    if args.json:
        from harness.cli.common import print_json

        print_json(reports.report_json(report))
    else:
        reports.render_terminal(report, out)
        if len(config.backends) == 1:
            out.print(f"one backend compares nothing: add a baseline, e.g. --backends "
                      f"{_pair_for(config.backends[0])}", highlight=False, soft_wrap=True)
    if paths:
        out.print(f"report: {paths.get('html') or next(iter(paths.values()))}", highlight=False)
    resume_cmd = f"accelbench run --resume {outcome.info.id} --store {args.store.cli}"
    if outcome.interrupted:
        if not any(c.status == DONE for c in outcome.cells):
            out.print(f"interrupted before any cell finished: nothing to compare yet; finish the "
                      f"session with `{resume_cmd}`", highlight=False, soft_wrap=True)
        else:
            out.print(f"interrupted: {plural(len(outcome.cells), 'cell')} saved; finish with "
                      f"`{resume_cmd}`", highlight=False, soft_wrap=True)
        return EXIT_INTERRUPTED
    return EXIT_OK if all(c.status == DONE for c in outcome.cells) else EXIT_SOME_FAILED
