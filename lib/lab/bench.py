"""``make bench``: how fast the lab runs, measured in one go on this machine.

Writes ``<outputs>/metrics/bench.json`` and prints a short table:

- real-time factors (seconds of audio per second of compute) of the STFT, encoder, decoder,
  inversion and the whole round trip, for the autoencoder and the VAE, on the test split at
  the codec's default batch; the models of the last ``make run-all`` when they exist, otherwise
  untrained models of the same architecture (speed does not depend on the weights);
- Griffin-Lim iterations against quality (the oracle's log-mel distance on the test clips) and
  speed, for both phase initialisations, beside librosa's implementation at 32 iterations;
- training throughput (examples per second) of the autoencoder, the VAE and the judge;
- peak memory (VmHWM) of dataset preparation and of training, each in a fresh process;
- the wall time of each notebook in the last ``make run-all``.

Every timing is the median of several repeats after a warm-up; the machine is described
(cores, CPU model, TensorFlow build) beside the figures.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

from lib.core import paths
from lib.core.fileio import load_json, save_json

logger = logging.getLogger(__name__)

GRIFFIN_LIM_SWEEP = (4, 8, 16, 32, 64, 100)  # iterations measured against quality and speed
REPEATS = 5  # timings are the median of this many runs (after one warm-up)
TARGET_REALTIME = 100.0  # end-to-end real-time factor the issue asks for on 2 cores
TARGET_QUALITY_DB = 0.1  # the default inversion within this of the oracle by librosa's 32 iterations (the old way)


def median_seconds(work: Callable[[], object], repeats: int = REPEATS, *, warm_up: bool = True) -> float:
    """Median wall time of ``work()`` over ``repeats`` runs, after one untimed warm-up run (unless done already)."""
    if warm_up:
        work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def machine() -> dict:
    """The machine and software the figures belong to."""
    import keras
    import tensorflow as tf

    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    build = tf.sysconfig.get_build_info()
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tensorflow_build": {"cuda": bool(build.get("is_cuda_build")), "rocm": bool(build.get("is_rocm_build"))},
        "keras": keras.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def codec_speed(codec, waveforms: np.ndarray, *, repeats: int = REPEATS) -> dict:
    """Real-time factors of each step of ``codec`` and of the round trip, on ``waveforms`` [shape=(n, samples)]."""
    seconds_of_audio = waveforms.size / codec.representation.config.sample_rate
    spectrograms = codec.representation.forward(waveforms)
    latents = codec.encode_spectrograms(spectrograms)
    decoded = codec.decode_spectrograms(latents)
    steps = {
        "stft": lambda: codec.representation.forward(waveforms),
        "encoder": lambda: codec.encode_spectrograms(spectrograms),
        "decoder": lambda: codec.decode_spectrograms(latents),
        "inversion": lambda: codec.representation.inverse(decoded),
        "end_to_end": lambda: codec.decode_audio(codec.encode_audio(waveforms)),
    }
    return {name: seconds_of_audio / median_seconds(work, repeats) for name, work in steps.items()}


def griffin_lim_sweep(representation, waveforms: np.ndarray, *, iterations=GRIFFIN_LIM_SWEEP, repeats: int = 3) -> list:
    """Oracle quality (log-mel distance, dB) and speed (x real time) per init and iteration count."""
    import librosa

    from lib.spectral import metrics
    from lib.spectral.representation import SpectrogramRepresentation

    config = representation.config
    spectrograms = representation.forward(waveforms)
    seconds_of_audio = waveforms.size / config.sample_rate
    rows = []
    for init in ("gradient", "random"):
        for count in iterations:
            inverter = SpectrogramRepresentation(config, griffin_lim_iterations=count, phase_init=init)
            estimate = inverter.inverse(spectrograms)
            distance = metrics.log_mel_distance_db(waveforms, estimate, sample_rate=config.sample_rate)
            # The quality run above was the warm-up.
            seconds = median_seconds(lambda: inverter.inverse(spectrograms), repeats, warm_up=False)  # noqa: B023
            speed = seconds_of_audio / seconds
            rows.append(
                {"implementation": "lib.inversion", "init": init, "iterations": count, "realtime": speed}
                | {"log_mel_distance_db": float(np.mean(distance))}
            )
    # librosa's griffinlim (random start) at 32 iterations: what the lab used before lib.spectral.inversion.
    magnitude = np.pad(
        representation.denormalise(spectrograms)[..., : 1 + config.clip_samples // config.hop_length],
        [(0, 0), (0, config.n_fft // 2 + 1 - config.frequency_bins), (0, 0)],
    )

    def librosa_inverse():
        return librosa.griffinlim(
            magnitude, n_iter=32, hop_length=config.hop_length, n_fft=config.n_fft, length=config.clip_samples
        )

    distance = metrics.log_mel_distance_db(waveforms, librosa_inverse(), sample_rate=config.sample_rate)
    rows.append(
        {
            "implementation": "librosa.griffinlim",
            "init": "random",
            "iterations": 32,
            "realtime": seconds_of_audio / median_seconds(librosa_inverse, repeats, warm_up=False),
            "log_mel_distance_db": float(np.mean(distance)),
        }
    )
    return rows


def training_throughput(
    build: Callable, inputs, targets, *, loss, batch_size: int = 64, epochs: int = 3, jit_compile: bool = True
) -> float:
    """Examples per second of ``build()`` trained on the lab's batch pipeline (median epoch after a warm-up),
    compiled as ``fit_or_load`` compiles it (``jit_compile``: XLA where it pays)."""
    import keras

    from lib.models.training import EpochShuffledBatches, compile_for_training

    keras.utils.set_random_seed(0)
    model = build()
    compile_for_training(model, keras.optimizers.Adam(1e-3), loss, jit_compile=jit_compile)
    batches = EpochShuffledBatches(inputs, targets, batch_size=batch_size, seed=0)
    count = len(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)
    model.fit(batches.dataset, epochs=1, verbose=0, shuffle=False)  # tracing and warm-up
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.fit(batches.dataset, epochs=1, verbose=0, shuffle=False)
        times.append(time.perf_counter() - started)
    return count / statistics.median(times)


def peak_memory(probe: str, *arguments: str) -> dict:
    """Seconds and peak resident memory (MiB) of a :mod:`lib.lab.memory_probe` probe, in a fresh process.

    The probe gets a scratch folder, then ``arguments``; figures of its own come back with the timings.
    """
    with tempfile.TemporaryDirectory() as scratch:
        completed = subprocess.run(
            [sys.executable, "-m", "lib.lab.memory_probe", probe, scratch, *arguments],
            capture_output=True,
            text=True,
            cwd=paths.PROJ_ROOT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
            check=False,
        )
    if completed.returncode != 0:
        raise RuntimeError(f"the memory probe {probe!r} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def write_record(name: str, record: dict) -> None:
    """Save a benchmark's record as ``<outputs>/metrics/<name>.json`` (of the full run) and print it."""
    record = {**record, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    save_json(paths.metrics_path(name, smoke=False), record, overwrite=True)
    print(json.dumps(record, indent=1))


def notebook_times() -> dict:
    """Wall time (s) of each notebook in the last ``make run-all`` of this dataset, if any."""
    path = paths.metrics_path("run_notebooks")
    return {name: entry["seconds"] for name, entry in load_json(path).items()} if path.exists() else {}


def codecs(dataset) -> dict:
    """The autoencoder's and the VAE's codecs: the last run's models, or untrained ones of the same shape."""
    from lib.models import vae
    from lib.models.autoencoder import AutoencoderConfig, build_autoencoder
    from lib.models.codec import LatentCodec
    from lib.models.training import load_model
    from lib.spectral.basis import SpectralBasis

    representation = dataset.representation
    folder = paths.models_dir()
    trained = (folder / "autoencoder" / "model.keras").exists() and (folder / "vae" / "model.keras").exists()
    if trained:
        autoencoder = LatentCodec.load(folder / "autoencoder", representation)
        model = load_model(folder / "vae" / "model.keras")
        variational = LatentCodec(representation, autoencoder.basis, model.encoder, model.decoder)
    else:
        waveforms, _ = dataset.split("train")
        spectrograms = representation.forward(waveforms)
        basis = SpectralBasis.fit(spectrograms, min(AutoencoderConfig().basis_size, len(spectrograms) - 1))
        std = basis.transform(spectrograms).std(axis=0)
        model = build_autoencoder(AutoencoderConfig.for_basis(basis.size), std)
        autoencoder = LatentCodec(representation, basis, model.get_layer("encoder"), model.get_layer("decoder"))
        model = vae.build_vae(vae.VAEConfig(basis_size=basis.size), std)
        variational = LatentCodec(representation, basis, model.encoder, model.decoder)
    return {"trained": trained, "autoencoder": autoencoder, "vae": variational}


def throughputs(dataset, codec, *, epochs: int) -> dict:
    """Training examples per second of the autoencoder, the VAE and the judge, at the notebooks' sizes;
    the autoencoder and the VAE again without XLA (what compiling their steps with it gains)."""
    from lib.models import judge, vae
    from lib.models.autoencoder import AutoencoderConfig, build_autoencoder

    waveforms, rows = dataset.split("train")
    spectrograms = dataset.representation.forward(waveforms)
    coefficients = codec.basis.transform(spectrograms)
    std = coefficients.std(axis=0)
    size = codec.basis.size
    labels = {"pitch": np.zeros(len(rows), np.int32), "family": np.zeros(len(rows), np.int32)}
    families = max(len(dataset.labels), 2)
    sparse = "sparse_categorical_crossentropy"

    def autoencoder():
        return build_autoencoder(AutoencoderConfig.for_basis(size, codec.latent_dim), std)

    def variational():
        return vae.build_vae(vae.VAEConfig(basis_size=size), std)

    return {
        "autoencoder": training_throughput(autoencoder, coefficients, coefficients, loss="mse", epochs=epochs),
        "vae": training_throughput(variational, coefficients, None, loss=None, epochs=epochs),
        "autoencoder_without_xla": training_throughput(
            autoencoder, coefficients, coefficients, loss="mse", epochs=epochs, jit_compile=False
        ),
        "vae_without_xla": training_throughput(
            variational, coefficients, None, loss=None, epochs=epochs, jit_compile=False
        ),
        "classifier": training_throughput(
            lambda: judge.build_classifier(*dataset.representation.shape, 37, families),
            spectrograms,
            labels,
            loss={"pitch": sparse, "family": sparse},
            epochs=epochs,
        ),
    }


def run(*, quick: bool = False) -> dict:
    """Every measurement; ``quick`` uses few clips and repeats (for the tests), not for figures."""
    from lib.data.dataset import load_dataset
    from lib.spectral.representation import SpectrogramRepresentation

    repeats = 1 if quick else REPEATS
    dataset = load_dataset()
    default = SpectrogramRepresentation()
    dataset.representation.griffin_lim_iterations = default.griffin_lim_iterations
    dataset.representation.phase_init = default.phase_init
    waveforms, _ = dataset.split("test")
    waveforms = waveforms[:16] if quick else waveforms
    logger.info("codec speed on %d test clips", len(waveforms))
    models = codecs(dataset)
    speed = {name: codec_speed(models[name], waveforms, repeats=repeats) for name in ("autoencoder", "vae")}
    logger.info("Griffin-Lim sweep")
    sweep = griffin_lim_sweep(
        dataset.representation, waveforms, iterations=(4, 16) if quick else GRIFFIN_LIM_SWEEP, repeats=1 if quick else 3
    )
    logger.info("training throughput")
    training = throughputs(dataset, models["autoencoder"], epochs=1 if quick else 3)
    logger.info("peak memory of preparation and training (fresh processes)")
    memory = {"preparation": peak_memory("preparation"), "training": peak_memory("training")}
    record = {
        "machine": machine(),
        "dataset": paths.dataset_choice(),
        "test_clips": len(waveforms),
        "repeats": repeats,
        "griffin_lim_sweep_repeats": 1 if quick else 3,
        "models": "trained (last make run-all)" if models["trained"] else "untrained, same architecture",
        "griffin_lim": {"iterations": default.griffin_lim_iterations, "phase_init": default.phase_init},
        "realtime": speed,
        "griffin_lim_sweep": sweep,
        "training_examples_per_second": training,
        "peak_memory_mib": {name: round(entry["peak_mib"], 1) for name, entry in memory.items()},
        "memory_probe_seconds": {name: round(entry["seconds"], 1) for name, entry in memory.items()},
        "notebook_seconds": notebook_times(),
    }
    record["targets"] = targets(record)
    return record


def targets(record: dict) -> dict:
    """The issue's speed target and the quality it must keep, from a record's own figures."""
    sweep = record["griffin_lim_sweep"]
    chosen = record["griffin_lim"]
    default = next(
        (row for row in sweep if row["init"] == chosen["phase_init"] and row["iterations"] == chosen["iterations"]),
        None,
    )
    before = next((row for row in sweep if row["implementation"] == "librosa.griffinlim"), None)  # the old way
    quality = None
    if default and before:
        quality = default["log_mel_distance_db"] <= before["log_mel_distance_db"] + TARGET_QUALITY_DB
    return {
        "end_to_end_100x_autoencoder": record["realtime"]["autoencoder"]["end_to_end"] >= TARGET_REALTIME,
        "end_to_end_100x_vae": record["realtime"]["vae"]["end_to_end"] >= TARGET_REALTIME,
        "oracle_within_0_1_db_of_32_iterations": quality,
    }


def table(record: dict) -> str:
    """The figures as a short plain-text table."""
    lines = [
        f"{record['machine']['cores']} cores, {record['machine']['cpu']}, TensorFlow {record['machine']['tensorflow']}"
    ]
    lines.append(f"{'x real time':<14}" + "".join(f"{step:>12}" for step in record["realtime"]["autoencoder"]))
    for name, speeds in record["realtime"].items():
        lines.append(f"{name:<14}" + "".join(f"{value:>12.0f}" for value in speeds.values()))
    lines.append("Griffin-Lim: implementation, init, iterations -> oracle dB, x real time")
    for row in record["griffin_lim_sweep"]:
        lines.append(
            f"  {row['implementation']:<20}{row['init']:<10}{row['iterations']:>4}"
            f"{row['log_mel_distance_db']:>8.3f} dB{row['realtime']:>8.0f}x"
        )
    examples = ", ".join(f"{name} {value:.0f}" for name, value in record["training_examples_per_second"].items())
    lines.append(f"training examples/s: {examples}")
    memory = ", ".join(f"{name} {value:.0f} MiB" for name, value in record["peak_memory_mib"].items())
    lines.append(f"peak memory: {memory}")
    if record["notebook_seconds"]:
        lines.append("last run-all: " + ", ".join(f"{k} {v:.0f} s" for k, v in record["notebook_seconds"].items()))
    lines.append(f"targets: {record['targets']}")
    return "\n".join(lines)


def main(arguments: list[str] | None = None) -> int:
    """``python -m lib.lab.bench [--quick]``: measure, write ``<outputs>/metrics/bench.json``, print the table."""
    arguments = sys.argv[1:] if arguments is None else arguments
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    started = time.perf_counter()
    record = run(quick="--quick" in arguments)
    record["bench_seconds"] = round(time.perf_counter() - started, 1)
    path = save_json(paths.metrics_path("bench"), record, overwrite=True)
    print(table(record))
    print(f"-> {paths.shown(path)} ({record['bench_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
