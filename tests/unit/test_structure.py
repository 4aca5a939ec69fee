"""One home for each piece of knowledge: the package's import graph has no cycle, and nothing outside
``runners/`` branches on a runner's name."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import archmatrix

PACKAGE = Path(archmatrix.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every archmatrix module ``module`` imports, at module level or in functions (not typing-only)."""
    package = module if is_package else module.rpartition(".")[0]
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("archmatrix"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.startswith("archmatrix"):
                yield target
                # `from . import x` / `from .pkg import mod`: the submodule is imported too
                yield from (f"{target}.{a.name}" for a in node.names)
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges = {t for t in _imports(tree, name, path.name == "__init__.py") if t in paths and t != name}
        # importing a.b.c runs a and a.b first, but the parents' own code is their business:
        # an edge to a package means its __init__
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_relative_and_function_level_imports() -> None:
    graph = import_graph()
    assert "archmatrix.model" in graph["archmatrix.config"]  # from .model import …
    assert "archmatrix.config" in graph["archmatrix.audit.predict"]  # inside default_lanes()
    assert "archmatrix.suite.arch" in graph["archmatrix.suite.elffile"]  # from . import arch


def test_no_import_cycle_among_the_packages_modules() -> None:
    assert cycles(import_graph()) == []


def test_the_config_model_is_a_leaf() -> None:
    """model.py imports only vocabulary (profiles, errors, the suite's contract), never config or runners."""
    allowed = {"archmatrix.errors", "archmatrix.profiles", "archmatrix.suite", "archmatrix.suite.registry",
               "archmatrix.suite.spec"}
    assert import_graph()["archmatrix.model"] <= allowed


RUNNER_BRANCH = re.compile(r"\brunner\s*[!=]=|[!=]=\s*[\w.]*\brunner\b|\brunner\s+(not\s+)?in\s+[(\[{]")


def test_nothing_outside_runners_branches_on_a_runner_name() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "runners" in path.relative_to(PACKAGE).parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if RUNNER_BRANCH.search(line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_runner_branch_pattern_catches_what_it_must() -> None:
    assert RUNNER_BRANCH.search('    if lane.runner == "docker":')
    assert RUNNER_BRANCH.search('if "qemu" == job.lane.runner:')
    assert RUNNER_BRANCH.search('if lane.runner in ("qemu", "docker"):')
    assert not RUNNER_BRANCH.search("runner = runners[lane.runner]")
    assert not RUNNER_BRANCH.search("if runner_name not in runners:")
