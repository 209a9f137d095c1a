"""The lab's modules import one way: each imports from its own layer and the layers below it
(``lib.LAYERS``, lowest first), and no module reaches itself through lib's imports, not even
through an import inside a function (which only hides a circle until that function runs)."""

from __future__ import annotations

import ast

import lib
from lib.core.paths import PROJ_ROOT

LIB = PROJ_ROOT / "lib"


def lib_modules() -> dict[str, str]:
    """Dotted name under lib ("data.audio") -> its source, for every module of every layer."""
    return {
        f"{path.parent.name}.{path.stem}": path.read_text(encoding="utf-8")
        for path in sorted(LIB.glob("*/*.py"))
        if path.stem != "__init__"
    }


def imported_modules(source: str, modules: set[str]) -> set[str]:
    """The lib modules ("layer.module") that ``source`` imports anywhere (top level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lib":
            package = node.module.removeprefix("lib").removeprefix(".")
            found |= {f"{package}.{alias.name}" for alias in node.names} | {package}
        elif isinstance(node, ast.Import):
            found |= {alias.name.removeprefix("lib.") for alias in node.names if alias.name.startswith("lib.")}
    return found & modules


def lib_imports() -> dict[str, set[str]]:
    """Module -> the lib modules it imports."""
    sources = lib_modules()
    return {module: imported_modules(source, set(sources)) - {module} for module, source in sources.items()}


def against_the_layers(graph: dict[str, set[str]], layers: tuple[str, ...]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a module imports from a layer above its own, or from no layer."""
    rank = {layer: index for index, layer in enumerate(layers)}
    wrong = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            own, other = module.split(".")[0], target.split(".")[0]
            if own not in rank or other not in rank or rank[other] > rank[own]:
                wrong.append((module, target))
    return wrong


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


def test_every_module_lives_in_a_layer():
    assert {path.parent.name for path in LIB.glob("*/*.py")} == set(lib.LAYERS)
    assert sorted(path.name for path in LIB.glob("*.py")) == ["__init__.py"]  # nothing outside the layers
    graph = lib_imports()
    assert len(graph) > 30 and sum(map(len, graph.values())) > 100  # the walk does find the imports


def test_imports_flow_down_the_layers():
    assert against_the_layers(lib_imports(), lib.LAYERS) == []


def test_no_module_of_lib_imports_itself_through_others():
    assert circles(lib_imports()) == []


def test_the_checks_find_a_circle_and_an_import_upwards():
    graph = {"data.a": {"models.b"}, "models.b": {"models.c"}, "models.c": {"data.a"}, "lab.d": {"data.a"}}
    assert circles(graph) == [
        ["data.a", "models.b", "models.c", "data.a"],
        ["models.b", "models.c", "data.a", "models.b"],
        ["models.c", "data.a", "models.b", "models.c"],
    ]
    assert against_the_layers(graph, ("core", "data", "models", "lab")) == [("data.a", "models.b")]
    source = "def f():\n    from lib.models import codec\n    import lib.core.paths\nfrom lib.data.audio import x\n"
    assert imported_modules(source, {"models.codec", "core.paths", "data.audio", "data.clips"}) == {
        "models.codec",
        "core.paths",
        "data.audio",
    }
