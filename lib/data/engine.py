"""Preparation's per-file work on Apache Beam: every core of this machine by default, a cluster with options.

Decoding and resampling are what preparing a folder costs; each file is independent. The pipeline is
one step: the files' tasks, reshuffled over the workers, each decoded by :func:`lib.data.decoding.decode_to_work`
into the work folder (clips, then the entry that marks them done). The collection then copies the clips
into its shards in the folder's order (:func:`lib.data.collection.prepare_collection`), so the shards,
the journal and the manifest are those of a preparation in one process.

By default the pipeline runs on Beam's DirectRunner in multi-processing mode with one worker per core.
Any other runner is a matter of options (``LML_BEAM_OPTIONS``, ``make data BEAM_OPTIONS=...``), e.g.
``--runner=FlinkRunner --flink_master=host:8081 --environment_type=EXTERNAL --environment_config=localhost:50000``
with a pool of this project's workers on every machine of the cluster (:func:`serve_worker_pool`,
``make beam-worker``): Beam's default worker is a container without this project's code and packages.
The workers must see the folder and the work folder at the same paths (a shared file system).

May import: :mod:`lib.core`, :mod:`lib.data.decoding`.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from lib.core.fileio import atomic_write_bytes, config_from_json
from lib.data.decoding import CollectionConfig, FileTask, decode_to_work, read_work

logger = logging.getLogger(__name__)

OPTIONS_ENV_VAR = "LML_BEAM_OPTIONS"  # extra pipeline options, shell-quoted (a runner, its master, ...)


class _QuietImport(logging.Filter):
    """Drops the notice Beam logs on import about Google Cloud clients this project does not use."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def _import_beam():
    """apache_beam, imported without its Google Cloud notices (and without configuring the root logger)."""
    root = logging.getLogger()
    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder:  # logging.warning() on a root without handlers would install one (basicConfig)
        root.addHandler(placeholder)
    quiet = _QuietImport()
    root.addFilter(quiet)
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    try:
        import apache_beam

        return apache_beam
    finally:
        root.removeFilter(quiet)
        if placeholder:
            root.removeHandler(placeholder)


def pipeline_arguments(workers: int, extra: list[str] | None = None) -> list[str]:
    """Beam's arguments: the DirectRunner on ``workers`` processes, then ``extra`` (default: the
    ``LML_BEAM_OPTIONS`` environment variable), whose settings win."""
    extra = shlex.split(os.environ.get(OPTIONS_ENV_VAR, "")) if extra is None else extra
    return [
        "--runner=DirectRunner",
        f"--direct_num_workers={workers}",
        "--direct_running_mode=multi_processing",
        "--default_sdk_harness_log_level=ERROR",
        *extra,
    ]


def default_workers() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def decode_on_beam(
    tasks: list[FileTask],
    config: CollectionConfig,
    work_folder: Path,
    *,
    workers: int | None = None,
    options: list[str] | None = None,
) -> float:
    """Decode every task into ``work_folder`` with a Beam pipeline; return the seconds it took.

    Args:
        tasks: the files still to decode.
        config: the collection's settings (sample rate, clip, hop, block, gain).
        work_folder: where each file's clips and entry go (shared by the workers).
        workers: processes of the DirectRunner (default: one per core).
        options: extra pipeline options (default: ``LML_BEAM_OPTIONS``).
    """
    if not tasks:
        return 0.0
    beam = _import_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    workers = workers or default_workers()
    arguments = pipeline_arguments(min(workers, len(tasks)), options)
    started = time.perf_counter()
    decode = _DecodeToWork(asdict(config), str(work_folder))
    with beam.Pipeline(options=PipelineOptions(arguments)) as pipeline:
        _ = (
            pipeline
            | "files" >> beam.Create([asdict(task) for task in tasks])
            | "spread over the workers" >> beam.Reshuffle()
            | "decode" >> beam.Map(decode)
        )
    seconds = time.perf_counter() - started
    runner = [argument for argument in arguments if argument.startswith("--runner=")][-1]  # the last one wins
    logger.info("decoded %d file(s) with Apache Beam (%s, %d workers) in %.1f s", len(tasks), runner, workers, seconds)
    return seconds


class _DecodeToWork:
    """The pipeline's step, picklable: a task (as a dict) in, its status out; the clips go to the work folder."""

    def __init__(self, config: dict, work_folder: str) -> None:
        self.config, self.work_folder = config, work_folder

    def __call__(self, task: dict) -> str:
        entry = decode_to_work(
            FileTask(**task), config_from_json(CollectionConfig, self.config), Path(self.work_folder)
        )
        return entry["status"]


def decode_in_subprocess(
    tasks: list[FileTask],
    config: CollectionConfig,
    work_folder: Path,
    *,
    workers: int | None = None,
    options: list[str] | None = None,
) -> float:
    """:func:`decode_on_beam` in a fresh Python process (``python -m lib.data.engine``); its seconds.

    A process of its own keeps the pipeline out of its caller's environment: in a Jupyter kernel Beam
    turns interactive and imports its DataFrame layer, which this project's pandas does not suit.
    The pipeline's log goes to ``work_folder/engine.log``; a failure raises with its last lines.
    """
    work_folder = Path(work_folder)
    work_folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "tasks": [asdict(task) for task in tasks],
        "config": asdict(config),
        "work_folder": str(work_folder),
        "workers": workers,
        "options": options,
    }
    spec_path = atomic_write_bytes(work_folder / "engine.json", json.dumps(spec).encode("utf-8"), overwrite=True)
    log_path = work_folder / "engine.log"
    started = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        finished = subprocess.run(
            [sys.executable, "-m", "lib.data.engine", str(spec_path)], stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if finished.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-12:]
        raise RuntimeError(f"exit status {finished.returncode}: " + " / ".join(tail))
    return time.perf_counter() - started


def worker_pool_environment(environment: dict[str, str] | None = None) -> dict[str, str]:
    """``environment`` (default: this process's) with this interpreter's folder first on ``PATH`` and this
    project first on ``PYTHONPATH``: Beam's worker pool starts each worker as ``python``, which must then be
    an interpreter with this project's packages (a virtual environment's folder holds one by that name).

    Raises
    ------
    RuntimeError
        If this interpreter's folder holds no ``python`` (a system ``python3`` without it).
    """
    environment = dict(os.environ if environment is None else environment)
    folder = Path(sys.executable).parent
    if not (folder / "python").exists():
        raise RuntimeError(f"{folder} has no 'python': run the worker pool from the project's .venv (make setup)")
    project = str(Path(__file__).resolve().parents[2])
    environment["PATH"] = os.pathsep.join([str(folder), *filter(None, [environment.get("PATH")])])
    environment["PYTHONPATH"] = os.pathsep.join([project, *filter(None, [environment.get("PYTHONPATH")])])
    return environment


def worker_pool_command(port: int) -> list[str]:
    """The command that serves Beam workers with this project's code on ``port`` of this machine."""
    if not 0 < port < 65536:
        raise ValueError(f"a worker pool's port lies in 1-65535, got {port}")
    return [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"]


def serve_worker_pool(port: int) -> int:
    """Serve this project's Beam workers on ``port`` until interrupted: what a cluster's machines run, so that a
    pipeline sent with ``--environment_type=EXTERNAL --environment_config=localhost:PORT`` decodes there."""
    command = worker_pool_command(port)
    print(f"serving Beam workers (this project's code, {sys.executable}) on localhost:{port}; Ctrl-C stops")
    try:
        return subprocess.run(command, env=worker_pool_environment(), check=False).returncode
    except KeyboardInterrupt:
        return 0


def main(arguments: list[str]) -> int:
    """``python -m lib.data.engine SPEC.json``: run :func:`decode_on_beam` as the spec says;
    ``python -m lib.data.engine worker-pool PORT``: :func:`serve_worker_pool`."""
    if len(arguments) == 2 and arguments[0] == "worker-pool" and arguments[1].isdigit():
        return serve_worker_pool(int(arguments[1]))
    if len(arguments) != 1:
        print("usage: python -m lib.data.engine SPEC.json | worker-pool PORT", file=sys.stderr)
        return 2
    spec = json.loads(Path(arguments[0]).read_text(encoding="utf-8"))
    config = config_from_json(CollectionConfig, spec["config"])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    decode_on_beam(
        [FileTask(**task) for task in spec["tasks"]],
        config,
        Path(spec["work_folder"]),
        workers=spec["workers"],
        options=spec["options"],
    )
    return 0


class BackgroundDecoding:
    """:func:`decode_in_subprocess` watched from a thread, so that the collection copies each file's clips
    into its shards (in the folder's order) while the workers decode the next files.

    :meth:`wait_for` returns a task's finished work as soon as it is there; None once the pipeline has
    ended without it (the caller then decodes it itself); the pipeline's own error if it failed.
    """

    POLL_SECONDS = 0.02

    def __init__(self, tasks: list[FileTask], config: CollectionConfig, work_folder: Path, **options) -> None:
        self.config, self.work_folder = config, Path(work_folder)
        self.seconds = 0.0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(tasks, options), name="beam-decoding", daemon=True)
        self.thread.start()

    def _run(self, tasks: list[FileTask], options: dict) -> None:
        try:
            self.seconds = decode_in_subprocess(tasks, self.config, self.work_folder, **options)
        except BaseException as error:  # handed to the waiting thread, which raises it
            self.error = error

    def wait_for(self, task: FileTask) -> tuple[dict, np.ndarray] | None:
        """``task``'s entry and clips (:func:`lib.data.decoding.read_work`) once decoded."""
        while True:
            finished = not self.thread.is_alive()  # read before the work: a file finished just now is found
            done = read_work(task, self.config, self.work_folder)
            if done is not None:
                return done
            if finished:
                if self.error is not None:
                    raise RuntimeError(f"the Beam pipeline failed: {self.error}") from self.error
                return None
            time.sleep(self.POLL_SECONDS)

    def finish(self) -> float:
        """Wait for the pipeline to end; the seconds it took."""
        self.thread.join()
        if self.error is not None:
            raise RuntimeError(f"the Beam pipeline failed: {self.error}") from self.error
        return self.seconds


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
