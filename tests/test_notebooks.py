"""The numbered notebooks keep the house's shape: the story in cells, the logic in ``lib``.

No function or class is defined in a notebook, no code cell runs much past 30 lines, and every
notebook opens the same way: a ``parameters`` cell (DATASET, SMOKE, …, SEED) and an imports cell that
ends its imports with ``rng = start_notebook("<name>", DATASET, SMOKE, SEED)``.
"""

from __future__ import annotations

import ast
import json
import os

import pytest

from lib.core.paths import PROJ_ROOT

NOTEBOOKS = sorted((PROJ_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LONGEST_CELL = 33  # "about 30": notebook 04's parameters cell holds 31 settings


def code_cells(notebook) -> list[tuple[int, str, list[str]]]:
    """(index, source, tags) of every code cell."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [
        (index, "".join(cell["source"]), cell.get("metadata", {}).get("tags", []))
        for index, cell in enumerate(cells)
        if cell["cell_type"] == "code"
    ]


def test_the_numbered_notebooks_are_found() -> None:
    assert len(NOTEBOOKS) >= 7


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_no_definitions_and_no_long_cells(notebook) -> None:
    for index, source, _ in code_cells(notebook):
        defined = [
            node.name
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        assert not defined, f"{notebook.name} cell {index} defines {defined}: such helpers belong in lib"
        lines = len(source.splitlines())
        assert lines <= LONGEST_CELL, f"{notebook.name} cell {index} has {lines} lines (at most {LONGEST_CELL})"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_parameters_and_imports_cells_have_one_shape(notebook) -> None:
    cells = code_cells(notebook)
    position = next(k for k, (_, _, tags) in enumerate(cells) if "parameters" in tags)
    parameters = cells[position][1].splitlines()
    assert parameters[:3] == ["import os", "", parameters[2]] and parameters[2].startswith(
        'DATASET = os.environ.get("LML_DATASET", "notes")'
    ), f"{notebook.name}: the parameters cell opens with import os, then DATASET"
    assert parameters[3].startswith('SMOKE = os.environ.get("LML_SMOKE", "0") == "1"'), notebook.name
    assert parameters[-1].startswith('SEED = int(os.environ.get("LML_SEED", "0"))'), notebook.name

    body = ast.parse(cells[position + 1][1]).body
    imports = [node for node in body if isinstance(node, ast.Import | ast.ImportFrom)]
    assert body[: len(imports)] == imports, f"{notebook.name}: the imports cell opens with all its imports"
    start = body[len(imports)]
    assert ast.unparse(start) == f"rng = start_notebook('{notebook.stem}', DATASET, SMOKE, SEED)", (
        f"{notebook.name}: the imports are followed by start_notebook"
    )
    for _, source, _ in cells[position + 2 :]:
        assert "start_notebook(" not in source and "os.environ[" not in source, notebook.name


def test_start_notebook_sets_what_lib_reads(monkeypatch) -> None:
    from lib.lab.notebook import start_notebook

    monkeypatch.setenv("LML_DATASET", "notes")
    monkeypatch.setenv("LML_SMOKE", "0")
    first = start_notebook("05_genres", "notes", True, 3).random(4)
    assert (PROJ_ROOT / "notebooks" / "05_genres.ipynb").exists()
    assert os.environ["LML_DATASET"] == "genres"  # notebook 05 works on its own dataset in the notes' run
    assert os.environ["LML_SMOKE"] == "1"
    start_notebook("01_autoencoder", "/music/jazz", False, 3)
    assert os.environ["LML_DATASET"] == "/music/jazz" and os.environ["LML_SMOKE"] == "0"
    assert (start_notebook("01_autoencoder", "notes", False, 3).random(4) == first).all()  # the seed decides
    with pytest.raises(FileNotFoundError, match=r"no notebook 99_nothing\.ipynb"):
        start_notebook("99_nothing", "notes", False, 0)
