"""Peak memory of one piece of work, in a process of its own: ``python -m lib.lab.memory_probe WORK SCRATCH [ARG ...]``.

``make bench`` and ``scripts/bench_preparation.py`` start this module in a fresh process so that
the figure is the work's own: a parent's peak would carry across fork and exec. The process reports
its VmHWM (Linux; ``ru_maxrss`` elsewhere) after the work's imports and again after the work, with
the seconds the work took, as one JSON line on stdout. ``WORK`` names an entry of :data:`PROBES`;
``SCRATCH`` is a folder the work may fill; further arguments go to the work.

Each probe imports what it needs, then returns the work as a function of no arguments that may
return figures of its own (a dict), which come back beside the timings.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path


def peak_mib() -> float:
    """This process's peak resident memory so far (MiB)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _notes_preparation(scratch: Path) -> Callable[[], dict]:
    """Render and prepare the default notes dataset into ``scratch``."""
    from lib.data import dataset

    def work() -> dict:
        dataset.build_dataset(dataset.default_config(), scratch / "notes", force=True)
        return {}

    return work


def _training(scratch: Path) -> Callable[[], dict]:
    """A few epochs of the stage-1 autoencoder at the notebook's sizes, on the prepared dataset."""
    from lib.data.dataset import load_dataset
    from lib.models.autoencoder import AutoencoderConfig, build_autoencoder
    from lib.models.training import TrainingConfig, fit_or_load
    from lib.spectral.basis import SpectralBasis

    def work() -> dict:
        dataset = load_dataset(build=False)
        waveforms, _ = dataset.split("train")
        spectrograms = dataset.representation.forward(waveforms)
        basis = SpectralBasis.fit(spectrograms, min(AutoencoderConfig().basis_size, len(spectrograms) - 1))
        coefficients = basis.transform(spectrograms)
        config = AutoencoderConfig.for_basis(basis.size)
        std = coefficients.std(axis=0)
        fit_or_load(
            lambda: build_autoencoder(config, std),
            (coefficients, coefficients),
            (coefficients[:64], coefficients[:64]),
            run_folder=scratch / "run",
            config=TrainingConfig(epochs=2),
            settings={"bench": True},
            verbose=2,  # no progress bar in a probe
        )
        return {}

    return work


def _folder_preparation(scratch: Path, source: str, destination: str, engine: str = "beam") -> Callable[[], dict]:
    """Prepare the folder of audio ``source`` into ``destination`` on ``engine`` (beam or local); hours,
    clips, the engine's seconds and the largest child process's peak memory (a Beam worker) come back."""
    from lib.data.collection import prepare_collection

    def work() -> dict:
        report = prepare_collection(Path(source), Path(destination), progress=False, engine=engine)
        return {
            "hours": report.hours,
            "clips": report.clips,
            "engine_seconds": report.engine_seconds,
            "largest_child_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        }

    return work


def _streamed_training(
    scratch: Path,
    prepared: str,
    basis_size: str = "64",
    sample_clips: str = "256",
    epochs: str = "1",
    steps: str = "0",
    source: str = "stream",
) -> Callable[[], dict]:
    """Stage 1 on a prepared folder without stacking it: a basis fitted on ``sample_clips`` clips, the
    training split's coefficients cached on disk in passes, then an autoencoder trained from that cache:
    ``epochs`` through :func:`~lib.models.training.fit_or_load`, or (``steps`` > 0) that many batches of
    the first epoch's order (a fixed amount of work whatever the collection's size). With ``source``
    ``"memory"`` those steps read the coefficients from memory instead (today's path, for comparison)."""
    import keras

    from lib.data.collection import load_collection
    from lib.data.stream import CoefficientFile, build_coefficient_cache, fit_sampled_basis
    from lib.models.autoencoder import AutoencoderConfig, build_autoencoder
    from lib.models.training import (
        EpochShuffledBatches,
        StreamedBatches,
        StreamedData,
        TrainingConfig,
        compile_for_training,
        fit_or_load,
    )

    def work() -> dict:
        dataset = load_collection(prepared)
        representation = dataset.representation
        started = time.perf_counter()
        basis, seen = fit_sampled_basis(
            dataset, "train", representation, int(basis_size), sample_clips=int(sample_clips), seed=0
        )
        basis_seconds = time.perf_counter() - started
        started = time.perf_counter()
        train = CoefficientFile(build_coefficient_cache(dataset, "train", representation, basis, scratch / "train.npy"))
        cache_seconds = time.perf_counter() - started
        valid = CoefficientFile(build_coefficient_cache(dataset, "valid", representation, basis, scratch / "valid.npy"))
        valid_rows = valid.rows(0, 2048)  # a bounded validation set
        config = AutoencoderConfig.for_basis(basis.size)
        training = TrainingConfig(epochs=int(epochs), batch_size=64)
        if int(steps):
            keras.utils.set_random_seed(0)
            model = build_autoencoder(config, train.column_std())
            compile_for_training(model, keras.optimizers.Adam(1e-3), "mse", jit_compile=training.jit_compile)
            if source == "memory":
                rows = train.rows(0, len(train))
                batches = EpochShuffledBatches(rows, rows, batch_size=training.batch_size, seed=0)
            else:
                batches = StreamedBatches(StreamedData(train), batch_size=training.batch_size, seed=0)
            model.fit(batches.dataset.repeat().take(WARM_UP_STEPS), epochs=1, verbose=0)  # tracing, not timed
            started = time.perf_counter()
            history = model.fit(batches.dataset.repeat().take(int(steps)), epochs=1, verbose=0).history
            examples = int(steps) * training.batch_size
        else:
            started = time.perf_counter()
            history = fit_or_load(
                lambda: build_autoencoder(config, train.column_std()),
                StreamedData(train),
                (valid_rows, valid_rows),
                run_folder=scratch / "run",
                config=training,
                settings={"probe": "streamed_training"},
                verbose=2,  # no progress bar in a probe
            ).history
            examples = len(train) * int(epochs)
        seconds = time.perf_counter() - started
        return {
            "clips": len(train),
            "basis_clips": seen,
            "basis_seconds": basis_seconds,
            "cache_seconds": cache_seconds,
            "cache_clips_per_second": len(train) / cache_seconds,
            "training_seconds": seconds,
            "examples_per_second": examples / seconds,
            "final_loss": float(history["loss"][-1]),
        }

    return work


WARM_UP_STEPS = 20  # batches before the timed ones: the first traces and compiles the step


PROBES: dict[str, Callable[..., Callable[[], dict]]] = {
    "preparation": _notes_preparation,
    "training": _training,
    "folder_preparation": _folder_preparation,
    "streamed_training": _streamed_training,
}


def main(arguments: list[str]) -> int:
    """Run one probe and print its JSON line: seconds, peak_mib, imports_mib and the work's own figures."""
    if len(arguments) < 2 or arguments[0] not in PROBES:
        print(f"usage: python -m lib.lab.memory_probe {{{','.join(PROBES)}}} SCRATCH [ARG ...]", file=sys.stderr)
        return 2
    work = PROBES[arguments[0]](Path(arguments[1]), *arguments[2:])
    imported = peak_mib()
    started = time.perf_counter()
    extra = work() or {}
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib(), "imports_mib": imported, **extra}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
