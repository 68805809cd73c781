"""The house's shape: imports run one way, and the top of ``harness/`` holds packages, not rooms.

Why parse instead of import: a cycle that Python tolerates today (because one side imports
inside a function, or the import order happens to work) still means one concept split across
two homes, or a registry that imports its plug-ins; the next edit turns it into an
``ImportError`` on a partially initialised module. So every import statement counts,
function-level ones included (deferring an import hides a circle, it does not remove it), and
so do imports under ``if TYPE_CHECKING:`` (an annotation that needs the other module is the same
split concept; the fix is a small ``Protocol`` on the side that uses it). An edge goes to the
module named: ``from pkg import name`` points at ``pkg.name`` when that is a module, else at
``pkg``; importing a submodule does not add an edge to its parent package's ``__init__``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("archs", "harness", "reports")
# Modules allowed to sit loose at the top of harness/ (everything else lives in a package).
HARNESS_TOP_ALLOWED = {"__init__.py", "__main__.py"}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth (functions and ``if TYPE_CHECKING:`` included)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = mod.split(".")
                    base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                    pkg = ".".join(base + ([node.module] if node.module else []))
                else:
                    pkg = node.module or ""
                targets = [f"{pkg}.{a.name}" if f"{pkg}.{a.name}" in mods else pkg
                           for a in node.names]
            graph[mod].update(t for t in targets if t in mods and t != mod)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _path_within(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """One concrete circle inside a component, for the failure message (a -> b -> ... -> a)."""
    members = set(comp)
    start = comp[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return list(reversed(path)) + [start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def test_cycle_finder_sees_a_circle_and_a_clean_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert _path_within({"a": {"b"}, "b": {"a"}}, ["a", "b"]) == ["a", "b", "a"]


def test_graph_resolves_relative_and_submodule_imports():
    g = import_graph()
    assert "harness.measure.stats" in g["harness.measure.results"]  # function-level, absolute
    assert "reports.compare.analysis" in g["reports.compare.gates"]  # relative, from a module


def test_no_import_cycles():
    graph = import_graph()
    circles = [" -> ".join(_path_within(graph, comp)) + f"   (component: {', '.join(comp)})"
               for comp in cycles(graph)]
    assert not circles, "import cycles (make the arrows run one way):\n  " + "\n  ".join(circles)


def test_no_loose_modules_at_the_top_of_harness():
    loose = sorted(p.name for p in (ROOT / "harness").glob("*.py")
                   if p.name not in HARNESS_TOP_ALLOWED)
    assert not loose, (f"modules loose at the top of harness/: {loose}; each concept gets a "
                       "package (see docs/design.md, 'Package map')")


def test_design_document_maps_every_package_and_the_readme_links_it():
    """docs/design.md is the map a newcomer reads: a package missing from it is a room unmapped."""
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    table = design[design.index("## Package map"):design.index("## Interface contracts")]
    packages = sorted({str(p.parent.relative_to(ROOT)) for top in PACKAGES
                       for p in (ROOT / top).rglob("__init__.py")} - set(PACKAGES))
    missing = [p for p in packages if f"| `{p}` |" not in table]
    assert not missing, f"packages missing from docs/design.md's package map: {missing}"
    assert "](docs/design.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
