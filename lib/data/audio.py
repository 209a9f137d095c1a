"""Audio loading, cleaning and writing, with clear errors for bad input.

Every loader validates at the boundary: a file that is empty, cut off after its header, not
audio, in a format libsndfile cannot decode, a broken link, unreadable, holds NaN/Inf samples,
is silent or only a DC offset, is shorter than a clip or has an unsupported sample rate raises
:class:`lib.core.errors.AudioInputError` with the file's name and the problem; the folder path
(:mod:`lib.data.collection`) skips such files and reports each in one line and a summary.

Files are decoded in blocks (:class:`AudioStream`): a long recording is never held whole at
its own rate and again resampled. Every block is mixed to mono, resampled (soxr, streaming)
and passed through a DC blocker (a one-pole high-pass at ``DC_CUTOFF_HZ``), so a constant or
drifting offset never reaches the models.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import librosa
import numpy as np
import soundfile
import soxr
from scipy import signal

from lib.core.errors import AudioInputError
from lib.core.fileio import atomic_write_bytes
from lib.core.paths import shown

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".caf", ".w64")
# Audio that libsndfile (and so soundfile) cannot decode: named, so the message can say how to convert it.
UNSUPPORTED_AUDIO_EXTENSIONS = (".m4a", ".aac", ".mp4", ".m4b", ".alac", ".wma", ".ape", ".ac3", ".amr", ".webm")
UNSUPPORTED_AUDIO_EXTENSIONS += (".mka", ".3gp", ".wv", ".dsf")
DC_CUTOFF_HZ = 10.0  # corner of the DC blocker applied to every decoded file
DC_OFFSET_NOTE = 0.01  # a mean above this share of full scale (or of the peak, if higher) is reported
BLOCK_SECONDS = 30.0  # seconds of the source decoded at a time
MIN_SAMPLE_RATE = 4_000  # Hz; below this nothing musical survives
MAX_SAMPLE_RATE = 384_000  # Hz; above this the file is almost surely mislabelled
SHORT_TAIL_SECONDS = 0.5  # a missing tail up to this long (and up to SHORT_TAIL_SHARE) is kept with a note
SHORT_TAIL_SHARE = 0.01  # of the declared length: beyond it, a file that stops early is refused as truncated
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
    check_file(path)
    stream = AudioStream(path, sample_rate=sample_rate)
    blocks = list(stream)
    stream.finish()
    waveform = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    if stream.raw_peak > 1.0:  # normalised with a warning rather than refused: float files may carry headroom
        scale = max(stream.clean_peak, 1.0)
        logger.warning("%s: %s; scaled by 1/%.3g to fit [-1, 1]", path, stream.out_of_range_note(), scale)
        waveform /= np.float32(scale)
    duration = waveform.shape[0] / sample_rate
    if duration < min_seconds:
        raise AudioInputError(
            f"is {duration:.3f} s long, shorter than a {min_seconds:g} s clip", path, kind="shorter than"
        )
    return waveform.astype(np.float32, copy=False)


def check_file(path: str | Path, *, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> None:
    """Problems visible before decoding: a broken link, no file, a format libsndfile cannot
    read, a name that is not audio, an empty or unreadable file.

    Raises
    ------
    AudioInputError
        With the file's name and the problem.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        target = os.readlink(path)
        shown_target = shown(target) if os.path.isabs(target) else target
        raise AudioInputError(
            f"broken symbolic link (points to {shown_target}, which does not exist)", path, kind="broken symbolic link"
        )
    if not path.is_file():
        raise AudioInputError("no such file", path)
    suffix = path.suffix.lower()
    if suffix in UNSUPPORTED_AUDIO_EXTENSIONS:
        raise AudioInputError(
            f"format not supported ({suffix}: libsndfile cannot decode it); "
            f'convert it with ffmpeg, e.g. ffmpeg -i "{path.name}" "{path.stem}.flac"',
            path,
            kind="format not supported",
        )
    if suffix not in extensions:
        raise AudioInputError(
            f"not an audio file extension ({suffix or 'none'})", path, kind="not an audio file extension"
        )
    try:
        with path.open("rb") as handle:
            first = handle.read(1)
    except PermissionError as error:
        raise AudioInputError(
            "permission denied: cannot read it (check the file's permissions)", path, kind="permission denied"
        ) from error
    except OSError as error:
        raise AudioInputError(f"cannot be read ({error.strerror or error})", path) from error
    if not first:
        raise AudioInputError("file is empty (0 bytes)", path, kind="empty")


def wav_declared_frames(path: str | Path) -> int | None:
    """Frames the ``data`` chunk of a RIFF/WAVE header declares; None if not a plain WAV or
    the size is a streaming placeholder (0 or 0xFFFFFFFF).

    libsndfile reports the frames actually present, so a file cut off after an intact header
    reads as a shorter clip without a word; comparing with this number catches it.
    """
    with Path(path).open("rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        block_align = 0
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if chunk_id == b"fmt ":
                body = handle.read(size + size % 2)
                block_align = int.from_bytes(body[12:14], "little") if len(body) >= 14 else 0
            elif chunk_id == b"data":
                if size in (0, 0xFFFFFFFF) or block_align == 0:
                    return None
                return size // block_align
            else:
                handle.seek(size + size % 2, os.SEEK_CUR)


class AudioStream:
    """Decode one file in blocks: mono, resampled to ``sample_rate``, DC removed.

    Iterating yields float32 blocks [shape=(n,)] at ``sample_rate``; their concatenation is
    the whole file. Opening validates the header (readable, sample rate, frames present as
    declared); iterating validates the samples (finite); :meth:`finish` validates the whole
    (not silent, not only a DC offset, every declared frame decoded). Statistics of the raw
    samples (peak, mean) and of the cleaned signal (sum of squares, peak) are kept, so a
    caller can normalise loudness per file without a second pass.

    Parameters
    ----------
    source : path or binary file object
    sample_rate : int
        Output rate in Hz.
    name : str, optional
        How messages name an in-memory source.
    block_seconds : float
        Seconds of the source decoded at a time.
    """

    def __init__(
        self,
        source: str | Path | BinaryIO,
        *,
        sample_rate: int,
        name: str | None = None,
        block_seconds: float = BLOCK_SECONDS,
    ) -> None:
        self.name = name or str(source)
        self.source = source
        self.sample_rate = sample_rate
        try:
            info = soundfile.info(source)
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
            raise AudioInputError(
                f"not readable as audio ({error})", self.name, kind="not readable as audio"
            ) from error
        if hasattr(source, "seek"):
            source.seek(0)
        self.source_rate, self.channels, self.declared_frames = int(info.samplerate), int(info.channels), info.frames
        if not MIN_SAMPLE_RATE <= self.source_rate <= MAX_SAMPLE_RATE:
            raise AudioInputError(
                f"unsupported sample rate {self.source_rate} Hz (expected {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE})",
                self.name,
                kind="sample rate",
            )
        if isinstance(source, (str, Path)) and info.format in ("WAV", "WAVEX"):
            header_frames = wav_declared_frames(source)
            if header_frames is not None and header_frames > info.frames:
                missing = header_frames - info.frames
                raise AudioInputError(
                    f"truncated: the header declares {header_frames} frames but only {info.frames} are present "
                    f"({missing / self.source_rate:.2f} s, {100 * missing / header_frames:.0f} % missing)",
                    self.name,
                    kind="truncated",
                )
        self.block_frames = max(1, int(block_seconds * self.source_rate))
        self.frames_read = 0
        self.raw_peak = 0.0
        self.raw_low, self.raw_high = np.inf, -np.inf  # the raw swing: a constant file has none
        self.raw_sum = 0.0
        self.clean_square_sum = 0.0
        self.clean_peak = 0.0
        self.samples_out = 0

    @property
    def seconds(self) -> float:
        """Duration of the source read so far, in seconds."""
        return self.frames_read / self.source_rate

    @property
    def raw_mean(self) -> float:
        """Mean of the raw mono samples read so far (the DC offset)."""
        return self.raw_sum / max(self.frames_read, 1)

    @property
    def clean_rms(self) -> float:
        """RMS of the cleaned (resampled, DC-free) signal so far."""
        return float(np.sqrt(self.clean_square_sum / max(self.samples_out, 1)))

    def __iter__(self) -> Iterator[np.ndarray]:
        resampler = None
        if self.source_rate != self.sample_rate:
            resampler = soxr.ResampleStream(self.source_rate, self.sample_rate, 1, dtype="float32", quality="HQ")
        pole = float(np.exp(-2 * np.pi * DC_CUTOFF_HZ / self.sample_rate))
        numerator, denominator = np.array([1.0, -1.0]), np.array([1.0, -pole])
        state = None
        try:
            handle = soundfile.SoundFile(self.source)
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
            raise AudioInputError(
                f"not readable as audio ({error})", self.name, kind="not readable as audio"
            ) from error
        with handle:
            while True:
                try:
                    raw = handle.read(self.block_frames, dtype="float32", always_2d=True)
                except (soundfile.LibsndfileError, RuntimeError) as error:
                    raise AudioInputError(
                        f"decoding failed after {self.seconds:.1f} s ({error})", self.name, kind="decoding failed"
                    ) from error
                last = raw.shape[0] < self.block_frames
                mono = raw.mean(axis=1) if raw.shape[1] > 1 else raw[:, 0]
                if not np.all(np.isfinite(mono)):
                    raise AudioInputError("contains NaN or infinite samples", self.name, kind="NaN")
                if mono.size:
                    self.frames_read += mono.size
                    self.raw_peak = max(self.raw_peak, float(np.max(np.abs(mono))))
                    self.raw_low, self.raw_high = (
                        min(self.raw_low, float(mono.min())),
                        max(self.raw_high, float(mono.max())),
                    )
                    self.raw_sum += float(np.sum(mono, dtype=np.float64))
                block = self._resample(resampler, mono, last=last)
                if block.size:
                    if state is None:
                        state = signal.lfilter_zi(numerator, denominator) * block[0]
                    block, state = signal.lfilter(numerator, denominator, block, zi=state)
                    block = block.astype(np.float32)
                    self.samples_out += block.size
                    self.clean_square_sum += float(np.sum(np.square(block, dtype=np.float64)))
                    self.clean_peak = max(self.clean_peak, float(np.max(np.abs(block))))
                    yield block
                if last:
                    break

    def _resample(self, resampler, mono: np.ndarray, *, last: bool) -> np.ndarray:
        if resampler is None:
            return np.ascontiguousarray(mono, dtype=np.float32)
        try:
            return resampler.resample_chunk(np.ascontiguousarray(mono, dtype=np.float32), last=last)
        except (RuntimeError, ValueError) as error:
            raise AudioInputError(
                f"resampling from {self.source_rate} Hz to {self.sample_rate} Hz failed ({error})",
                self.name,
                kind="resampling",
            ) from error

    def finish(self) -> None:
        """Validate the whole file once every block was read.

        Raises
        ------
        AudioInputError
            If no samples, fewer frames than declared, only a DC offset, or silence.
        """
        if self.frames_read == 0:
            raise AudioInputError("holds no samples (empty or truncated)", self.name, kind="truncated")
        if self.declared_frames > 0 and self.frames_read < self.declared_frames and not self.short_tail_only:
            raise AudioInputError(
                f"truncated: decoding stopped at frame {self.frames_read} of {self.declared_frames}",
                self.name,
                kind="truncated",
            )
        # Judged on the raw samples: the resampler's and the DC blocker's start-up transients would
        # otherwise make a constant file look like a short sound.
        no_swing = self.raw_high - self.raw_low < 2 * SILENCE_PEAK
        if self.clean_peak < SILENCE_PEAK or no_swing:
            if abs(self.raw_mean) >= SILENCE_PEAK:
                raise AudioInputError(
                    f"holds only a DC offset ({self.raw_mean:+.3g}) and no signal", self.name, kind="only a DC offset"
                )
            raise AudioInputError(f"is silent (peak below {SILENCE_PEAK:g})", self.name, kind="silent")

    @property
    def missing_frames(self) -> int:
        """Frames the header declares that decoding did not deliver (0 when all arrived)."""
        return max(0, self.declared_frames - self.frames_read)

    @property
    def short_tail_only(self) -> bool:
        """Is what decoding did not deliver a short tail that is kept with a note, not a truncation?

        Ogg (Vorbis, Opus) headers get their length from the last page's granule position, and some
        encoders declare a few thousand frames more than they write: a fraction of a second at the end
        of a good recording. Up to ``SHORT_TAIL_SECONDS`` and ``SHORT_TAIL_SHARE`` of the file, less
        than one clip is lost by keeping it; more than that is a cut-off file, refused.
        """
        missing = self.missing_frames
        return (
            0 < missing <= SHORT_TAIL_SECONDS * self.source_rate and missing <= SHORT_TAIL_SHARE * self.declared_frames
        )

    def out_of_range_note(self) -> str:
        """Words for raw samples beyond [-1, 1] (float files can hold them)."""
        return f"float samples reach {self.raw_peak:.3g}, outside [-1, 1]"

    def notes(self) -> list[str]:
        """Warnings about a file that was decoded anyway: samples out of range, a DC offset removed."""
        found = []
        if self.raw_peak > 1.0:
            found.append(self.out_of_range_note())
        if abs(self.raw_mean) > DC_OFFSET_NOTE * max(self.raw_peak, 1.0):
            found.append(f"DC offset of {self.raw_mean:+.3g} removed")
        if self.short_tail_only:
            found.append(
                f"the header declares {self.declared_frames} frames, {self.missing_frames} "
                f"({self.missing_frames / self.source_rate:.2f} s) at the end did not decode: kept without them"
            )
        return found


def decode_audio_bytes(payload: bytes, *, sample_rate: int, name: str = "<bytes>") -> np.ndarray:
    """Decode an in-memory encoded file (WAV, OGG, MP3 …) to mono float32 at ``sample_rate``."""
    try:
        samples, file_rate = soundfile.read(io.BytesIO(payload), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioInputError(f"not readable as audio ({error})", name, kind="not readable as audio") from error
    return _clean(samples, file_rate, name, sample_rate=sample_rate, min_seconds=0.0)


def _clean(
    samples: np.ndarray, file_rate: int, path: str | Path, *, sample_rate: int, min_seconds: float
) -> np.ndarray:
    """Validate decoded samples [shape=(n, channels)], mix to mono and resample."""
    if samples.shape[0] == 0:
        raise AudioInputError("holds no samples (empty or truncated)", path, kind="truncated")
    if not MIN_SAMPLE_RATE <= file_rate <= MAX_SAMPLE_RATE:
        raise AudioInputError(
            f"unsupported sample rate {file_rate} Hz (expected {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE})",
            path,
            kind="sample rate",
        )
    if not np.all(np.isfinite(samples)):
        raise AudioInputError("contains NaN or infinite samples", path, kind="NaN")
    mono = to_mono(samples.T)
    if file_rate != sample_rate:
        mono = resample(mono, file_rate, sample_rate)
    if np.max(np.abs(mono)) < SILENCE_PEAK:
        raise AudioInputError(f"is silent (peak below {SILENCE_PEAK:g})", path, kind="silent")
    duration = mono.shape[0] / sample_rate
    if duration < min_seconds:
        raise AudioInputError(
            f"is {duration:.3f} s long, shorter than a {min_seconds:g} s clip", path, kind="shorter than"
        )
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


def walk_folder(folder: str | Path) -> tuple[list[Path], dict[Path, str]]:
    """Every file under ``folder``, nested folders included, in sorted order.

    Hidden files and folders (names starting with a dot) are left out. Symbolic links to
    files are listed (a broken one too, so that it can be reported); links to folders are
    not followed, so a link loop cannot trap the walk.

    Returns
    -------
    files : list of Path
    unreadable_folders : dict of Path to problem
        Sub-folders that could not be listed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioInputError("not a folder", folder)
    files: list[Path] = []
    unreadable: dict[Path, str] = {}

    def remember(error: OSError) -> None:
        unreadable[Path(error.filename)] = f"folder cannot be listed ({error.strerror or error})"

    for root, folders, names in os.walk(folder, onerror=remember):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        files.extend(Path(root) / name for name in sorted(names) if not name.startswith("."))
    return sorted(files), unreadable


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
