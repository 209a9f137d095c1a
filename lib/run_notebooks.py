"""Run the numbered notebooks headless with papermill, stopping at the first failure.

Usage: ``python -m lib.run_notebooks notebooks/00_data.ipynb notebooks/01_autoencoder.ipynb ...``

Each executed copy goes to ``<outputs>/notebooks/``; each notebook's wall time goes to
``<outputs>/metrics/run_notebooks.json``, where ``<outputs>`` is the chosen dataset's folder
(``LML_DATASET``, see :mod:`lib.paths`). On failure the message names the notebook, the failing
cell and the error, and the executed copy (with the traceback) is kept.

Notebooks run in order, except that a notebook with a dataset of its own (notebook 05, below)
runs in a second lane beside the others when the machine has two cores and the memory for two
kernels (:func:`lanes_allowed`; ``LML_JOBS=1`` or ``make run-all JOBS=1`` turns it off): the lab
keeps about 1.4 of two cores busy one notebook at a time, and notebook 05 reads nothing the
notebooks before it make. A later notebook (06) waits for it.

After a notebook runs, its cell tagged ``results`` (at the top) gets this run's results
(:func:`lib.report.fill_results_cell`). TensorFlow's C++ start-up notices are kept out of
the kernels' stderr (``TF_CPP_MIN_LOG_LEVEL=2``).

Every numbered notebook runs on every dataset and records, inside its metrics, the parts it
cannot measure there. One whose metadata names a ``latent_music_lab.dataset`` of its own (notebook 05: the genre
collections) runs with the notes and with that dataset, writes to that dataset's outputs, and
is skipped on a folder of audio: the reason is printed and written to its metrics file.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from lib.fileio import load_json, save_json
from lib.paths import (
    DATASET_ENV_VAR,
    DEFAULT_DATASET,
    SHIPPED_DATASETS,
    dataset_choice,
    metrics_path,
    outputs_dir,
    shown,
)
from lib.report import fill_results_cell, notebook_dataset

KERNEL_NAME = "latent-music-lab"
JOBS_ENV_VAR = "LML_JOBS"  # notebooks at once: `make run-all JOBS=1` runs them one after another
SIDE_LANE_MIN_GIB = 20.0  # memory below which notebooks run one at a time (one kernel alone peaks at ~8 GiB)


def run_notebook(notebook: Path, output_folder: Path, *, kernel_name: str = KERNEL_NAME) -> float:
    """Execute one notebook with papermill; return the seconds it took."""
    import papermill

    output_folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    papermill.execute_notebook(
        str(notebook),
        str(output_folder / notebook.name),
        kernel_name=kernel_name,
        cwd=str(notebook.parent),
        progress_bar=False,
        log_output=False,
    )
    return time.perf_counter() - started


def skip_reason(notebook: Path, dataset: str) -> str | None:
    """Why ``notebook`` cannot run on ``dataset``, or None when it can."""
    metadata = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {}).get("latent_music_lab", {})
    own = metadata.get("dataset")
    if own and dataset not in (DEFAULT_DATASET, own):
        return f"works on the shipped {own} dataset: run it with `make run-all` or `make run-all DATASET={own}`"
    return None


def describe_failure(notebook: Path, error: Exception) -> str:
    """One readable line for a failed notebook: which cell, which error."""
    cell = getattr(error, "cell_index", None)
    execution_count = getattr(error, "exec_count", None)
    name = getattr(error, "ename", type(error).__name__)
    value = getattr(error, "evalue", str(error))
    where = f"cell {cell} (execution count {execution_count})" if cell is not None else "before any cell ran"
    return f"FAILED {notebook}: {where}: {name}: {value}"


def lanes_allowed() -> int:
    """How many notebooks may run at once: ``LML_JOBS`` if set, else 2 on a machine with at least two
    cores and ``SIDE_LANE_MIN_GIB`` of memory (two kernels hold their data at the same time), else 1."""
    chosen = os.environ.get(JOBS_ENV_VAR, "").strip()
    if chosen:
        if not chosen.isdigit() or int(chosen) < 1:
            raise ValueError(f"{JOBS_ENV_VAR} must be a whole number of at least 1, got {chosen!r}")
        return int(chosen)
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return 2 if (os.cpu_count() or 1) >= 2 and memory_gib >= SIDE_LANE_MIN_GIB else 1


def plan(notebooks: list[Path], lanes: int) -> tuple[list[Path], list[Path]]:
    """(main lane, side lane): with two lanes, a notebook with a dataset of its own (notebook 05) runs
    beside the others, since none before it reads what it makes; every other notebook runs in order,
    and one numbered after a side-lane notebook waits for it (notebook 06 may read 05's model)."""
    if lanes < 2:
        return notebooks, []
    side = [notebook for notebook in notebooks if notebook_dataset(notebook)]
    return [notebook for notebook in notebooks if notebook not in side], side


def main(arguments: list[str]) -> int:
    """Run every notebook named in ``arguments``; return a process exit code."""
    if not arguments:
        print("usage: python -m lib.run_notebooks NOTEBOOK.ipynb [...]", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # inherited by the kernels
    if dataset_choice() not in SHIPPED_DATASETS:  # the kernels run in notebooks/: pass an absolute folder
        os.environ[DATASET_ENV_VAR] = str(Path(dataset_choice()).expanduser().resolve())
    runner = _Runner(outputs_dir() / "notebooks", metrics_path("run_notebooks"))
    notebooks = []
    for name in arguments:
        notebook = Path(name).resolve()
        reason = skip_reason(notebook, dataset_choice())
        if reason:
            print(f"skipping {name}: {reason}", flush=True)
            save_json(metrics_path(notebook.stem), {"skipped": reason, "dataset": dataset_choice()}, overwrite=True)
        else:
            notebooks.append(notebook)
    main_lane, side_lane = plan(notebooks, lanes_allowed())
    side = threading.Thread(target=runner.run_lane, args=(side_lane,), daemon=True)
    if side_lane:
        names = ", ".join(notebook.name for notebook in side_lane)
        print(f"running {names} beside the others (set {JOBS_ENV_VAR}=1 for one at a time)", flush=True)
        side.start()
    for notebook in main_lane:
        if side_lane and notebook.name > side_lane[0].name:
            side.join()  # it may read what the side lane makes
        if not runner.run_one(notebook):
            break
    if side.is_alive():
        side.join()
    return 1 if runner.failed else 0


class _Runner:
    """Runs notebooks (from one or two lanes), records their wall times, and stops at a failure."""

    def __init__(self, output_folder: Path, timings_path: Path) -> None:
        self.output_folder, self.timings_path = output_folder, timings_path
        self.timings = load_json(timings_path) if timings_path.exists() else {}
        self.lock = threading.Lock()
        self.failed = False

    def run_lane(self, notebooks: list[Path]) -> None:
        for notebook in notebooks:
            if not self.run_one(notebook):
                return

    def run_one(self, notebook: Path) -> bool:
        """Run one notebook unless a failure stopped the run; True when it ran and passed."""
        if self.failed:
            return False
        print(f"running {notebook.name} ...", flush=True)
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        try:
            seconds = run_notebook(notebook, self.output_folder)
        except Exception as error:  # papermill raises several types; all stop the run
            self.failed = True
            print(describe_failure(notebook, error), file=sys.stderr)
            print(f"the executed copy with the traceback is {self.output_folder / notebook.name}", file=sys.stderr)
            return False
        fill_results_cell(self.output_folder / notebook.name, notebook.stem, dataset=notebook_dataset(notebook))
        print(f"  {notebook.name} done in {seconds:.0f} s -> {shown(self.output_folder / notebook.name)}", flush=True)
        with self.lock:  # wall time of the latest run of each notebook, for the README and `make check`
            self.timings[notebook.stem] = {
                "seconds": round(seconds, 1),
                "started": started,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            save_json(self.timings_path, self.timings, overwrite=True, announce=False)
        return not self.failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
