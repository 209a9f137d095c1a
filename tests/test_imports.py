"""The lab's modules import one way: no module reaches itself through lib's imports, not even
through an import inside a function (which only hides a circle until that function runs)."""

from __future__ import annotations

import ast

from lib.paths import PROJ_ROOT

LIB = PROJ_ROOT / "lib"


def lib_imports() -> dict[str, set[str]]:
    """Module -> the lib modules it imports anywhere in its source (top level or inside functions)."""
    modules = {path.stem for path in LIB.glob("*.py") if path.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for module in sorted(modules):
        found: set[str] = set()
        for node in ast.walk(ast.parse((LIB / f"{module}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "lib":
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lib."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("lib.")}
        graph[module] = (found & modules) - {module}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import path that leads from a module back to itself (one per module on a circle)."""
    found = []
    for start in graph:
        stack = [(start, [start])]
        seen = set()
        while stack:
            module, path = stack.pop()
            for imported in sorted(graph[module]):
                if imported == start:
                    found.append([*path, start])
                    stack.clear()
                    break
                if imported not in seen:
                    seen.add(imported)
                    stack.append((imported, [*path, imported]))
    return found


def test_no_module_of_lib_imports_itself_through_others():
    assert circles(lib_imports()) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"data": {"models"}, "models": {"training"}, "training": {"data"}, "plots": {"data"}}) == [
        ["data", "models", "training", "data"],
        ["models", "training", "data", "models"],
        ["training", "data", "models", "training"],
    ]
