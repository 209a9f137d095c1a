"""Where a notebook's time and memory go, cell by cell.

Usage: ``.venv/bin/python scripts/notebook_memory.py NOTEBOOK [OUTPUT.json]``, with the environment of the
run to look at (e.g. ``LML_DATASET=~/Music/jazz``; ``LML_SMOKE=1`` for the smoke collections).

Executes NOTEBOOK with papermill into a scratch folder (the stage writes its usual outputs, as under
``make run-all``), samples the resident memory of this process and every process it starts (the kernel)
every half second, and prints, for each cell, its seconds and the peak while it ran, then the overall
peak. With OUTPUT, writes the same as JSON (``cells``: index, first line, seconds, peak_mib). On the 10 h
scale folder it showed notebook 05 peaking in its genre judge's cell, which decodes and inverts the
reconstructions of every training phrase.
"""

from __future__ import annotations

import datetime
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import papermill
import psutil

from lib.core.fileio import save_json
from lib.lab.run_notebooks import KERNEL_NAME

SAMPLE_SECONDS = 0.5


def resident_mib() -> float:
    """Resident memory of this process and all its descendants, summed, in MiB."""
    me = psutil.Process()
    total = 0
    for process in [me, *me.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.Error:  # a process that ended between the listing and the reading
            pass
    return total / 2**20


def cell_figures(executed: dict, samples: list[tuple[float, float]]) -> list[dict]:
    """Each executed cell's seconds and the peak of the ``samples`` ((unix time, MiB)) taken while it ran."""
    cells = []
    for index, cell in enumerate(executed["cells"]):
        timing = cell.get("metadata", {}).get("papermill", {})
        if not timing.get("start_time") or not timing.get("end_time"):
            continue
        start, end = (
            datetime.datetime.fromisoformat(timing[key].replace("Z", "+00:00")).timestamp()
            for key in ("start_time", "end_time")
        )
        inside = [mib for moment, mib in samples if start <= moment <= end + SAMPLE_SECONDS]
        source = "".join(cell["source"]).strip()
        cells.append(
            {
                "index": index,
                "first_line": source.splitlines()[0][:80] if source else "",
                "seconds": round(end - start, 1),
                "peak_mib": round(max(inside, default=float("nan"))),
            }
        )
    return cells


def main(arguments: list[str]) -> int:
    if not 1 <= len(arguments) <= 2 or not Path(arguments[0]).is_file():
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    notebook = Path(arguments[0]).resolve()
    samples: list[tuple[float, float]] = []
    finished = threading.Event()

    def sample() -> None:
        while not finished.is_set():
            samples.append((time.time(), resident_mib()))
            time.sleep(SAMPLE_SECONDS)

    threading.Thread(target=sample, daemon=True).start()
    with tempfile.TemporaryDirectory() as scratch:
        executed_path = Path(scratch) / notebook.name
        try:
            papermill.execute_notebook(
                str(notebook), str(executed_path), kernel_name=KERNEL_NAME, cwd=str(notebook.parent), progress_bar=False
            )
        finally:
            finished.set()
            cells = cell_figures(json.loads(executed_path.read_text()), samples) if executed_path.exists() else []
    for cell in cells:
        print(f"[{cell['index']:2d}] {cell['seconds']:7.1f} s  peak {cell['peak_mib']:6.0f} MiB  {cell['first_line']}")
    peak = round(max((mib for _, mib in samples), default=0.0))
    print(f"peak {peak} MiB")
    if len(arguments) == 2:
        save_json(Path(arguments[1]), {"notebook": notebook.name, "peak_mib": peak, "cells": cells}, overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
