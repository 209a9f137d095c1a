"""One audio file into clips: the per-file work of preparing a folder, which runs anywhere.

:func:`decode_file` decodes a file in blocks (:class:`lib.data.audio.AudioStream`: mono, resampled, DC
removed), cuts clips of ``clip_samples`` every ``hop_samples`` (:class:`ClipCutter`) and hands each clip
to a sink, in order; it returns the file's journal entry (``status`` ok or skipped, with the problem).
:mod:`lib.data.collection` runs it in its own process, with its shard writer as the sink; an engine's
worker (:mod:`lib.data.engine`) runs :func:`decode_to_work`, whose sink is a file of raw clips beside
the entry, which the collection then copies into its shards in the folder's order. Both routes give the
same shards, journal and manifest.

:class:`CollectionConfig` lives here because a worker needs it and nothing else of the collection.

May import: :mod:`lib.core`, :mod:`lib.spectral`, :mod:`lib.data.audio`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lib.core.errors import AudioInputError
from lib.core.fileio import atomic_write_bytes, settings_hash
from lib.data.audio import AudioStream, check_file
from lib.spectral.representation import SpectrogramConfig

PEAK_FIT_CLIPS = 64  # training clips whose spectrogram magnitudes fix the peak level (2 million values)
WORK_DTYPE = np.dtype("<f4")  # a work file's clips: raw little-endian float32, clip after clip


@dataclass(frozen=True)
class CollectionConfig:
    """Everything that decides the prepared clips; its hash (with the file list) names the cache."""

    sample_rate: int = 16_000  # Hz, the representation's rate
    clip_seconds: float = 1.0  # the representation's clip length
    hop_seconds: float = 1.0  # between clip starts; less than clip_seconds overlaps clips
    target_rms_db: float = -20.0  # dBFS each file is brought to
    peak_limit: float = 0.99  # the file's gain is lowered so its peak stays below this
    silence_db: float = -50.0  # dBFS; clips quieter than this after the file's gain are dropped
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, valid, test (of files)
    seed: int = 20261129  # drives the split
    shard_clips: int = 1024  # clips per shard file (64 MiB at 1 s, 16 kHz, float32)
    block_seconds: float = 30.0  # seconds of a source decoded at a time

    @property
    def clip_samples(self) -> int:
        """Samples per clip."""
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        """Samples between clip starts."""
        return int(round(self.hop_seconds * self.sample_rate))

    def fingerprint(self) -> str:
        """Short hash of this configuration and the representation's."""
        return settings_hash(
            {"collection": asdict(self), "representation": asdict(SpectrogramConfig()), "peak_fit": PEAK_FIT_CLIPS}
        )


@dataclass(frozen=True)
class FileTask:
    """One file to decode: where it is, its name within the folder, its identity and its label."""

    path: str  # absolute
    relative: str  # POSIX path within the folder: the file's name in the journal and the manifest
    identity: dict  # size and modification time (lib.data.collection.file_identity)
    label: str

    def work_name(self) -> str:
        """The stem of this file's work files: a hash of its name and identity (a changed file gets new ones)."""
        return settings_hash({"file": self.relative, "identity": self.identity})


class ClipCutter:
    """Cuts clips of ``clip_samples`` every ``hop_samples`` from a stream of blocks.

    Feed blocks [shape=(n,)] in order; get (clip, start sample) pairs as soon as a clip is
    whole. Holds at most one clip plus one block.
    """

    def __init__(self, clip_samples: int, hop_samples: int) -> None:
        if clip_samples <= 0 or hop_samples <= 0:
            raise ValueError(f"clip and hop must be positive, got {clip_samples} and {hop_samples}")
        self.clip_samples, self.hop_samples = clip_samples, hop_samples
        self.buffer = np.zeros(0, dtype=np.float32)
        self.buffer_start = 0  # stream position of buffer[0]
        self.next_start = 0

    def push(self, block: np.ndarray) -> Iterator[tuple[np.ndarray, int]]:
        """Clips completed by ``block``, with their start positions in samples."""
        self.buffer = np.concatenate([self.buffer, np.asarray(block, dtype=np.float32)])
        while self.next_start + self.clip_samples <= self.buffer_start + self.buffer.size:
            offset = self.next_start - self.buffer_start
            yield self.buffer[offset : offset + self.clip_samples].copy(), self.next_start
            self.next_start += self.hop_samples
        keep_from = min(self.next_start - self.buffer_start, self.buffer.size)
        self.buffer = self.buffer[keep_from:]
        self.buffer_start += keep_from


def decode_file(task: FileTask, config: CollectionConfig, sink: Callable[[np.ndarray], None]) -> dict:
    """Decode ``task``'s file, passing each clip [shape=(clip_samples,), float32, before the file's gain]
    to ``sink`` in order; return its journal entry.

    The entry holds ``file``, ``identity``, ``label`` and ``status``: ``"skipped"`` with ``problem`` and
    ``kind`` (:class:`lib.core.errors.AudioInputError`'s) for a file that cannot be used (clips already
    sunk must then be dropped by the caller), or ``"ok"`` with ``seconds``, ``source_rate``, ``channels``,
    ``gain`` (:func:`file_gain`), ``notes``, and per clip ``start`` (seconds) and ``level_db`` (dBFS).
    """
    entry = {"file": task.relative, "identity": task.identity, "label": task.label}
    path = Path(task.path)
    try:
        check_file(path)
        stream = AudioStream(path, sample_rate=config.sample_rate, block_seconds=config.block_seconds)
        cutter = ClipCutter(config.clip_samples, config.hop_samples)
        starts, levels = [], []
        for block in stream:
            for clip, start in cutter.push(block):
                sink(clip)
                starts.append(round(start / config.sample_rate, 3))
                levels.append(round(level_db(clip), 2))
        stream.finish()
        if not starts:
            seconds = stream.samples_out / config.sample_rate
            raise AudioInputError(
                f"is {seconds:.3f} s long, shorter than a {config.clip_seconds:g} s clip", path, kind="shorter than"
            )
    except AudioInputError as error:
        return {**entry, "status": "skipped", "problem": error.problem, "kind": error.kind}
    except MemoryError:
        return {**entry, "status": "skipped", "problem": "ran out of memory while decoding it", "kind": "memory"}
    return {
        **entry,
        "status": "ok",
        "seconds": round(stream.seconds, 3),
        "source_rate": stream.source_rate,
        "channels": stream.channels,
        "gain": file_gain(stream, config),
        "notes": stream.notes(),
        "start": starts,
        "level_db": levels,
    }


def file_gain(stream: AudioStream, config: CollectionConfig) -> float:
    """The gain that brings a decoded file (its statistics in ``stream``) to ``config.target_rms_db``,
    lowered so that its peak stays below ``config.peak_limit``."""
    return min(10 ** (config.target_rms_db / 20) / max(stream.clean_rms, 1e-12), config.peak_limit / stream.clean_peak)


def level_db(clip: np.ndarray) -> float:
    """RMS level of a clip in dBFS (before the file's gain)."""
    return float(20 * np.log10(max(float(np.sqrt(np.mean(np.square(clip, dtype=np.float64)))), 1e-10)))


def decode_to_work(task: FileTask, config: CollectionConfig, work_folder: Path) -> dict:
    """Decode ``task`` into ``work_folder``: ``<work_name>.f32`` (its clips, raw float32, written as they
    come) and then, atomically, ``<work_name>.json`` (its entry, with ``clips``: how many). The entry file
    marks the work done; a worker that stops before it leaves nothing that counts. Returns the entry."""
    work_folder = Path(work_folder)
    work_folder.mkdir(parents=True, exist_ok=True)
    clips_path = work_folder / f"{task.work_name()}.f32"
    count = 0
    with clips_path.open("wb") as handle:

        def sink(clip: np.ndarray) -> None:
            nonlocal count
            handle.write(np.ascontiguousarray(clip, dtype=WORK_DTYPE).tobytes())
            count += 1

        entry = decode_file(task, config, sink)
    if entry["status"] != "ok":
        clips_path.unlink(missing_ok=True)
        count = 0
    entry = {**entry, "clips": count}
    atomic_write_bytes(work_folder / f"{task.work_name()}.json", json.dumps(entry).encode("utf-8"), overwrite=True)
    return entry


def read_work(task: FileTask, config: CollectionConfig, work_folder: Path) -> tuple[dict, np.ndarray] | None:
    """The entry and clips [shape=(clips, clip_samples), memory-mapped] that :func:`decode_to_work` left for
    ``task``, or None where it has not finished (no entry, or clips missing or of the wrong size) or was
    made for another task."""
    entry_path = Path(work_folder) / f"{task.work_name()}.json"
    if not entry_path.exists():
        return None
    try:
        entry = json.loads(entry_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if [entry.get(key) for key in ("file", "identity", "label")] != [task.relative, task.identity, task.label]:
        return None  # another file's, or this file under another label
    if entry.get("status") != "ok":
        return entry, np.zeros((0, config.clip_samples), dtype=np.float32)
    clips_path = entry_path.with_suffix(".f32")
    expected = entry["clips"] * config.clip_samples * WORK_DTYPE.itemsize
    if not clips_path.exists() or clips_path.stat().st_size != expected or not entry["clips"]:
        return None
    clips = np.memmap(clips_path, dtype=WORK_DTYPE, mode="r", shape=(entry["clips"], config.clip_samples))
    return entry, clips


def remove_work(task: FileTask, work_folder: Path) -> None:
    """Delete ``task``'s work files (once its clips are in the shards and its journal line on disk)."""
    for suffix in (".json", ".f32"):
        (Path(work_folder) / f"{task.work_name()}{suffix}").unlink(missing_ok=True)
