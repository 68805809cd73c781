"""``accelbench``: a thin command line over archs, harness and reports.

Every user-facing error class maps to exit 2 with a one-paragraph message and no traceback;
anything else is a bug and keeps its traceback so it can be reported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import archs

from . import __version__
from .config import ConfigError
from .store import StoreError

DEFAULT_STORE = Path("results/accelbench.sqlite")


class UsageError(Exception):
    """Bad usage found after argument parsing (exit 2)."""


def user_errors() -> tuple[type[Exception], ...]:
    """The exception classes that mean bad input (exit 2), not a bug.

    The backends' error is included only once its module is loaded: a command that never
    imported the backends (and so never pays torch's import) cannot raise it.
    """
    errors: list[type[Exception]] = [archs.SpecError, ConfigError, StoreError, UsageError]
    base = sys.modules.get("harness.backends.base")
    if base is not None:
        errors.append(base.BackendError)
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `accelbench archs | head`
        return 0
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise  # a bug: keep the traceback
        print(f"accelbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside a session's own handling (which saves and says how
        print("accelbench: interrupted", file=sys.stderr)  # to resume): nothing to save
        return 130


def build_parser() -> argparse.ArgumentParser:
    from . import cli_run, cli_store

    parser = argparse.ArgumentParser(
        prog="accelbench",
        description="How much faster does OpenVINO run this architecture than PyTorch, and why?",
    )
    parser.add_argument("--version", action="version", version=f"accelbench {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("archs", help="list families, their parameters, defaults and ranges")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_archs)

    p = sub.add_parser("profile", help="FLOPs, params, working set and per-layer table of a spec")
    p.add_argument("spec", help="e.g. mobilenetv2:width=0.75,res=160")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--limit", type=int, default=None, help="show at most N layers in the table")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("machine", help="the machine fingerprint recorded with every result")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_machine)

    cli_run.add_parser(sub)
    cli_store.add_parsers(sub)
    return parser


def print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def cmd_archs(args: argparse.Namespace) -> int:
    families = archs.list_archs()
    if args.json:
        print_json([f.as_json() for f in families])
        return 0
    for fam in families:
        print(f"{fam.name}: {fam.doc}")
        for p in fam.params:
            default = "derived" if p.default is None else p.default
            doc = f"  {p.doc}" if p.doc else ""
            print(f"    {p.describe():<44} default {default}{doc}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from archs.profiling import format_table

    prof = archs.profile(args.spec)
    if args.json:
        print_json(prof.as_json())
        return 0
    print(format_table(prof, limit=args.limit))
    return 0


def cmd_machine(args: argparse.Namespace) -> int:
    from .machine import fingerprint

    fp = fingerprint()
    if args.json:
        print_json(fp)
        return 0
    cpu = fp.get("cpu", {})
    print(f"machine {fp['id']} ({fp.get('hostname')})")
    print(f"  cpu      {cpu.get('brand_raw')}, {cpu.get('count')} logical cores")
    caches = ", ".join(f"{k} {v // 1024} KiB" for k, v in fp.get("caches", {}).items()
                       if isinstance(v, int))
    print(f"  caches   {caches}")
    isa = [k for k, v in fp.get("isa", {}).items() if v]
    print(f"  isa      {' '.join(isa) or '-'}")
    print(f"  openvino {fp.get('openvino_devices')}")
    print(f"  versions {fp.get('versions')}")
    for name, c in fp.get("counters", {}).items():
        print(f"  counters {name}: {'ok' if c.get('ok') else 'unavailable'} - {c.get('why')}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
