"""``accelbench``: a thin command line over archs, harness and reports.

One module per group of commands (``info``: archs, profile, machine; ``run``; ``stored``:
report, sessions, merge), ``common`` for what they share, ``progress`` for the live display,
``preflight`` for ``run --dry-run``'s throwaway build.
Every user-facing error class maps to exit 2 with a one-paragraph message and no traceback;
anything else is a bug and keeps its traceback so it can be reported.
"""

from __future__ import annotations

import argparse
import sys

from harness import __version__
from harness.cli import compare, exchange, explain, info, peak, predict, run, stored
from harness.cli.common import user_errors


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
    parser = argparse.ArgumentParser(
        prog="accelbench",
        description="How much faster does OpenVINO run this architecture than PyTorch, and why?",
    )
    parser.add_argument("--version", action="version", version=f"accelbench {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")
    info.add_parsers(sub)
    run.add_parser(sub)
    stored.add_parsers(sub)
    peak.add_parser(sub)
    compare.add_parser(sub)
    exchange.add_parsers(sub)
    explain.add_parser(sub)
    predict.add_parser(sub)
    return parser
