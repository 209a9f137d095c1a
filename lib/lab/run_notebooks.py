"""Run the numbered notebooks headless with papermill, in order, stopping at the first failure.

Usage: ``python -m lib.lab.run_notebooks notebooks/00_data.ipynb notebooks/01_autoencoder.ipynb ...``

Each executed copy goes to ``<outputs>/notebooks/``; each notebook's wall time (on a folder, also per
hour of its audio) and peak resident memory (this process, its kernel and their children, summed; see
:class:`ResidentPeak`) go to ``<outputs>/metrics/run_notebooks.json``, where ``<outputs>`` is the chosen
dataset's folder (``LML_DATASET``, see :mod:`lib.core.paths`). On failure the message names the notebook, the failing
cell and the error, and the executed copy (with the traceback) is kept.

After a notebook runs, its cell tagged ``results`` (at the top) gets this run's results
(:func:`lib.lab.report.fill_results_cell`). TensorFlow's C++ start-up notices are kept out of
the kernels' stderr (``TF_CPP_MIN_LOG_LEVEL=2``).

Every numbered notebook runs on every dataset and records, inside its metrics, the parts it
cannot measure there (``{"skipped": reason}``: on a folder of one label, the label judge and transfer
between labels). One whose metadata names a ``latent_music_lab.dataset`` of its own (notebook 05: the
genre collections) works on that dataset in the notes' run and writes to its outputs; on a folder it
works on the folder.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import psutil

from lib.core.fileio import load_json, save_json
from lib.core.paths import (
    DATASET_ENV_VAR,
    SHIPPED_DATASETS,
    data_dir,
    dataset_choice,
    metrics_path,
    outputs_dir,
    shown,
)
from lib.lab.checks import stage_dataset
from lib.lab.report import fill_results_cell

KERNEL_NAME = "latent-music-lab"


class ResidentPeak:
    """The largest resident memory (MiB) of this process and all its descendants together, sampled every
    ``interval`` seconds by a thread while the ``with`` block runs (the kernel and the processes it starts,
    e.g. Beam's workers, included). Shared pages count once per process, so the figure errs high."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def sample(self) -> float:
        """The resident memory of the process tree now (MiB)."""
        me = psutil.Process()
        total = 0
        for process in [me, *me.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):  # it ended between the listing and the read
                continue
        return total / 2**20

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, self.sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> ResidentPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


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


def describe_failure(notebook: Path, error: Exception) -> str:
    """One readable line for a failed notebook: which cell, which error."""
    cell = getattr(error, "cell_index", None)
    execution_count = getattr(error, "exec_count", None)
    name = getattr(error, "ename", type(error).__name__)
    value = getattr(error, "evalue", str(error))
    where = f"cell {cell} (execution count {execution_count})" if cell is not None else "before any cell ran"
    return f"FAILED {notebook}: {where}: {name}: {value}"


def main(arguments: list[str]) -> int:
    """Run every notebook named in ``arguments``; return a process exit code."""
    usage = "usage: python -m lib.lab.run_notebooks NOTEBOOK.ipynb [...]"
    if arguments[:1] in (["-h"], ["--help"]):
        print(usage)
        return 0
    if not arguments or any(name.startswith("-") for name in arguments):
        print(usage, file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # inherited by the kernels
    if dataset_choice() not in SHIPPED_DATASETS:  # the kernels run in notebooks/: pass an absolute folder
        os.environ[DATASET_ENV_VAR] = str(Path(dataset_choice()).expanduser().resolve())
    output_folder = outputs_dir() / "notebooks"
    timings_path = metrics_path("run_notebooks")
    timings = load_json(timings_path) if timings_path.exists() else {}
    for name in arguments:
        notebook = Path(name).resolve()
        print(f"running {name} ...", flush=True)
        try:
            with ResidentPeak() as resident:
                seconds = run_notebook(notebook, output_folder)
        except Exception as error:  # papermill raises several types; all stop the run
            print(describe_failure(Path(name), error), file=sys.stderr)
            print(f"the executed copy with the traceback is {output_folder / notebook.name}", file=sys.stderr)
            return 1
        fill_results_cell(output_folder / notebook.name, notebook.stem, dataset=stage_dataset(notebook))
        print(
            f"  done in {seconds:.0f} s, peak {resident.peak_mib / 1024:.1f} GiB resident -> "
            f"{shown(output_folder / notebook.name)}",
            flush=True,
        )
        # Wall time and peak memory of the latest run of each notebook, for the README and `make check`.
        timings[notebook.stem] = {
            "seconds": round(seconds, 1),
            "peak_resident_mib": round(resident.peak_mib),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        hours = audio_hours()
        if hours:  # a folder's run states its time per hour of audio
            timings[notebook.stem] |= {"hours_of_audio": round(hours, 3), "seconds_per_hour": round(seconds / hours, 1)}
        save_json(timings_path, timings, overwrite=True, announce=False)
    hours = audio_hours()
    if hours:
        total = sum(timings[Path(name).stem]["seconds"] for name in arguments)
        print(f"{total / 60:.1f} min for {hours:.2f} h of audio: {total / 60 / hours:.1f} min per hour", flush=True)
    peak = max(timings[Path(name).stem].get("peak_resident_mib", 0) for name in arguments)
    print(f"peak resident memory of any notebook: {peak / 1024:.1f} GiB", flush=True)
    return 0


def audio_hours() -> float | None:
    """Hours of audio in the chosen folder's prepared collection; None for the shipped datasets."""
    if dataset_choice() in SHIPPED_DATASETS:
        return None
    info = data_dir() / "collection.json"
    return float(load_json(info)["hours"]) if info.exists() else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
