"""Imports go one way: no cycle between modules, and none between packages.

Every ``import`` in ``include/returnwatch`` and ``replay/returnwatch_replay`` counts, the ones inside functions included: an
import moved into a function to dodge a cycle at start-up still ties the two modules together.
The graph is read from the source with ``ast`` (nothing is imported), then searched for
strongly connected components.

``KNOWN_CYCLES`` lists the cycles the codebase still has, each to be broken by moving the shared
piece down a layer (docs/architecture.md). The test fails on any cycle not listed, and on a
listed one that no longer exists, so the list only shrinks.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The product, and the test doubles beside it (which may import the product, never the reverse:
# tests/test_packaging.py).
PACKAGES = {"returnwatch": ROOT / "include", "returnwatch_replay": ROOT / "replay"}

# Cycles present when this test was written; each is a set of modules (or packages) that import
# one another. Remove an entry when the cycle is broken; never add one.
KNOWN_MODULE_CYCLES: list[frozenset[str]] = []
KNOWN_PACKAGE_CYCLES: list[frozenset[str]] = []


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports (anywhere in the file)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from a.b import c``: the module ``a.b.c`` if there is one, else ``a.b``'s name c
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        for target in targets:
            # the longest known module the target names (``a.b.func`` -> ``a.b``)
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # a module's own parent packages are imported with it: not an edge of its own
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def module_graph() -> dict[str, set[str]]:
    paths = {
        module_name(p, root): p
        for package, root in PACKAGES.items()
        for p in (root / package).rglob("*.py")
    }
    modules = set(paths)
    return {name: imports_of(path, name, modules) for name, path in paths.items()}


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else module


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        for target in targets:
            if package_of(target) != package_of(module):
                packages[package_of(module)].add(package_of(target))
    return packages


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    nodes = set(graph) | {t for ts in graph.values() for t in ts}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def describe(found: list[frozenset[str]]) -> str:
    return "\n".join(" <-> ".join(sorted(c)) for c in found)


def test_no_new_cycle_between_modules() -> None:
    found = cycles(module_graph())
    new = [c for c in found if c not in KNOWN_MODULE_CYCLES]
    gone = [c for c in KNOWN_MODULE_CYCLES if c not in found]
    assert not new, "modules that import one another (break the cycle):\n" + describe(new)
    assert not gone, "cycles broken: remove them from KNOWN_MODULE_CYCLES:\n" + describe(gone)


def test_no_new_cycle_between_packages() -> None:
    found = cycles(package_graph(module_graph()))
    new = [c for c in found if c not in KNOWN_PACKAGE_CYCLES]
    gone = [c for c in KNOWN_PACKAGE_CYCLES if c not in found]
    assert not new, "packages that import one another (break the cycle):\n" + describe(new)
    assert not gone, "cycles broken: remove them from KNOWN_PACKAGE_CYCLES:\n" + describe(gone)


def test_the_search_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    assert cycles({"a": {"b"}, "b": set()}) == []
