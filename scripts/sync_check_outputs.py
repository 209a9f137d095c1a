"""Refresh the committed outputs of regression-check cells from a smoke run.

Run in smoke mode (``make check-outputs``). Each notebook is executed with papermill into a
temporary folder; cells tagged ``nbval-check-output`` get their text outputs copied back into
the committed notebook; every other output is stripped, so no images or audio are committed.

A check cell whose output holds a false claim (a line ending in ``: False``) is never written:
the script names the line and leaves the notebook as it was, so a broken fact cannot become the
expected output in a diff nobody reads. (Check cells assert through :func:`lib.lab.checks.claim`, so
such a run normally fails before this point.)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat

from lib.core.paths import smoke_mode
from lib.lab.run_notebooks import run_notebook

CHECK_TAG = "nbval-check-output"
TEXT_TYPES = ("text/plain",)


def text_only(outputs: list) -> list:
    """Keep stdout and the plain-text part of results; drop stderr (logs), images, HTML and audio."""
    kept = []
    for output in outputs:
        if output.output_type == "stream" and output.name == "stdout":
            kept.append(output)
        elif output.output_type in ("execute_result", "display_data"):
            data = {key: value for key, value in output.data.items() if key in TEXT_TYPES}
            if data:
                output.data = data
                output.metadata = {}
                kept.append(output)
    return kept


class FalseClaimError(RuntimeError):
    """A check cell printed a false claim: its output must not become the expected one."""


def false_claims(outputs: list) -> list[str]:
    """The lines of a cell's stdout that state a false claim (``<text>: False``)."""
    text = "".join(output.get("text", "") for output in outputs if output.get("output_type") == "stream")
    return [line for line in text.splitlines() if line.rstrip().endswith(": False")]


def sync(notebook_path: Path) -> None:
    """Execute ``notebook_path`` and rewrite it with only its check cells' text outputs.

    Raises FalseClaimError (and writes nothing) when a check cell printed a false claim.
    """
    with tempfile.TemporaryDirectory() as folder:
        run_notebook(notebook_path.resolve(), Path(folder))
        executed = nbformat.read(Path(folder) / notebook_path.name, as_version=4)
    source = nbformat.read(notebook_path, as_version=4)
    executed_by_id = {cell.get("id"): cell for cell in executed.cells}
    refused = [
        line
        for cell in executed.cells
        if CHECK_TAG in cell.get("metadata", {}).get("tags", [])
        for line in false_claims(cell.get("outputs", []))
    ]
    if refused:
        raise FalseClaimError(f"{notebook_path}: a check cell turned false, not written: {'; '.join(refused)}")
    for cell in source.cells:
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        cell.outputs = []
        if CHECK_TAG in cell.metadata.get("tags", []):
            ran = executed_by_id[cell.get("id")]
            cell.outputs = text_only(ran.outputs)
            cell.execution_count = ran.execution_count
    nbformat.write(source, notebook_path)
    print(f"synced {notebook_path}")


if __name__ == "__main__":
    if not smoke_mode():
        sys.exit("run in smoke mode: LML_SMOKE=1 (or `make check-outputs`)")
    for name in sys.argv[1:]:
        try:
            sync(Path(name))
        except FalseClaimError as error:
            sys.exit(str(error))
