"""How fast a folder of music prepares, and how much memory that takes.

Usage: ``.venv/bin/python scripts/bench_preparation.py [HOURS]`` (default 3; the README quotes 3 and 10).

Builds a folder of HOURS of "songs" as a user's disk holds them (44.1 kHz stereo FLAC, five
minutes each, two label folders) from the genre collection's audio (``make data DATASET=genres``
first), then prepares it with :func:`lib.data.collection.prepare_collection` in a child process, once
in that process alone (``engine="local"``) and once on Apache Beam with a worker per core
(``engine="beam"``, :mod:`lib.data.engine`), and writes ``outputs/metrics/bench_preparation.json``: for
each, hours, seconds, hours of audio per minute (and per core), and the child's peak resident memory
(with what its imports alone take, and the largest Beam worker's peak); then the engine's speed-up.
The folder is kept under ``data/bench-music/`` (``data/bench-music-10h/`` for 10 h; gitignored) and reused; the
preparations are always redone. A size other than 3 h writes ``bench_preparation_<HOURS>h.json``: Beam's start-up
and shut-down (a few seconds) weigh on 3 h (a 25 s preparation in one process) and much less on 10 h.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile

from lib.core.paths import PROJ_ROOT, data_dir
from lib.data.audio import resample
from lib.data.engine import default_workers
from lib.lab.bench import peak_memory, write_record

DEFAULT_HOURS = 3.0  # the size make check compares (lib/expectations.json)
SONG_SECONDS = 300
SONG_RATE = 44_100


def build_folder(folder: Path, hours: float) -> Path:
    """Five-minute stereo FLAC songs stitched from the genre audio, until ``hours`` are there."""
    sources = sorted((data_dir(smoke=False, dataset="genres") / "audio").glob("*/*.flac"))
    if not sources:
        sys.exit("no genre audio: run `make data DATASET=genres` first")
    songs = int(round(hours * 3600 / SONG_SECONDS))
    existing = sorted(folder.glob("*/*.flac"))
    if len(existing) == songs:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    position = 0
    for song in range(songs):
        pieces, total = [], 0
        while total < SONG_SECONDS * SONG_RATE:
            samples, rate = soundfile.read(sources[position % len(sources)], dtype="float32")
            position += 1
            piece = resample(samples, rate, SONG_RATE)
            pieces.append(piece)
            total += piece.size
        mono = np.concatenate(pieces)[: SONG_SECONDS * SONG_RATE]
        stereo = np.stack([mono, np.roll(mono, 441) * 0.8], axis=1)
        path = folder / f"side_{song % 2}" / f"song_{song:03d}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, stereo, SONG_RATE, subtype="PCM_16")
    return folder


def prepare_on(engine: str, folder: Path) -> dict:
    """One preparation of ``folder`` on ``engine``, in a fresh process: its figures."""
    destination = PROJ_ROOT / "data" / f"bench-music-prepared-{engine}"
    shutil.rmtree(destination, ignore_errors=True)
    # Peak memory is the probe process's own VmHWM (lib.lab.memory_probe): ru_maxrss would carry over the
    # parent's peak across fork and exec, and the parent has just held whole songs while writing the folder.
    result = peak_memory("folder_preparation", str(folder), str(destination), engine)
    shutil.rmtree(destination, ignore_errors=True)
    workers = default_workers() if engine == "beam" else 1
    hours_per_minute = result["hours"] / (result["seconds"] / 60)
    return {
        "workers": workers,
        "hours": round(result["hours"], 3),
        "clips": result["clips"],
        "seconds": round(result["seconds"], 1),
        "engine_seconds": round(result["engine_seconds"], 1),
        "hours_per_minute": round(hours_per_minute, 2),
        "hours_per_minute_per_core": round(hours_per_minute / workers, 2),
        "peak_rss_mib": round(result["peak_mib"], 1),
        "largest_worker_peak_rss_mib": round(result["largest_child_peak_mib"], 1) if engine == "beam" else None,
        "rss_after_imports_mib": round(result["imports_mib"], 1),
    }


def main(arguments: list[str]) -> int:
    hours = float(arguments[0]) if arguments else DEFAULT_HOURS
    suffix = "" if hours == DEFAULT_HOURS else f"-{hours:g}h"
    folder = build_folder(PROJ_ROOT / "data" / f"bench-music{suffix}", hours)
    engines = {engine: prepare_on(engine, folder) for engine in ("local", "beam")}
    default = engines["beam"]  # what `make data` does: its figures are the file's top level (make check)
    record = {
        "folder": "44.1 kHz stereo FLAC, five-minute songs",
        "files": len(list(folder.glob("*/*.flac"))),
        "engine": "beam",
        **{key: default[key] for key in ("hours", "clips", "seconds", "hours_per_minute", "peak_rss_mib")},
        "rss_after_imports_mib": default["rss_after_imports_mib"],
        "cores": default_workers(),
        "engines": engines,
        "beam_speedup": round(engines["beam"]["hours_per_minute"] / engines["local"]["hours_per_minute"], 2),
    }
    write_record(f"bench_preparation{suffix.replace('-', '_')}", record)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
