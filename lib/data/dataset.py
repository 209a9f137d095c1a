"""The datasets every stage runs on, chosen by ``DATASET`` (``LML_DATASET``).

``notes`` (the default): single notes rendered offline from the General MIDI SoundFont.
``genres``: four collections of music21's scores rendered with it (:mod:`lib.data.genres`).
Any other value names a folder of the user's audio; like the genres, it is prepared by
:mod:`lib.data.collection`.
:func:`load_dataset` returns either kind with the same interface (``split``, ``counts``,
``describe``, ``config.sample_rate`` …); ``has_note_labels`` says whether the clips carry
pitch, velocity and instrument family, which some stages need.

The notes:

pretty_midi ships ``TimGM6mb.sf2`` (a GPL-2 General MIDI SoundFont by Tim Brechbill);
tinysoundfont renders it without any audio device. Every clip is one note of a fixed
length with a fixed release, labelled with its GM program, instrument family, MIDI pitch
and velocity, like NSynth. The render is deterministic and cached under ``data/``; it is
redone only when its parameters change.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from lib.core.errors import AudioInputError, NotReadyError
from lib.core.fileio import (
    atomic_write_bytes,
    config_from_json,
    load_json,
    load_npy,
    save_json,
    save_npy,
    settings_hash,
)
from lib.core.paths import (
    DEFAULT_CLIP_SECONDS,
    DEFAULT_DATASET,
    SHIPPED_DATASETS,
    clip_seconds_choice,
    data_dir,
    dataset_choice,
    shown,
    smoke_mode,
    split_clips_choice,
)
from lib.data import collection
from lib.data.clips import SPLITS as SPLITS  # the splits every dataset has, for the notebooks
from lib.data.clips import ClipDataset
from lib.data.phrases import load_phrases
from lib.data.synth import NoteRenderer, soundfont_path
from lib.spectral.representation import SpectrogramConfig, SpectrogramRepresentation, fit_peak_db

logger = logging.getLogger(__name__)

# General MIDI programs (0-based) grouped into NSynth-like instrument families.
FAMILY_PROGRAMS: dict[str, tuple[int, ...]] = {
    "keyboard": (0, 4, 6),  # Piano 1, E.Piano 1, Harpsichord
    "mallet": (11, 12),  # Vibraphone, Marimba
    "organ": (16, 19, 21),  # Organ 1, Church Organ, Accordion
    "guitar": (24, 25, 27),  # Nylon, Steel, Clean Guitar
    "bass": (32, 33, 38),  # Acoustic, Fingered, Synth Bass 1
    "string": (40, 42, 48),  # Violin, Cello, String Ensemble
    "brass": (56, 57, 60),  # Trumpet, Trombone, French Horns
    "reed": (65, 68, 71),  # Alto Sax, Oboe, Clarinet
    "flute": (73, 74, 75),  # Flute, Recorder, Pan Flute
    "synth_lead": (80, 81),  # Square, Saw
    "synth_pad": (89, 90),  # Warm Pad, Poly Synth
    "vocal": (52, 53),  # Choir Aahs, Voice Oohs
}
FAMILIES: tuple[str, ...] = tuple(FAMILY_PROGRAMS)
SILENT_RENDER_PEAK = 1e-3  # linear peak below which a rendered note counts as missing from the SoundFont
SPLIT_SAMPLE_SEED = 20261203  # draws a split's sample when it is larger than its limit (the same in every stage)
PREPARED_PHRASES_PER_HELD = 4  # a folder's phrases prepared at most, in multiples of those its splits hold


@dataclass(frozen=True)
class DatasetConfig:
    """Everything that determines the rendered clips; its hash names the cache."""

    programs: tuple[int, ...] = tuple(p for programs in FAMILY_PROGRAMS.values() for p in programs)
    heldout_programs: tuple[int, ...] = (6, 25, 42, 71)  # whole programs kept out of training
    pitches: tuple[int, ...] = tuple(range(48, 85))  # MIDI notes C3..C6
    velocities: tuple[int, ...] = (45, 80, 115)  # MIDI velocities
    sample_rate: int = 16_000  # Hz
    clip_seconds: float = 1.0  # length of each clip
    note_seconds: float = 0.75  # key held down; the rest of the clip is the release
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, valid, test
    seed: int = 20261126  # drives the split

    @property
    def clip_samples(self) -> int:
        """Samples per clip."""
        return int(round(self.clip_seconds * self.sample_rate))

    def fingerprint(self) -> str:
        """Short hash of this configuration and the representation's, to decide whether the cache is stale."""
        return settings_hash({"dataset": asdict(self), "representation": asdict(SpectrogramConfig())})


def smoke_config() -> DatasetConfig:
    """A tiny dataset for tests: 6 programs, 15 pitches, 2 velocities (180 clips)."""
    return DatasetConfig(
        programs=(0, 24, 40, 56, 73, 81),
        heldout_programs=(40,),
        pitches=tuple(range(55, 70)),
        velocities=(60, 110),
    )


def default_config() -> DatasetConfig:
    """The configuration for the current mode: smoke or full."""
    return smoke_config() if smoke_mode() else DatasetConfig()


def program_family(program: int) -> str:
    """Instrument family of a GM program among those the dataset uses."""
    for family, programs in FAMILY_PROGRAMS.items():
        if program in programs:
            return family
    raise ValueError(f"program {program} belongs to no family in FAMILY_PROGRAMS")


def assign_splits(config: DatasetConfig) -> list[dict]:
    """The manifest rows (without waveforms), each in exactly one split.

    Held-out programs go whole to ``heldout``; the other (program, pitch, velocity) clips are
    shuffled with the configured seed and cut by ``split_fractions``.
    """
    rows = [
        {"program": program, "family": program_family(program), "pitch": pitch, "velocity": velocity}
        for program in config.programs
        for pitch in config.pitches
        for velocity in config.velocities
    ]
    trainable = [index for index, row in enumerate(rows) if row["program"] not in config.heldout_programs]
    order = np.random.default_rng(config.seed).permutation(len(trainable))
    train_fraction, valid_fraction, _ = config.split_fractions
    train_end = int(round(train_fraction * len(trainable)))
    valid_end = train_end + int(round(valid_fraction * len(trainable)))
    for position, shuffled in enumerate(order):
        split = "train" if position < train_end else "valid" if position < valid_end else "test"
        rows[trainable[shuffled]]["split"] = split
    for row in rows:
        row.setdefault("split", "heldout")
    for index, row in enumerate(rows):
        row["index"] = index
    return rows


MANIFEST_FIELDS = ("index", "split", "program", "name", "family", "pitch", "velocity")


@dataclass
class NoteDataset(ClipDataset):
    """The rendered clips with their labels (``label`` is the instrument family), held in memory."""

    waveforms: np.ndarray  # [shape=(clips, clip_samples)], float32
    manifest: list[dict]  # one row per clip, fields MANIFEST_FIELDS
    config: DatasetConfig
    representation: SpectrogramRepresentation
    folder: Path = field(default_factory=Path)

    kind = "notes"
    has_note_labels = True  # every clip has pitch, velocity, program and family

    @property
    def labels(self) -> tuple[str, ...]:
        """The instrument families present (each row's ``label`` is its family)."""
        return tuple(family for family in FAMILIES if any(row["family"] == family for row in self.manifest))

    def describe(self, row: dict) -> str:
        """A clip in words: preset, pitch and velocity."""
        return f"{row['name']} · pitch {row['pitch']} · vel {row['velocity']}"

    def title(self, row: dict) -> str:
        """A clip in a few words: preset, MIDI pitch, velocity ("Piano 60 v100")."""
        return f"{row['name']} {row['pitch']} v{row['velocity']}"

    def clips(self, indices: np.ndarray) -> np.ndarray:
        """Waveforms [shape=(len(indices), clip_samples)] of manifest rows."""
        return self.waveforms[np.asarray(indices, dtype=np.int64)]


def build_dataset(config: DatasetConfig | None = None, folder: Path | None = None, *, force: bool = False) -> Path:
    """Render the dataset into ``folder`` unless an up-to-date copy is already there.

    Writes ``waveforms.npy`` [shape=(clips, clip_samples)], ``manifest.csv``,
    ``representation.json`` (with the peak level fitted on the training split) and
    ``dataset.json`` (the configuration, its fingerprint and the build time) last, so a
    build interrupted halfway is redone next time.
    """
    config = config or default_config()
    folder = folder or data_dir(dataset=DEFAULT_DATASET)
    info_path = folder / "dataset.json"
    if not force and info_path.exists() and load_json(info_path).get("fingerprint") == config.fingerprint():
        logger.info("dataset in %s is up to date", shown(folder))
        return folder
    started = time.perf_counter()
    rows = assign_splits(config)
    renderer = NoteRenderer(sample_rate=config.sample_rate)
    note_samples = int(round(config.note_seconds * config.sample_rate))
    waveforms = np.stack(
        [
            renderer.render(
                row["program"],
                row["pitch"],
                row["velocity"],
                clip_samples=config.clip_samples,
                note_samples=note_samples,
            )
            for row in rows
        ]
    )
    # Some presets have gaps in their key ranges (TimGM6mb's Alto Sax is silent at E4):
    # those notes are dropped and listed in dataset.json, never kept as silent clips.
    audible = np.max(np.abs(waveforms), axis=1) >= SILENT_RENDER_PEAK
    dropped = [
        {key: row[key] for key in ("program", "pitch", "velocity")} for row, keep in zip(rows, audible) if not keep
    ]
    for note in dropped:
        logger.warning("dropped silent render: program %(program)d pitch %(pitch)d velocity %(velocity)d", note)
    rows = [row for row, keep in zip(rows, audible) if keep]
    waveforms = waveforms[audible]
    for index, row in enumerate(rows):
        row["index"] = index
        row["name"] = renderer.preset_name(row["program"])
    spectrogram_config = SpectrogramConfig(sample_rate=config.sample_rate, clip_samples=config.clip_samples)
    representation = SpectrogramRepresentation(spectrogram_config)
    train_indices = [row["index"] for row in rows if row["split"] == "train"]
    peak_db = fit_peak_db(representation.magnitude(waveforms[train_indices]))
    representation = SpectrogramRepresentation(SpectrogramConfig(**{**asdict(spectrogram_config), "peak_db": peak_db}))

    save_npy(folder / "waveforms.npy", waveforms, overwrite=True)
    atomic_write_bytes(folder / "manifest.csv", _manifest_csv(rows), overwrite=True)
    representation.save(folder / "representation.json", overwrite=True)
    seconds = time.perf_counter() - started
    info = {
        "config": asdict(config),
        "fingerprint": config.fingerprint(),
        "build_seconds": round(seconds, 2),
        "clips": len(rows),
        "dropped_silent_notes": dropped,
        "soundfont": soundfont_path().name,
    }
    save_json(info_path, info, overwrite=True)
    logger.info("rendered %d clips into %s in %.1f s", len(rows), shown(folder), seconds)
    return folder


def load_dataset(
    folder: Path | None = None, *, build: bool = True, dataset: str | None = None
) -> NoteDataset | collection.FolderDataset:
    """Load (preparing first if needed, when ``build``) the chosen dataset in the current mode.

    ``dataset`` defaults to ``LML_DATASET``: ``notes`` or a folder of audio. Its splits are limited to
    the clips ``LML_TRAIN_CLIPS`` and ``LML_EVALUATION_CLIPS`` allow (:func:`lib.core.paths.split_clips_choice`):
    a larger split is held as a seeded sample (:meth:`lib.data.clips.ClipDataset.limit_splits`).
    """
    loaded = _load_dataset(folder, build=build, dataset=dataset)
    loaded.limit_splits(split_clips_choice(), seed=SPLIT_SAMPLE_SEED)
    return loaded


def _load_dataset(folder: Path | None, *, build: bool, dataset: str | None) -> NoteDataset | collection.FolderDataset:
    choice = dataset_choice() if dataset is None else dataset
    if choice == "genres":
        from lib.data import genres

        root = folder or data_dir(dataset=choice)
        if build:
            genres.build_genre_audio(root / "audio", genres.smoke_genre_config() if smoke_mode() else None)
            collection.prepare_collection(root / "audio", root / "clips", clip_config())
        return collection.load_collection(root / "clips")
    if choice != DEFAULT_DATASET:
        source = folder_source(choice)
        destination = folder or data_dir(dataset=choice)
        if build:
            collection.prepare_collection(source, destination, clip_config())
        return collection.load_collection(destination)
    clip_seconds_choice()  # the notes are one-second notes: another CLIP_SECONDS is a clear error
    config = default_config()
    folder = folder or data_dir(dataset=DEFAULT_DATASET)
    if build:
        build_dataset(config, folder)
    info_path = folder / "dataset.json"
    if not info_path.exists():
        raise NotReadyError("no dataset here; run `make data`", folder)
    info = load_json(info_path)
    stored_config = config_from_json(DatasetConfig, info["config"])
    waveforms = load_npy(folder / "waveforms.npy")
    manifest = _read_manifest(folder / "manifest.csv")
    if waveforms.shape != (len(manifest), stored_config.clip_samples):
        raise AudioInputError(
            f"waveforms.npy has shape {waveforms.shape} but the manifest lists {len(manifest)} clips; "
            "rebuild with `make data`",
            folder,
        )
    representation = SpectrogramRepresentation.load(folder / "representation.json")
    return NoteDataset(waveforms, manifest, stored_config, representation, folder)


def clip_config() -> collection.CollectionConfig:
    """How the genres and a folder are cut: ``CLIP_SECONDS`` long (default 1 s, back to back);
    longer clips start every half clip, as notebook 05's phrases do."""
    seconds = clip_seconds_choice()
    hop = seconds if seconds <= DEFAULT_CLIP_SECONDS else seconds / 2
    return collection.CollectionConfig(clip_seconds=seconds, hop_seconds=hop)


def load_phrase_dataset(
    config: collection.CollectionConfig,
    *,
    scores_per_genre: int,
    choice: str | None = None,
    build: bool = True,
    split_clips: dict[str, int | None] | None = None,
) -> collection.FolderDataset:
    """The phrases notebook 05 works on in a run of ``choice`` (default ``LML_DATASET``), cut by ``config``.

    The notes' and the genres' runs: the genre collections' own phrases (:func:`lib.data.phrases.load_phrases`,
    ``scores_per_genre`` scores each). A folder: the folder itself cut into phrases, prepared (and cached)
    beside its clips in ``<data folder>-phrases-<seconds>s``; its labels are its sub-folders. Its splits
    are limited by ``split_clips`` (phrases by split, :func:`lib.core.paths.split_limits`), or else as
    :func:`load_dataset`'s are.
    """
    choice = dataset_choice() if choice is None else choice
    limits = split_clips_choice() if split_clips is None else split_clips
    if choice in SHIPPED_DATASETS:
        phrases = load_phrases(config, scores_per_genre=scores_per_genre, build=build)
    else:
        clips_folder = data_dir(dataset=choice)
        destination = clips_folder.with_name(f"{clips_folder.name}-phrases-{config.clip_seconds:g}s")
        if build:
            config = bounded_phrase_config(config, clips_folder, limits)
            collection.prepare_collection(folder_source(choice), destination, config)
        phrases = collection.load_collection(destination)
    phrases.limit_splits(limits, seed=SPLIT_SAMPLE_SEED)
    return phrases


def bounded_phrase_config(
    config: collection.CollectionConfig, clips_folder: Path, split_clips: dict[str, int | None]
) -> collection.CollectionConfig:
    """``config`` with phrase starts spaced out on a large folder, so that its preparation stays bounded.

    A folder's phrases are prepared in full, then each split is sampled down to ``split_clips``. At
    half-overlapping 4 s phrases a 50 h folder would store every second twice (42 GB written,
    more than the disk had, in the README's scale runs), for a run that holds 3,300 of them. So the
    hop grows until the folder's hours (from its prepared 1 s clips, ``clips_folder``) give at most
    ``PREPARED_PHRASES_PER_HELD`` times the phrases the splits hold; a folder small enough keeps
    ``config``'s hop, and so does a run without limits or a folder whose clips are not prepared yet.
    """
    held = [split_clips.get(split) for split in ("train", "valid", "test")]
    info_path = Path(clips_folder) / "collection.json"
    if any(limit is None for limit in held) or not info_path.exists():
        return config
    most, hours = PREPARED_PHRASES_PER_HELD * sum(held), load_json(info_path)["hours"]
    hop = max(config.hop_seconds, math.ceil(100 * hours * 3600 / most) / 100)
    if hop > config.hop_seconds:
        logger.info("%.1f h of audio: phrases start every %g s (about %d prepared at most)", hours, hop, most)
    return replace(config, hop_seconds=hop)


def folder_source(choice: str) -> Path:
    """The folder a DATASET value names.

    Raises
    ------
    AudioInputError
        If it names neither a shipped dataset nor an existing folder.
    """
    source = Path(choice).expanduser()
    if not source.is_dir():
        raise AudioInputError(
            f"DATASET names neither a shipped dataset ({', '.join(SHIPPED_DATASETS)}) nor an existing folder", choice
        )
    return source.resolve()


def _manifest_csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: row[key] for key in MANIFEST_FIELDS})
    return buffer.getvalue().encode("utf-8")


def _read_manifest(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key in ("index", "program", "pitch", "velocity"):
            row[key] = int(row[key])
        row["label"] = row["family"]
    return rows


def find_note(rows: list[dict], program: int, pitch: int, velocity: int | None = None) -> int | None:
    """Position in ``rows`` (manifest rows of notes) of the first clip of this program and MIDI pitch
    (and velocity, if given); None if there is none."""
    for position, row in enumerate(rows):
        if row["program"] == program and row["pitch"] == pitch and (velocity is None or row["velocity"] == velocity):
            return position
    return None


def main() -> None:
    """``python -m lib.data.dataset``: build the chosen dataset (``LML_DATASET``) and print its counts."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if dataset_choice() == DEFAULT_DATASET:
        build_dataset()
    dataset = load_dataset()
    print(f"dataset in {dataset.folder}: {dataset.counts()}")
    if dataset_choice() == "genres":  # and the 4 s phrases of notebook 05
        phrases = load_phrases()
        print(f"phrases in {phrases.folder}: {phrases.counts()}")


if __name__ == "__main__":
    main()
