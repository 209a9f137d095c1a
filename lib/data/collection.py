"""A folder of the user's audio as a dataset: streamed, sharded, resumable preparation.

:func:`prepare_collection` walks a folder (nested folders too), decodes each file in blocks
(:func:`lib.data.decoding.decode_file`: mono, resampled, DC removed), cuts clips of the
representation's length with a hop, and appends them to ``.npy`` shards of ``shard_clips``
clips on disk. The decoding runs on Apache Beam by default (:mod:`lib.data.engine`: a worker per
core, or a cluster), whose workers leave each file's clips in ``work/``; the shards are then filled
from them in the folder's order, as a preparation in one process (``engine="local"``) fills them.
The collection is never held in memory: at any time one shard's buffer and one decoded block are
(per worker). A journal (``journal.jsonl``, one line per finished file) records where
each file's clips went, so an interrupted preparation resumes where it stopped and a folder
that gains files is prepared incrementally.

Decisions, and why:

* **Labels** come from the first level of sub-folders (genre, artist, instrument: whatever the
  user sorted by), as Keras's ``audio_dataset_from_directory`` does; files directly in the
  folder get the folder's own name, so a flat folder has one label.
* **Loudness is normalised per file**, not per clip: one gain per recording brings it to
  ``target_rms_db`` (lowered if its peak would pass ``peak_limit``). Recordings arrive at any
  mastering level, and that difference says nothing musical; the dynamics *within* a piece
  (a quiet verse, a loud chorus) do, and per-clip normalisation would erase them. The gain
  is known once the file ends, so clips are stored as decoded and the gain is applied when
  they are read (it is in the manifest).
* **Silent clips** (RMS below ``silence_db`` dBFS after the file's gain) are dropped.
* **Splits are by file**, stratified by label: no two clips of one recording are in
  different splits. A label with fewer than three files goes whole to ``train``.

:class:`FolderDataset` reads a prepared collection: the manifest in memory, the clips from
memory-mapped shards, one split at a time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lib.core.errors import AudioInputError, NotReadyError
from lib.core.fileio import atomic_write_bytes, config_from_json, load_json, save_json, save_npy
from lib.core.paths import shown
from lib.data.audio import walk_folder
from lib.data.clips import SPLITS, ClipDataset
from lib.data.decoding import PEAK_FIT_CLIPS, CollectionConfig, FileTask, decode_file, read_work, remove_work
from lib.data.engine import BackgroundDecoding
from lib.spectral.representation import SpectrogramConfig, SpectrogramRepresentation, fit_peak_db

logger = logging.getLogger(__name__)

MANIFEST_FIELDS = ("index", "split", "label", "file", "start_seconds", "shard", "row", "gain", "level_db")
ENGINE_ENV_VAR = "LML_PREPARE_ENGINE"  # where files are decoded: beam (default) or local
ENGINES = ("beam", "local")
PROBLEM_KINDS = (  # the kinds of lib.data.audio's errors (AudioInputError.kind), and the folder path's own
    "truncated",
    "format not supported",
    "not an audio file extension",
    "broken symbolic link",
    "permission denied",
    "folder cannot be listed",
    "only a DC offset",
    "silent",
    "shorter than",
    "NaN",
    "sample rate",
    "memory",
    "resampling",
    "decoding failed",
    "not readable as audio",
    "empty",
    "other",
)


def file_identity(path: Path) -> dict:
    """Size and modification time: a file that changes is prepared again."""
    status = path.lstat() if path.is_symlink() and not path.exists() else path.stat()
    return {"size": status.st_size, "mtime_ns": status.st_mtime_ns}


def file_label(relative: Path, root_name: str) -> str:
    """The first sub-folder's name; the collection's own name for files at its top level."""
    return relative.parts[0] if len(relative.parts) > 1 else root_name


@dataclass
class _Journal:
    """Append-only record of finished files: one JSON line each, flushed to disk."""

    path: Path

    def entries(self) -> dict[str, dict]:
        """The latest entry per file; a torn last line (interrupted write) is ignored."""
        found: dict[str, dict] = {}
        if not self.path.exists():
            return found
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                found[entry["file"]] = entry
        return found

    def append(self, entries: list[dict]) -> None:
        """Write entries and make sure they reached the disk."""
        if not entries:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            for entry in entries:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


class _ShardWriter:
    """Buffers clips and writes full shards; a file's journal line waits until its clips are on disk.
    ``journaled`` is told the entries whose lines are on disk (their files' work can go)."""

    def __init__(
        self,
        folder: Path,
        journal: _Journal,
        *,
        shard_clips: int,
        next_shard: int,
        journaled: Callable[[list[dict]], None] = lambda entries: None,
    ) -> None:
        self.folder, self.journal, self.shard_clips = folder, journal, shard_clips
        self.next_shard, self.journaled = next_shard, journaled
        self.buffer: list[np.ndarray] = []
        self.waiting: list[dict] = []  # finished files whose clips are not all on disk yet
        self.flushes = 0

    def add(self, clip: np.ndarray) -> tuple[int, int]:
        """Buffer one clip; returns its (shard, row)."""
        location = (self.next_shard, len(self.buffer))
        self.buffer.append(clip)
        if len(self.buffer) >= self.shard_clips:
            self.flush()
        return location

    def mark(self) -> tuple[int, int]:
        """Where the buffer stands, to undo a file that fails halfway."""
        return self.flushes, len(self.buffer)

    def undo(self, mark: tuple[int, int]) -> None:
        """Drop the clips buffered since ``mark`` (clips already flushed stay, unreferenced)."""
        flushes, length = mark
        del self.buffer[length if flushes == self.flushes else 0 :]

    def finish(self, entry: dict) -> None:
        """A file is done: its journal line goes out with the shard that holds its last clip."""
        if entry.get("status") == "ok" and self.buffer:
            self.waiting.append(entry)
        else:
            self.journal.append([entry])
            self.journaled([entry])

    def flush(self) -> None:
        """Write the buffer as the next shard, then the journal lines it completes."""
        if self.buffer:
            save_npy(self.folder / shard_name(self.next_shard), np.stack(self.buffer), overwrite=True, announce=False)
            self.next_shard += 1
            self.buffer = []
            self.flushes += 1
        self.journal.append(self.waiting)
        self.journaled(self.waiting)
        self.waiting = []


def shard_name(index: int) -> str:
    """File name of shard ``index``."""
    return f"clips-{index:05d}.npy"


@dataclass
class PreparationReport:
    """What one preparation did."""

    folder: Path
    files_prepared: int = 0  # decoded in this run
    files_reused: int = 0  # already in the journal
    skipped: dict[str, str] = field(default_factory=dict)  # relative path -> problem
    skipped_kinds: dict[str, str] = field(default_factory=dict)  # relative path -> kind (PROBLEM_KINDS)
    clips: int = 0
    hours: float = 0.0
    seconds: float = 0.0
    engine_seconds: float = 0.0  # of `seconds`, in the engine's pipeline (beam), start-up included
    up_to_date: bool = False

    def summary(self) -> str:
        """One line for the log."""
        kinds = Counter(self.skipped_kinds.values())
        skipped = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "none"
        return (
            f"{self.files_prepared + self.files_reused} file(s) ({self.hours:.2f} h, {self.clips} clips); "
            f"decoded now {self.files_prepared}, reused {self.files_reused}; "
            f"skipped {len(self.skipped)} bad file(s): {skipped}"
        )


def prepare_collection(
    source: str | Path,
    destination: str | Path,
    config: CollectionConfig | None = None,
    *,
    progress: bool = True,
    engine: str | None = None,
) -> PreparationReport:
    """Prepare every audio file under ``source`` into shards under ``destination``.

    Writes ``shards/clips-NNNNN.npy`` [shape=(≤ shard_clips, clip_samples)], ``journal.jsonl``,
    ``manifest.csv``, ``representation.json`` and, last, ``collection.json``; a preparation
    interrupted at any point resumes from the journal. Bad files are reported one line each
    (and in ``collection.json``), and the rest goes on.

    ``engine`` (default ``LML_PREPARE_ENGINE``, else ``"beam"``) decides where files are decoded:
    ``"beam"`` on an Apache Beam pipeline (:mod:`lib.data.engine`: every core, or a cluster), whose
    workers leave each file's clips in ``work/``, then copied into the shards in the folder's order;
    ``"local"`` in this process. Both give the same shards, journal and manifest.

    Raises
    ------
    AudioInputError
        If ``source`` is not a folder, or too few files are usable to split by file.
    """
    from tqdm import tqdm

    config = config or CollectionConfig()
    engine = engine or os.environ.get(ENGINE_ENV_VAR, "").strip() or "beam"
    if engine not in ENGINES:
        raise ValueError(f"unknown preparation engine {engine!r}: choose one of {', '.join(ENGINES)}")
    source, destination = Path(source).expanduser().resolve(), Path(destination)
    started = time.perf_counter()
    files, unreadable_folders = walk_folder(source)
    identities = {
        path.relative_to(source).as_posix(): file_identity(path) for path in files if path.is_symlink() or path.exists()
    }
    info_path = destination / "collection.json"
    if info_path.exists():
        info = load_json(info_path)
        if info.get("config_fingerprint") == config.fingerprint() and info.get("identities") == identities:
            logger.info("collection in %s is up to date", shown(destination))
            return PreparationReport(destination, up_to_date=True, clips=info["clips"], hours=info["hours"])
    shard_folder = destination / "shards"
    shard_folder.mkdir(parents=True, exist_ok=True)
    settings_path = destination / "preparation.json"
    if settings_path.exists() and load_json(settings_path).get("config_fingerprint") != config.fingerprint():
        logger.info("the preparation settings changed: starting %s afresh", shown(destination))
        for stale in [*shard_folder.glob("clips-*.npy"), destination / "journal.jsonl", info_path]:
            stale.unlink(missing_ok=True)
        shutil.rmtree(destination / "work", ignore_errors=True)
    save_json(settings_path, {"config": asdict(config), "config_fingerprint": config.fingerprint()}, overwrite=True)
    journal = _Journal(destination / "journal.jsonl")
    done = _current(journal.entries(), identities)
    existing = sorted(int(path.stem.split("-")[1]) for path in shard_folder.glob("clips-*.npy"))
    report = PreparationReport(destination, files_reused=sum(entry["status"] == "ok" for entry in done.values()))
    tasks = [
        FileTask(str(path), name, identities[name], file_label(Path(name), source.name))
        for path in files
        if (name := path.relative_to(source).as_posix()) not in done
    ]
    work_folder = destination / "work" / config.fingerprint()
    by_name = {task.relative: task for task in tasks}

    def forget_work(entries: list[dict]) -> None:  # journaled files' clips are in the shards: their work goes now
        for entry in entries:  # (kept to the end, 2.3 GB at 10 h, the kernel wrote it back and slowed Beam by 10-20 %)
            remove_work(by_name[entry["file"]], work_folder)

    writer = _ShardWriter(
        shard_folder,
        journal,
        shard_clips=config.shard_clips,
        next_shard=(existing[-1] + 1) if existing else 0,
        journaled=forget_work,
    )
    background = None
    if engine == "beam":
        pending = [task for task in tasks if read_work(task, config, work_folder) is None]
        if len(pending) > 1:  # one file is decoded here: starting workers would cost more
            background = BackgroundDecoding(pending, config, work_folder)
    # disable=None: the bar draws on a terminal and stays quiet in logs and notebooks.
    bar = tqdm(tasks, desc=f"preparing {source.name}", unit="file", disable=None if progress else True, file=sys.stderr)
    for task in bar:
        if engine == "local":
            done = None
        else:  # the workers' result, as soon as it is there (copied while they decode the next files)
            done = background.wait_for(task) if background else read_work(task, config, work_folder)
        entry = _add_file(task, config, writer, done)
        writer.finish(entry)
        if entry["status"] == "ok":
            report.files_prepared += 1
        else:
            _say(bar, f"skipped {shown(task.path)}: {entry['problem']}")
        for note in entry.get("notes", []):
            _say(bar, f"note {shown(task.path)}: {note}")
    writer.flush()
    if background:
        report.engine_seconds = background.finish()
    shutil.rmtree(destination / "work", ignore_errors=True)  # every file's clips are in the shards, journaled
    entries = _current(journal.entries(), identities)
    report.skipped = {name: entry["problem"] for name, entry in entries.items() if entry["status"] != "ok"}
    # Journals written before kinds were recorded count their skipped files as "other".
    report.skipped_kinds = {
        name: entry.get("kind", "other") for name, entry in entries.items() if name in report.skipped
    }
    report.skipped.update({str(folder): problem for folder, problem in unreadable_folders.items()})
    report.skipped_kinds.update({str(folder): "folder cannot be listed" for folder in unreadable_folders})
    good = {name: entry for name, entry in entries.items() if entry["status"] == "ok"}
    rows = _manifest_rows(good, config)
    report.clips = len(rows)
    report.hours = sum(entry["seconds"] for entry in good.values()) / 3600
    _write_outputs(source, destination, rows, config, identities, report, good, started)
    report.seconds = time.perf_counter() - started
    logger.info("prepared %s: %s", shown(destination), report.summary())
    return report


def _current(entries: dict[str, dict], identities: dict[str, dict]) -> dict[str, dict]:
    """Journal entries of files still in the folder and unchanged since they were prepared."""
    return {name: entry for name, entry in entries.items() if entry.get("identity") == identities.get(name)}


def _say(bar, message: str) -> None:
    """One warning line that does not tear the progress bar."""
    if bar.disable:
        logger.warning(message)
    else:
        bar.write(message, file=sys.stderr)


def _add_file(task: FileTask, config: CollectionConfig, writer: _ShardWriter, done: tuple | None) -> dict:
    """Put one file's clips into the writer: ``done``, its entry and clips decoded on the engine
    (:func:`lib.data.decoding.read_work`), or, when None, decoded here; returns its journal entry
    (``status`` ok, with each clip's shard and row, or skipped)."""
    mark = writer.mark()
    locations: list[tuple[int, int]] = []
    if done is None:
        entry = decode_file(task, config, lambda clip: locations.append(writer.add(clip)))
    else:
        entry, clips = done
        entry = {key: value for key, value in entry.items() if key != "clips"}
        for clip in clips:
            locations.append(writer.add(np.array(clip, dtype=np.float32)))  # a copy: the work file goes
    if entry["status"] != "ok":
        writer.undo(mark)
        return entry
    return {**entry, "shard": [shard for shard, _ in locations], "row": [row for _, row in locations]}


def assign_file_splits(labels_by_file: dict[str, str], config: CollectionConfig) -> dict[str, str]:
    """A split per file, stratified by label: each label's files are shuffled (seeded) and cut
    by ``split_fractions``; a label with fewer than three files goes whole to ``train``."""
    splits: dict[str, str] = {}
    by_label: dict[str, list[str]] = {}
    for name, label in sorted(labels_by_file.items()):
        by_label.setdefault(label, []).append(name)
    _, valid_fraction, test_fraction = config.split_fractions
    for label, names in sorted(by_label.items()):
        order = np.random.default_rng([config.seed, zlib.crc32(label.encode())]).permutation(len(names))
        shuffled = [names[i] for i in order]
        if len(names) < 3:
            valid_count = test_count = 0
            logger.warning("label %r has %d file(s): all go to train (a split by file needs 3)", label, len(names))
        else:
            valid_count = max(1, int(round(valid_fraction * len(names))))
            test_count = max(1, int(round(test_fraction * len(names))))
        for position, name in enumerate(shuffled):
            in_test = position < valid_count + test_count
            splits[name] = "valid" if position < valid_count else "test" if in_test else "train"
    return splits


def _manifest_rows(entries: dict[str, dict], config: CollectionConfig) -> list[dict]:
    """One row per kept clip, files in sorted order, silent clips dropped."""
    splits = assign_file_splits({name: entry["label"] for name, entry in entries.items()}, config)
    if not {"train", "valid", "test"} <= set(splits.values()):
        raise AudioInputError(
            f"cannot split {len(entries)} usable file(s) by file into train, valid and test: "
            "add recordings (at least three per label for a label to reach every split)"
        )
    rows = []
    for name in sorted(entries):
        entry = entries[name]
        gain_db = 20 * np.log10(entry["gain"])
        for shard, row, start, level in zip(entry["shard"], entry["row"], entry["start"], entry["level_db"]):
            if level + gain_db < config.silence_db:
                continue
            rows.append(
                {
                    "index": len(rows),
                    "split": splits[name],
                    "label": entry["label"],
                    "file": name,
                    "start_seconds": start,
                    "shard": shard,
                    "row": row,
                    "gain": entry["gain"],
                    "level_db": round(level + gain_db, 2),
                }
            )
    return rows


def _write_outputs(
    source: Path,
    destination: Path,
    rows: list[dict],
    config: CollectionConfig,
    identities: dict[str, dict],
    report: PreparationReport,
    good: dict[str, dict],
    started: float,
) -> None:
    """Manifest, representation (peak level fitted on training clips) and, last, collection.json."""
    payload = _manifest_csv(rows)
    atomic_write_bytes(destination / "manifest.csv", payload, overwrite=True, announce=False)
    train = [row for row in rows if row["split"] == "train"]
    pick = np.sort(np.random.default_rng(config.seed).permutation(len(train))[:PEAK_FIT_CLIPS])
    spectrogram_config = SpectrogramConfig.for_clip(sample_rate=config.sample_rate, clip_samples=config.clip_samples)
    representation = SpectrogramRepresentation(spectrogram_config)
    sample = _read_clips(destination / "shards", [train[i] for i in pick])
    peak_db = fit_peak_db(representation.magnitude(sample))
    representation = SpectrogramRepresentation(SpectrogramConfig(**{**asdict(spectrogram_config), "peak_db": peak_db}))
    representation.save(destination / "representation.json", overwrite=True)
    counts = Counter(row["split"] for row in rows)
    info = {
        "config": asdict(config),
        "config_fingerprint": config.fingerprint(),
        "fingerprint": hashlib.sha256(config.fingerprint().encode() + payload).hexdigest()[:16],
        "source": str(source),  # the folder of audio
        "identities": identities,
        "clips": len(rows),
        "clips_per_split": {split: counts.get(split, 0) for split in SPLITS},
        "labels": sorted({row["label"] for row in rows}),
        "files": len(good),
        "hours": report.hours,
        "skipped": report.skipped,
        "skipped_by_kind": dict(Counter(report.skipped_kinds.values())),
        "notes": {name: entry["notes"] for name, entry in good.items() if entry.get("notes")},
        "last_preparation_seconds": round(time.perf_counter() - started, 2),
    }
    save_json(destination / "collection.json", info, overwrite=True, announce=False)


def _manifest_csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _read_manifest(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key in ("index", "shard", "row"):
            row[key] = int(row[key])
        for key in ("start_seconds", "gain", "level_db"):
            row[key] = float(row[key])
    return rows


def _read_clips(shard_folder: Path, rows: list[dict]) -> np.ndarray:
    """Clips of ``rows`` [shape=(len(rows), clip_samples)], each scaled by its file's gain.

    Only the requested rows are read, with plain reads (runs of consecutive rows at once), not through
    a memory map: pages of a map stay counted as the process's memory while it is open, so reading a
    sample spread over a large collection's shards would grow the process with the collection.
    """
    if not rows:
        raise ValueError("no clips requested")
    by_shard: dict[int, list[tuple[int, int]]] = {}
    for position, row in enumerate(rows):
        by_shard.setdefault(row["shard"], []).append((row["row"], position))
    clips = None
    for shard, wanted in by_shard.items():
        with (shard_folder / shard_name(shard)).open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(handle)
            start_of_data = handle.tell()
            if clips is None:
                clips = np.empty((len(rows), shape[1]), dtype=np.float32)
            wanted.sort()
            run_start = 0
            for end in range(1, len(wanted) + 1):  # a run: rows r, r+1, ... read in one call
                if end < len(wanted) and wanted[end][0] == wanted[end - 1][0] + 1:
                    continue
                first, count = wanted[run_start][0], end - run_start
                if first < 0 or first + count > shape[0]:
                    raise ValueError(f"{shard_name(shard)} has {shape[0]} clips; row {first + count - 1} requested")
                handle.seek(start_of_data + first * shape[1] * dtype.itemsize)
                block = np.fromfile(handle, dtype=dtype, count=count * shape[1]).reshape(count, shape[1])
                for offset, (_, position) in enumerate(wanted[run_start:end]):
                    clips[position] = block[offset] * np.float32(rows[position]["gain"])
                run_start = end
    return clips


@dataclass
class FolderConfig:
    """The stored preparation settings, with what the stages ask of any dataset's config."""

    collection: CollectionConfig
    fingerprint_value: str

    @property
    def sample_rate(self) -> int:
        return self.collection.sample_rate

    @property
    def clip_samples(self) -> int:
        return self.collection.clip_samples

    @property
    def clip_seconds(self) -> float:
        return self.collection.clip_seconds

    def fingerprint(self) -> str:
        """Hash of the settings and the manifest: models trained on other clips are not reused."""
        return self.fingerprint_value


@dataclass
class FolderDataset(ClipDataset):
    """A prepared folder: the manifest in memory, the clips in memory-mapped shards."""

    manifest: list[dict]
    config: FolderConfig
    representation: SpectrogramRepresentation
    folder: Path
    info: dict

    kind = "folder"
    has_note_labels = False  # no pitch, velocity or instrument family: stages say what they skip

    @property
    def labels(self) -> tuple[str, ...]:
        """The sub-folder labels, sorted."""
        return tuple(self.info["labels"])

    def clips(self, indices: np.ndarray) -> np.ndarray:
        """Waveforms [shape=(len(indices), clip_samples)] of manifest rows, gain applied."""
        return _read_clips(self.folder / "shards", [self.manifest[int(i)] for i in indices])

    def describe(self, row: dict) -> str:
        """A clip in words: its file and where in it the clip starts."""
        return f"{row['file']} @ {row['start_seconds']:.0f} s"


def load_collection(folder: str | Path) -> FolderDataset:
    """Read a collection prepared by :func:`prepare_collection`.

    Raises
    ------
    AudioInputError
        If the folder holds no finished preparation.
    """
    folder = Path(folder)
    info_path = folder / "collection.json"
    if not info_path.exists():
        raise NotReadyError("no prepared collection here; run `make data DATASET=<folder>`", folder)
    info = load_json(info_path)
    config = config_from_json(CollectionConfig, info["config"])
    manifest = _read_manifest(folder / "manifest.csv")
    if len(manifest) != info["clips"]:
        raise AudioInputError(
            f"manifest.csv lists {len(manifest)} clips but collection.json says {info['clips']}; prepare again",
            folder,
        )
    representation = SpectrogramRepresentation.load(folder / "representation.json")
    return FolderDataset(manifest, FolderConfig(config, info["fingerprint"]), representation, folder, info)
