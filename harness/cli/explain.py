"""``accelbench explain``: per-layer times on each backend, grouped by layer kind.

The answer to "why is it faster": which kinds of layer (depthwise convolutions, batch norms
OpenVINO folds away, fused activations...) account for the milliseconds saved. The joining and
its charging rules live in ``harness.layers``; this module runs the workers and prints.
"""

from __future__ import annotations

import argparse
import platform
import sys

from rich.console import Console
from rich.table import Table

from harness.run.config import ConfigError, default_threads
from harness.run.workload_text import MODEL_PREFIX, canonical_workload


def add_parser(sub: argparse._SubParsersAction) -> None:
    from harness.cli.common import add_store_option

    p = sub.add_parser(
        "explain", help="per-layer times on each backend, by layer kind: where a speed-up comes from",
        description="Time every layer of one model on each backend (in a pass after the "
                    "whole-model timing), match them by module and group them by kind.",
    )
    p.add_argument("spec", nargs="?", metavar="SPEC", help="e.g. dwbottleneck:depth=4")
    p.add_argument("--model", metavar="FILE.py:FACTORY",
                   help="your own nn.Module: FACTORY() returns (module, example_input)")
    p.add_argument("--backends", default="torch,openvino:CPU",
                   help="comma list; the first is the baseline (default torch,openvino:CPU)")
    p.add_argument("--threads", type=int, help="threads per backend (default: all cores)")
    p.add_argument("--precision", default="f32", help="f32 or bf16 (default f32)")
    p.add_argument("--passes", type=int, default=30, help="profiled inferences per backend")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="limit on one backend's setup or layer pass")
    add_store_option(p, "its local folder holds the IR cache (results/ for a database): ")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from harness.backends import check_precision, parse_backend, split_backend_list
    from harness.cli.common import UsageError, make_console, print_json
    from harness.layers import explain
    from harness.layers.collect import LayersError, collect
    from harness.run.session import cache_dir_for

    if bool(args.spec) == bool(args.model):
        raise UsageError("give one SPEC or --model FILE.py:FACTORY")
    workload = canonical_workload(args.spec or MODEL_PREFIX + args.model)
    backends = [parse_backend(b).text for b in split_backend_list(args.backends)]
    check_precision(args.precision)
    threads = args.threads or default_threads()
    if threads < 1 or args.passes < 1:
        raise ConfigError("--threads and --passes must be positive")
    try:
        got = collect(workload, backends, precision=args.precision, threads=threads,
                      passes=args.passes, timeout_s=args.timeout,
                      cache_dir=cache_dir_for(args.store.home))
    except LayersError as exc:
        print(f"accelbench explain: {exc}", file=sys.stderr)
        return 1
    result = explain(workload, got["units"], got["tables"], baseline=backends[0])
    source = {"precision": args.precision, "threads": threads, "passes": args.passes,
              "machine": f"{platform.node()} ({platform.processor() or platform.machine()})"}
    if args.json:
        print_json({**result.as_json(), "source": source})
    else:
        render(result, source, make_console())  # full width when piped, as run's tables
    for warning in result.warnings:
        print(f"accelbench explain: warning: {warning}", file=sys.stderr)
    return 0


def render(result, source: dict, console: Console) -> None:  # noqa: ANN001
    """The per-kind table, then the fused groups and what matched nothing, biggest first."""
    from harness.layers.naming import ROOT

    backends = result.backends
    cov = result.coverage
    table = Table(title=f"{result.spec}: time by layer kind ({source['precision']}, "
                        f"{source['threads']} threads, {source['machine']}, median of "
                        f"{source['passes']} profiled passes)")
    table.add_column("kind")
    for b in backends:
        table.add_column(f"{b} ms", justify="right")
        table.add_column("share", justify="right")
    if len(backends) > 1:
        table.add_column("saved ms", justify="right")
        table.add_column("of saving", justify="right")
    for row in result.kinds:
        cells = [row["kind"]]
        for b in backends:
            cells += [f"{row['ms'][b]:.3f}", _pct(row["share"][b])]
        if len(backends) > 1:
            cells += [f"{row['saved_ms']:+.3f}", _pct(row["saved_share"])]
        table.add_row(*cells)
    table.add_row("layer sum", *[c for b in backends for c in (f"{result.layer_ms[b]:.3f}", "")],
                  *([""] * (2 if len(backends) > 1 else 0)))
    table.add_row("whole model", *[c for b in backends for c in
                                   (f"{result.whole_ms[b]:.3f}", f"cov {_pct(cov[b])}")],
                  *([""] * (2 if len(backends) > 1 else 0)))
    console.print(table)
    top = sorted(result.fused, key=lambda f: -max(f["ms"].values()))[:10]
    for f in top:
        costs = ", ".join(f"{b} {ms:.3f} ms" for b, ms in f["ms"].items())
        parts = " + ".join(f"{u or ROOT} [{k}]"
                           for u, k in zip(f["units"], f["kinds"], strict=True))
        console.print(f"fused on {f['backend']}: {f['primitive']} ({f['type']}) = {parts}: "
                      f"{costs}", highlight=False, markup=False)
    if len(result.fused) > len(top):
        console.print(f"... and {len(result.fused) - len(top)} more fused groups (--json lists all)")
    for u in sorted(result.unmatched, key=lambda u: -sum(u["ms"].values()))[:10]:
        costs = ", ".join(f"{b} {ms:.3f} ms" for b, ms in u["ms"].items())
        console.print(f"unmatched {u['what']} on {u['backend']}: {u['name'] or ROOT} ({u['type']}): "
                      f"{costs}", highlight=False, markup=False)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"
