"""The import graph of cdb has no cycle: module-level and function-level imports alike (a lazy
import inside a function is still a dependency), ``if TYPE_CHECKING:`` blocks aside."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _modules() -> Iterator[tuple[str, Path]]:
    """Every module of the package by its import name (``commands/`` ships as cdb_cli.commands)."""
    for root, prefix in (
        (REPO / "cdb_cli", ("cdb_cli",)),
        (REPO / "commands", ("cdb_cli", "commands")),
    ):
        for path in sorted(root.rglob("*.py")):
            parts = [*prefix, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, known: set[str]) -> set[str]:
    """The cdb modules a module imports; ``from pkg import sub`` depends on ``pkg.sub``, and on
    ``pkg`` only when a name it takes is not a submodule."""
    found: set[str] = set()
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{alias.name}" for alias in node.names}
            found.update(subs & known)
            if subs - known:
                found.add(node.module)
    return found & known


def _walk(tree: ast.AST) -> Iterator[ast.AST]:
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _type_checking(child):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others."""
    reach = {node: _reach(graph, node) for node in graph}
    groups = {
        tuple(sorted({node} | {other for other in reach[node] if node in reach[other]}))
        for node in graph
        if node in reach[node]
    }
    return sorted(list(group) for group in groups)


def test_the_import_graph_has_no_cycle() -> None:
    modules = dict(_modules())
    known = set(modules)
    graph = {
        name: _imports(ast.parse(path.read_text(encoding="utf-8")), known) - {name}
        for name, path in modules.items()
    }
    assert len(graph) > 100
    assert sum(len(targets) for targets in graph.values()) > 300  # the graph is really read
    assert _cycles(graph) == []


def test_a_cycle_is_found_when_there_is_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
