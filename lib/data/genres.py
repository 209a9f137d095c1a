"""Genre collections, built offline from the scores in music21's corpus.

Four stylistically distinct collections: Bach's four-part chorales, Palestrina's masses,
Monteverdi's madrigals and the fiddle tunes of Ryan's Mammoth Collection. Each score goes
score → MIDI (music21, parsed from its source so the pickle cache is never touched) →
audio (tinysoundfont with the General MIDI SoundFont shipped in pretty_midi, as the notes are).

Every genre is rendered with the **same palette** of instruments (score *i* of a genre gets
``PALETTE[i % len(PALETTE)]``, every part of it the same program), so that genre lives in the
music (harmony, rhythm, texture, range) and not in the timbre. Each score gives one file of its
first ``excerpt_seconds``: ``<genre>/<score>__<instrument>.flac``. The result is an ordinary
folder of audio, which :mod:`lib.data.collection` prepares like any user's folder (labels from the
genre folders, splits by file, so by score).

Rendering is deterministic; a file already written is kept (writes are atomic), so an
interrupted build resumes; scores that fail to parse or convert are reported and skipped.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile

from lib.core.fileio import atomic_write_bytes, load_json, save_json, settings_hash
from lib.core.parallel import spawned_pool
from lib.core.paths import shown
from lib.data.synth import render_score

logger = logging.getLogger(__name__)

# genre -> (music21 corpus composer, file extensions taken)
GENRES: dict[str, tuple[str, tuple[str, ...]]] = {
    "chorale": ("bach", (".mxl",)),
    "mass": ("palestrina", (".krn",)),
    "madrigal": ("monteverdi", (".mxl",)),
    "fiddle_tune": ("ryansMammoth", (".abc",)),
}
PALETTE: dict[int, str] = {0: "piano", 6: "harpsichord", 19: "organ", 48: "strings"}  # GM program -> name


@dataclass(frozen=True)
class GenreConfig:
    """Everything that decides the rendered audio; its hash names the build."""

    scores_per_genre: int = 30
    excerpt_seconds: float = 30.0  # the start of each score, plus the release of its last notes
    sample_rate: int = 22_050  # Hz of the written files (the collection resamples them, as any folder)
    seed: int = 20261129  # picks the scores

    def fingerprint(self) -> str:
        """Short hash of the settings."""
        return settings_hash(asdict(self))


def smoke_genre_config() -> GenreConfig:
    """A tiny build for tests: 5 scores of 8 s per genre."""
    return GenreConfig(scores_per_genre=5, excerpt_seconds=8.0)


def candidate_scores(genre: str, seed: int) -> list[Path]:
    """Every score of a genre in music21's corpus, in a seeded order (the build takes them in turn)."""
    from music21 import corpus

    composer, extensions = GENRES[genre]
    candidates = sorted(Path(path) for path in corpus.getComposer(composer) if Path(path).suffix in extensions)
    if not candidates:
        raise RuntimeError(f"music21's corpus has no {composer} scores; reinstall music21 (make setup)")
    order = np.random.default_rng([seed, zlib.crc32(genre.encode())]).permutation(len(candidates))
    return [candidates[i] for i in order]


@dataclass(frozen=True)
class ScoreNote:
    """One note of a score, in seconds, on one part."""

    start: float
    end: float
    pitch: int
    velocity: int
    part: int


def score_notes(path: Path) -> list[ScoreNote]:
    """Every note of a score with its part, via MIDI (tempo marks honoured; 120 qpm where none).

    Raises
    ------
    ValueError
        If the score cannot be parsed or converted, or holds no notes.
    """
    import pretty_midi
    from music21 import converter
    from music21.midi import translate

    try:
        score = converter.parse(str(path), forceSource=True)
        payload = translate.streamToMidiFile(score).writestr()
        midi = pretty_midi.PrettyMIDI(io.BytesIO(payload))
    except Exception as error:  # music21 and pretty_midi raise many kinds for a score they cannot take
        raise ValueError(f"cannot convert to MIDI ({type(error).__name__}: {error})") from error
    notes = [
        ScoreNote(float(note.start), float(note.end), int(note.pitch), int(note.velocity), part)
        for part, track in enumerate(track for track in midi.instruments if not track.is_drum)
        for note in track.notes
        if note.end > note.start
    ]
    if not notes:
        raise ValueError("holds no notes")
    return sorted(notes, key=lambda note: (note.start, note.part, note.pitch))


def file_name(score: Path, program: int) -> str:
    """``<score stem>__<instrument>.flac``."""
    return f"{score.stem}__{PALETTE[program]}.flac"


def build_genre_audio(
    folder: Path, config: GenreConfig | None = None, *, progress: bool = True, workers: int | None = None
) -> dict:
    """Render every genre's scores into ``folder/<genre>/`` (kept files are reused).

    Scores are taken in a seeded order until each genre has ``scores_per_genre``; one that
    fails is reported, skipped and replaced by the next. Scores render in ``workers`` processes
    (default: one per core) with the same files as one process would write: each score's
    instrument follows from the scores before it that worked. Returns the build record (also
    written to ``folder/.genres.json``, last): the files per genre and the scores that failed, with why.
    """
    from tqdm import tqdm

    config = config or GenreConfig()
    record_path = folder / ".genres.json"  # hidden: the collection's walk leaves it out
    if record_path.exists() and load_json(record_path).get("fingerprint") == config.fingerprint():
        return load_json(record_path)
    if record_path.exists():
        logger.info("genre settings changed: rendering %s again", shown(folder))
        for stale in folder.glob("*/*.flac"):
            stale.unlink()
        record_path.unlink()
    failed: dict[str, str] = {}
    rendered: dict[str, list[str]] = {genre: [] for genre in GENRES}
    bar = tqdm(
        total=config.scores_per_genre * len(GENRES),
        desc="rendering genres",
        unit="score",
        disable=None if progress else True,
    )
    with _render_pool(workers) as pool:
        for genre in GENRES:
            candidates = candidate_scores(genre, config.seed)
            taken = 0  # candidates decided so far, in order
            while len(rendered[genre]) < config.scores_per_genre and taken < len(candidates):
                wave = _submit_wave(pool, folder, genre, candidates[taken:], len(rendered[genre]), config)
                for score, path, job in wave:
                    taken += 1
                    if job is not None:
                        outcome = job.result()
                        if isinstance(outcome, str):
                            failed[f"{genre}/{score.name}"] = outcome
                            bar.write(f"skipped score {genre}/{score.name}: {outcome}", file=sys.stderr)
                            break  # the later scores of this wave were given instruments as if this one worked
                        atomic_write_bytes(path, outcome, announce=False)
                    rendered[genre].append(path.name)
                    bar.update()
                for _, _, job in wave:
                    if job is not None:
                        job.cancel()
    bar.close()
    record = {
        "config": asdict(config),
        "fingerprint": config.fingerprint(),
        "palette": {str(program): name for program, name in PALETTE.items()},
        "sources": {genre: composer for genre, (composer, _) in GENRES.items()},
        "rendered": rendered,
        "failed": failed,
    }
    save_json(record_path, record, overwrite=True, announce=False)
    return record


def _submit_wave(pool, folder: Path, genre: str, scores: list[Path], done: int, config: GenreConfig) -> list[tuple]:
    """Submit the next scores a genre still needs: (score, path, job or None when the file is kept)."""
    programs = list(PALETTE)
    wave = []
    for offset, score in enumerate(scores[: config.scores_per_genre - done]):
        program = programs[(done + offset) % len(programs)]
        path = folder / genre / file_name(score, program)
        job = None
        if not path.exists():
            job = pool.submit(_render_flac, score, program, config.sample_rate, config.excerpt_seconds)
        wave.append((score, path, job))
    return wave


def _render_flac(score: Path, program: int, sample_rate: int, seconds: float) -> bytes | str:
    """One score rendered to FLAC bytes (16-bit), or why it cannot be (run in a worker process)."""
    try:
        audio = render_score(score_notes(score), program, sample_rate=sample_rate, seconds=seconds)
    except ValueError as error:
        return str(error)
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, sample_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def _render_pool(workers: int | None):
    """Worker processes for rendering (spawned: the caller may hold TensorFlow's threads); inline for one."""
    from concurrent.futures import Executor, Future

    workers = workers or os.cpu_count() or 1
    if workers > 1:
        return spawned_pool(workers)

    class Inline(Executor):
        def submit(self, function, /, *args, **kwargs):
            job = Future()
            job.set_result(function(*args, **kwargs))
            return job

    return Inline()
