"""``accelbench run``: assemble a session from preset/config/flags, run it, show the speed-ups."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from harness.config import (
    MODEL_PREFIX,
    ConfigError,
    SessionConfig,
    load_preset,
    load_toml,
    with_overrides,
)
from harness.store import DEFAULT_PATH

EXIT_OK, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run a benchmark session (default: the quick preset)",
        description="Time specs on every backend, store raw samples, report speed-ups. "
                    "With no spec, runs the 'quick' preset.",
    )
    p.add_argument("specs", nargs="*", metavar="SPEC", help="e.g. mobilenetv2:width=0.5,res=128")
    p.add_argument("--preset", help="quick | paper | full")
    p.add_argument("--config", metavar="FILE.toml", help="a session file with a [session] table")
    p.add_argument("--model", action="append", default=[], metavar="FILE.py:FACTORY",
                   help="benchmark your own nn.Module: FACTORY() returns (module, example_input)")
    p.add_argument("--backends", help="comma list, e.g. torch,openvino:CPU[,torch-compile]")
    p.add_argument("--precision", help="f32 or bf16 (comma list for both)")
    p.add_argument("--threads", help="threads per backend (comma list to sweep)")
    p.add_argument("--budget", type=float, metavar="SECONDS", help="timing budget per cell")
    p.add_argument("--target", type=float, help="stop a cell once its median's 95%% CI is within "
                                                 "±TARGET (fraction; default 0.01)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="limit on one cell's setup")
    p.add_argument("--store", type=Path, default=DEFAULT_PATH, help=f"default {DEFAULT_PATH}")
    p.add_argument("--resume", nargs="?", const="", metavar="SESSION",
                   help="finish an interrupted session (default: the latest)")
    p.add_argument("--json", action="store_true", help="print the session's results as JSON")
    p.add_argument("--no-report", action="store_true", help="do not render the report files")
    p.add_argument("--dry-run", action="store_true",
                   help="check the session and list its cells without measuring anything")
    p.set_defaults(func=cmd_run)


def build_config(args: argparse.Namespace) -> SessionConfig:
    from harness.backends import split_backend_list

    if args.preset and args.config:
        raise ConfigError("give --preset or --config, not both")
    workloads = list(args.specs) + [MODEL_PREFIX + m for m in args.model]
    if args.config:
        base = load_toml(args.config, workloads=tuple(workloads))
    elif args.preset or not workloads:
        base = load_preset(args.preset or "quick")
    else:
        base = None
    overrides = {
        "workloads": tuple(workloads) if workloads else None,
        "backends": tuple(split_backend_list(args.backends)) if args.backends else None,
        "precisions": _csv(args.precision, str, "--precision"),
        "threads": _csv(args.threads, int, "--threads"),
        "budget_s": args.budget,
        "target": args.target,
        "timeout_s": args.timeout,
    }
    if base is None:
        return with_overrides(SessionConfig(workloads=tuple(workloads)), **overrides)
    return with_overrides(base, **overrides)


def _csv(text: str | None, kind: type, flag: str) -> tuple | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        return tuple(kind(t) for t in items)
    except ValueError:
        raise ConfigError(f"{flag}: expected a comma list of {kind.__name__}, got {text!r}") from None


def cmd_run(args: argparse.Namespace) -> int:
    from harness.run.session import run_session
    from harness.store import Store

    out = Console(stderr=True) if args.json else Console()
    if args.dry_run:
        return dry_run(args)
    store = Store.open(args.store, create=args.resume is None)
    with store:
        resume = None
        if args.resume is not None:
            if args.specs or args.model or args.preset or args.config:
                raise ConfigError("--resume continues a stored session; give no specs, preset or config")
            resume = store.session(args.resume or None)
            config = SessionConfig.from_dict(resume.config, where=f"session {resume.id}")
        else:
            config = build_config(args)
        from harness.cli.progress import SessionProgress

        with SessionProgress(out) as progress:
            outcome = run_session(
                store, args.store, config, resume=resume, argv=sys.argv,
                on_start=lambda info, total: progress.start(info.id, total),
                on_cell=progress.cell, on_block=progress.block,
            )
        machine = store.machine(outcome.info.machine_id) if outcome.info.machine_id else None
    if outcome.interrupted:
        # The user asked to stop and the cells are saved: further Ctrl-Cs must not turn the
        # short way out (report, resume hint, exit 130) into a death by signal.
        import signal

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
    return finish(args, config, outcome, machine, out)


def dry_run(args: argparse.Namespace) -> int:
    from harness.run.coordinator import plan_groups

    if args.resume is not None:
        raise ConfigError("--dry-run lists a new session's cells; it does not combine with --resume")
    config = build_config(args)
    cells = [plan.key(b).as_dict() for plan in plan_groups(config, set()) for b in plan.backends]
    if args.json:
        from harness.cli.common import print_json

        print_json({"config": config.as_dict(), "cells": cells})
        return EXIT_OK
    print(f"{len(cells)} cells ({config.name}); budget {config.budget_s:g} s per cell, "
          f"target ±{config.target:.1%}, baseline {config.baseline}")
    for c in cells:
        print(f"  {c['spec']}  {c['backend']}  {c['precision']}  threads={c['threads']}")
    return EXIT_OK


def finish(args, config, outcome, machine, out: Console) -> int:
    import reports

    report = reports.build_report(outcome.info, outcome.cells, machine, baseline=config.baseline,
                                  store=str(args.store))
    paths = {}
    if not args.no_report:
        paths = reports.write_report(report, args.store.parent / outcome.info.id)
    if args.json:
        from harness.cli.common import print_json

        print_json(report.as_json())
    else:
        reports.render_terminal(report, out)
    if paths:
        out.print(f"report: {paths.get('html') or next(iter(paths.values()))}", highlight=False)
    if outcome.interrupted:
        out.print(f"interrupted: {len(outcome.cells)} cells saved; finish with "
                  f"`accelbench run --resume {outcome.info.id} --store {args.store}`", highlight=False)
        return EXIT_INTERRUPTED
    from harness.results import DONE

    return EXIT_OK if all(c.status == DONE for c in outcome.cells) else EXIT_SOME_FAILED
