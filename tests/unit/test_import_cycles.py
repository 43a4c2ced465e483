"""No import cycle anywhere in the shipped code: module by module, every import edge
(type-only imports aside) points one way."""

from __future__ import annotations

import grimp

PACKAGES = ("marketplace", "outcomes", "valuation", "config")


def import_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    return {
        module: {
            imported
            for imported in graph.find_modules_directly_imported_by(module)
            if imported.split(".")[0] in PACKAGES
        }
        for module in graph.modules
        if module.split(".")[0] in PACKAGES
    }


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively: the groups of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Groups of two or more modules importing each other, and modules importing themselves.

    A package's ``__init__`` is imported by each of its modules' import (Python loads the
    parent first), so that implicit edge is not counted: only written imports are.
    """
    return [
        group
        for group in strongly_connected(graph)
        if len(group) > 1 or any(m in graph.get(m, ()) for m in group)
    ]


def test_the_shipped_code_has_no_import_cycle():
    found = cycles(import_graph())
    assert found == [], [sorted(group) for group in found]


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert sorted(sorted(g) for g in cycles(graph)) == [["a", "b", "c"], ["e"]]
