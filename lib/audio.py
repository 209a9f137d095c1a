"""Audio loading, cleaning and writing, with clear errors for bad input.

Every loader validates at the boundary: a file that is empty, truncated, not audio, holds
NaN/Inf samples, is silent, is shorter than a clip or has an unsupported sample rate raises
:class:`lib.errors.AudioInputError` with the file's name and the problem. ``load_folder``
skips such files, reports each in one line and a summary, and returns the good ones.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import librosa
import numpy as np
import soundfile

from lib.errors import AudioInputError
from lib.fileio import atomic_write_bytes

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")
MIN_SAMPLE_RATE = 4_000  # Hz; below this nothing musical survives
MAX_SAMPLE_RATE = 384_000  # Hz; above this the file is almost surely mislabelled
SILENCE_PEAK = 1e-4  # linear amplitude; a clip whose peak stays below this counts as silent


def load_audio(
    path: str | Path,
    *,
    sample_rate: int,
    min_seconds: float = 0.0,
) -> np.ndarray:
    """Load one audio file as mono float32 at ``sample_rate``.

    Parameters
    ----------
    path : str or Path
        Any file libsndfile reads: WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF.
    sample_rate : int
        Target rate in Hz; the file is resampled (soxr) when it differs.
    min_seconds : float
        Files shorter than this (after resampling) are refused.

    Returns
    -------
    waveform : np.ndarray [shape=(n,), dtype=float32]
        Samples in [-1, 1].

    Raises
    ------
    AudioInputError
        With the file's name and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioInputError("no such file", path)
    if path.stat().st_size == 0:
        raise AudioInputError("file is empty (0 bytes)", path)
    try:
        samples, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioInputError(f"not readable as audio ({error})", path) from error
    return _clean(samples, file_rate, path, sample_rate=sample_rate, min_seconds=min_seconds)


def decode_audio_bytes(payload: bytes, *, sample_rate: int, name: str = "<bytes>") -> np.ndarray:
    """Decode an in-memory encoded file (WAV, OGG, MP3 …) to mono float32 at ``sample_rate``."""
    try:
        samples, file_rate = soundfile.read(io.BytesIO(payload), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioInputError(f"not readable as audio ({error})", name) from error
    return _clean(samples, file_rate, name, sample_rate=sample_rate, min_seconds=0.0)


def _clean(
    samples: np.ndarray, file_rate: int, path: str | Path, *, sample_rate: int, min_seconds: float
) -> np.ndarray:
    """Validate decoded samples [shape=(n, channels)], mix to mono and resample."""
    if samples.shape[0] == 0:
        raise AudioInputError("holds no samples (empty or truncated)", path)
    if not MIN_SAMPLE_RATE <= file_rate <= MAX_SAMPLE_RATE:
        raise AudioInputError(
            f"unsupported sample rate {file_rate} Hz (expected {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE})",
            path,
        )
    if not np.all(np.isfinite(samples)):
        raise AudioInputError("contains NaN or infinite samples", path)
    mono = to_mono(samples.T)
    if file_rate != sample_rate:
        mono = resample(mono, file_rate, sample_rate)
    if np.max(np.abs(mono)) < SILENCE_PEAK:
        raise AudioInputError(f"is silent (peak below {SILENCE_PEAK:g})", path)
    duration = mono.shape[0] / sample_rate
    if duration < min_seconds:
        raise AudioInputError(f"is {duration:.3f} s long, shorter than a {min_seconds:g} s clip", path)
    return mono.astype(np.float32)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels: [shape=(channels, n)] or [shape=(n,)] to [shape=(n,)]."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise AudioInputError(f"expected 1 or 2 dimensions (channels, samples), got shape {samples.shape}")
    return samples.mean(axis=0)


def resample(waveform: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample a mono waveform from ``source_rate`` to ``target_rate`` Hz (soxr, high quality)."""
    if source_rate <= 0 or target_rate <= 0:
        raise AudioInputError(f"sample rates must be positive, got {source_rate} and {target_rate}")
    if source_rate == target_rate:
        return np.asarray(waveform, dtype=np.float32)
    return librosa.resample(waveform, orig_sr=source_rate, target_sr=target_rate, res_type="soxr_hq").astype(np.float32)


def trim_silence(waveform: np.ndarray, *, top_db: float = 60.0) -> np.ndarray:
    """Remove leading and trailing parts quieter than ``top_db`` below the peak."""
    trimmed, _ = librosa.effects.trim(waveform, top_db=top_db)
    return trimmed


def normalise_loudness(waveform: np.ndarray, *, target_rms_db: float = -20.0, peak_limit: float = 0.99) -> np.ndarray:
    """Scale to an RMS of ``target_rms_db`` dBFS, then lower the gain if the peak would clip.

    Raises
    ------
    AudioInputError
        If the waveform is silent (no gain can make it audible).
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    rms = float(np.sqrt(np.mean(np.square(waveform)))) if waveform.size else 0.0
    if rms < SILENCE_PEAK / 10:
        raise AudioInputError("cannot normalise a silent waveform")
    gain = 10 ** (target_rms_db / 20) / rms
    peak = float(np.max(np.abs(waveform))) * gain
    if peak > peak_limit:
        gain *= peak_limit / peak
    return (waveform * gain).astype(np.float32)


def cut_segments(waveform: np.ndarray, *, segment_samples: int, hop_samples: int | None = None) -> np.ndarray:
    """Cut fixed-length segments.

    Returns
    -------
    segments : np.ndarray [shape=(count, segment_samples)]
        Only whole segments; a tail shorter than a segment is dropped.

    Raises
    ------
    AudioInputError
        If the waveform is shorter than one segment.
    """
    if segment_samples <= 0:
        raise AudioInputError(f"segment_samples must be positive, got {segment_samples}")
    hop_samples = segment_samples if hop_samples is None else hop_samples
    if hop_samples <= 0:
        raise AudioInputError(f"hop_samples must be positive, got {hop_samples}")
    if waveform.shape[0] < segment_samples:
        raise AudioInputError(
            f"waveform of {waveform.shape[0]} samples is shorter than one segment ({segment_samples})"
        )
    starts = range(0, waveform.shape[0] - segment_samples + 1, hop_samples)
    return np.stack([waveform[start : start + segment_samples] for start in starts]).astype(np.float32)


@dataclass
class FolderLoadReport:
    """What ``load_folder`` found: good waveforms by path, and one line per skipped file."""

    waveforms: dict[Path, np.ndarray] = field(default_factory=dict)
    skipped: dict[Path, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: how many files loaded and how many were skipped."""
        return f"loaded {len(self.waveforms)} file(s), skipped {len(self.skipped)} bad file(s)"


def load_folder(
    folder: str | Path,
    *,
    sample_rate: int,
    min_seconds: float = 0.0,
    extensions: tuple[str, ...] | None = None,
) -> FolderLoadReport:
    """Load every file in ``folder`` (not recursive), skipping and reporting bad ones.

    Files whose extension is not an audio extension are reported as skipped too, so a stray
    text file in the folder is visible instead of silently ignored (hidden files excepted).

    Raises
    ------
    AudioInputError
        If the folder does not exist or holds no loadable audio at all.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioInputError("not a folder", folder)
    extensions = AUDIO_EXTENSIONS if extensions is None else extensions
    report = FolderLoadReport()
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() not in extensions:
            report.skipped[path] = f"not an audio file extension ({path.suffix or 'none'})"
        else:
            try:
                report.waveforms[path] = load_audio(path, sample_rate=sample_rate, min_seconds=min_seconds)
            except AudioInputError as error:
                report.skipped[path] = error.problem
    for path, problem in report.skipped.items():
        logger.warning("skipped %s: %s", path, problem)
    if report.skipped:
        logger.warning(report.summary())
    else:
        logger.info(report.summary())
    if not report.waveforms:
        raise AudioInputError(f"no loadable audio ({report.summary()})", folder)
    return report


def write_wav(path: str | Path, waveform: np.ndarray, *, sample_rate: int, overwrite: bool = False) -> Path:
    """Write a mono float waveform as 16-bit PCM WAV, atomically.

    Samples outside [-1, 1] are clipped rather than wrapped.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise AudioInputError(f"write_wav expects a mono waveform of shape (n,), got {waveform.shape}", path)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(waveform, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)
