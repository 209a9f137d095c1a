"""``make bench-scale``: preparation and training at 1, 10 and 50 hours of music, memory and speed.

Usage: ``python -m lib.lab.bench_scale [HOURS ...]`` (default 1 10 50).

For each size, a collection of that many hours is made from the genre collections' audio (``make data
DATASET=genres`` first): five-minute songs, each stitched from random stretches of one genre's
recordings, every stretch sped up or slowed down (up to two semitones, by resampling), at its own gain
and offset (looped and varied, not copies), written as 22.05 kHz mono FLAC under
``data/bench-scale/songs/`` (reused); a size's folder links its first songs. Then, each in a fresh
process (:mod:`lib.lab.memory_probe`):

* **preparation** on Apache Beam (:mod:`lib.data.engine`, a worker per core): hours of audio per minute,
  the driver's peak resident memory and the largest worker's;
* **training from the stream** (:mod:`lib.data.stream`): the basis fitted on a fixed sample of clips,
  the training split's coefficients cached on disk in one pass, then a fixed number of batches of the
  stage-1 autoencoder read from that cache: the pass's clips per second, training examples per second
  and the peak resident memory of it all;
* at the smallest size, the same batches from memory (today's path), for the stream's cost:
  ``COMPARISON_RUNS`` runs of each, alternating, and their medians (one run's speed varies by up to half
  on this machine).

Writes ``<outputs>/metrics/bench_scale.json`` with a row per size and the ratios the issue asks about.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np
import soundfile

from lib.core.paths import PROJ_ROOT, data_dir
from lib.data.audio import resample
from lib.data.engine import default_workers
from lib.lab.bench import peak_memory, write_record

SONG_SECONDS = 300
SONG_RATE = 22_050
DEFAULT_HOURS = (1.0, 10.0, 50.0)
BASIS_SIZE = 1024  # the stage-1 notebook's
BASIS_SAMPLE_CLIPS = 4096  # clips the basis is fitted on, at every size
TRAINING_STEPS = 300  # batches of 64 clips trained at every size
COMPARISON_RUNS = 5  # fresh processes per path at the smallest size: this machine's speed swings by half between runs
SCALE_FOLDER = PROJ_ROOT / "data" / "bench-scale"


def genre_sources() -> dict[str, list[Path]]:
    """The genre collections' recordings by genre."""
    sources: dict[str, list[Path]] = {}
    for path in sorted((data_dir(smoke=False, dataset="genres") / "audio").glob("*/*.flac")):
        sources.setdefault(path.parent.name, []).append(path)
    if not sources:
        sys.exit("no genre audio: run `make data DATASET=genres` first")
    return sources


def make_song(index: int, sources: dict[str, list[Path]]) -> tuple[str, np.ndarray]:
    """Song ``index``: its genre and five minutes of samples at ``SONG_RATE`` [shape=(samples,)]."""
    rng = np.random.default_rng([20261203, index])
    genre = sorted(sources)[index % len(sources)]
    pieces, total = [], 0
    while total < SONG_SECONDS * SONG_RATE:
        samples, rate = soundfile.read(sources[genre][rng.integers(len(sources[genre]))], dtype="float32")
        samples = samples.mean(axis=1) if samples.ndim == 2 else samples
        samples = samples[rng.integers(len(samples) // 2) :]  # a random stretch: from somewhere in the first half
        speed = 2 ** (rng.uniform(-2, 2) / 12)  # played faster or slower: pitch and tempo move together
        piece = resample(samples, rate, int(round(SONG_RATE / speed))) * 10 ** (rng.uniform(-6, 6) / 20)
        pieces.append(piece)
        total += piece.size
    song = np.concatenate(pieces)[: SONG_SECONDS * SONG_RATE]
    return genre, np.clip(song, -1.0, 1.0)


def song_pool(songs: int) -> list[Path]:
    """The first ``songs`` songs of the pool, written where missing."""
    sources, paths = None, []
    for index in range(songs):
        found = sorted((SCALE_FOLDER / "songs").glob(f"*/song_{index:04d}.flac"))
        if not found:
            sources = sources or genre_sources()
            genre, song = make_song(index, sources)
            path = SCALE_FOLDER / "songs" / genre / f"song_{index:04d}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.stem}.partial.flac")
            soundfile.write(partial, song, SONG_RATE, subtype="PCM_16")
            os.replace(partial, path)
            found = [path]
        paths.append(found[0])
    return paths


def collection_of(hours: float) -> Path:
    """A folder of ``hours`` of songs: links into the pool, one sub-folder per genre."""
    songs = song_pool(max(1, int(round(hours * 3600 / SONG_SECONDS))))
    folder = SCALE_FOLDER / f"{hours:g}h"
    shutil.rmtree(folder, ignore_errors=True)
    for song in songs:
        link = folder / song.parent.name / song.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(song)
    return folder


def measure(hours: float, *, compare_memory: bool) -> dict:
    """One size's figures (each piece of work in a fresh process)."""
    folder = collection_of(hours)
    prepared = SCALE_FOLDER / f"{hours:g}h-prepared"
    shutil.rmtree(prepared, ignore_errors=True)
    preparation = peak_memory("folder_preparation", str(folder), str(prepared), "beam")
    arguments = (str(prepared), str(BASIS_SIZE), str(BASIS_SAMPLE_CLIPS), "1", str(TRAINING_STEPS))
    streamed = peak_memory("streamed_training", *arguments, "stream")
    row = {
        "hours": round(preparation["hours"], 2),
        "clips": preparation["clips"],
        "shard_gib": round(sum(path.stat().st_size for path in (prepared / "shards").glob("*.npy")) / 2**30, 2),
        "preparation": {
            "seconds": round(preparation["seconds"], 1),
            "hours_per_minute": round(preparation["hours"] / (preparation["seconds"] / 60), 2),
            "peak_rss_mib": round(preparation["peak_mib"], 1),
            "largest_worker_peak_rss_mib": round(preparation["largest_child_peak_mib"], 1),
        },
        "training": {
            "train_clips": streamed["clips"],
            "basis_clips": streamed["basis_clips"],
            "basis_seconds": round(streamed["basis_seconds"], 1),
            "cache_seconds": round(streamed["cache_seconds"], 1),
            "cache_clips_per_second": round(streamed["cache_clips_per_second"], 1),
            "steps": TRAINING_STEPS,
            "examples_per_second": round(streamed["examples_per_second"], 1),
            "peak_rss_mib": round(streamed["peak_mib"], 1),
        },
    }
    if compare_memory:  # alternate fresh processes: a run's speed varies more than the paths differ
        speeds = {"stream": [streamed["examples_per_second"]], "memory": []}
        for source in ("memory", "stream") * (COMPARISON_RUNS - 1) + ("memory",):
            speeds[source].append(peak_memory("streamed_training", *arguments, source)["examples_per_second"])
        row["training"]["stream_examples_per_second_runs"] = [round(speed, 1) for speed in speeds["stream"]]
        row["training"]["in_memory_examples_per_second_runs"] = [round(speed, 1) for speed in speeds["memory"]]
        row["training"]["examples_per_second"] = round(statistics.median(speeds["stream"]), 1)
        row["training"]["in_memory_examples_per_second"] = round(statistics.median(speeds["memory"]), 1)
    shutil.rmtree(prepared, ignore_errors=True)
    return row


def main(arguments: list[str]) -> int:
    hours = [float(argument) for argument in arguments] or list(DEFAULT_HOURS)
    rows = [measure(size, compare_memory=index == 0) for index, size in enumerate(sorted(hours))]
    smallest, largest = rows[0], rows[-1]
    record = {
        "songs": f"{SONG_SECONDS // 60}-minute songs, {SONG_RATE / 1000:g} kHz mono FLAC, varied from the genre audio",
        "cores": default_workers(),
        "basis_size": BASIS_SIZE,
        "basis_sample_clips": BASIS_SAMPLE_CLIPS,
        "sizes": rows,
        "largest_over_smallest": {
            "hours": round(largest["hours"] / smallest["hours"], 1),
            "preparation_peak_rss": round(
                largest["preparation"]["peak_rss_mib"] / smallest["preparation"]["peak_rss_mib"], 2
            ),
            "preparation_worker_peak_rss": round(
                largest["preparation"]["largest_worker_peak_rss_mib"]
                / smallest["preparation"]["largest_worker_peak_rss_mib"],
                2,
            ),
            "training_peak_rss": round(largest["training"]["peak_rss_mib"] / smallest["training"]["peak_rss_mib"], 2),
        },
        "stream_over_memory_throughput": round(
            smallest["training"]["examples_per_second"] / smallest["training"]["in_memory_examples_per_second"], 2
        ),
    }
    write_record("bench_scale", record)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
