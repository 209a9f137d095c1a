"""Training-set augmentation: new material made from the training clips, for models that must generalise.

An autoencoder trained on a few dozen instruments learns their spectra so well that it maps an
instrument it never heard onto one it knows, and one trained on an hour of music fits its clips
within a few epochs. Three cheap transformations of the training audio widen what it sees without
any new data:

* **mixtures** of two clips from different sources (programs, files) at random gains: spectra
  that no single training source has;
* **pitch shifts by resampling**: a clip played faster or slower moves its partials *and* its
  formants, which is how a different instrument of the same family often differs;
* **windows between clips** of a folder (:func:`between_clips`): a folder's clips are cut end to end,
  so a window starting inside one clip and ending inside the next is known exactly; the same music
  framed where no training clip is.

Everything is seeded and computed once per run, in the waveform domain, so the clips go through
the same representation as real ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from lib.core.errors import AudioInputError

SHIFT_SEMITONES: tuple[float, ...] = (-2.0, -1.0, 1.0, 2.0)  # pitch shifts drawn for each clip
MIX_GAIN_DB: tuple[float, float] = (-6.0, 0.0)  # range of each clip's gain in a mixture
PEAK_LIMIT = 0.99  # linear peak a mixture is scaled down to if it would exceed it


def _check(waveforms: np.ndarray) -> np.ndarray:
    waveforms = np.asarray(waveforms, dtype=np.float32)
    if waveforms.ndim != 2 or waveforms.shape[1] == 0:
        raise AudioInputError(f"expected waveforms of shape (n, samples), got {waveforms.shape}")
    if not np.all(np.isfinite(waveforms)):
        raise AudioInputError("waveforms contain NaN or infinite samples")
    return waveforms


def pitch_shift(waveform: np.ndarray, semitones: float) -> np.ndarray:
    """Shift a clip [shape=(samples,)] by ``semitones`` by resampling; same length out (cut or padded).

    Playing ``n`` samples back in ``n / 2**(semitones / 12)`` raises the pitch by ``semitones``
    and shortens the clip: the end is padded with silence (or, shifting down, cut).
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    ratio = Fraction(2.0 ** (semitones / 12.0)).limit_denominator(200)
    shifted = resample_poly(waveform, ratio.denominator, ratio.numerator).astype(np.float32)
    samples = waveform.shape[-1]
    return shifted[:samples] if len(shifted) >= samples else np.pad(shifted, (0, samples - len(shifted)))


def shifted_keeping_time(waveforms: np.ndarray, semitones: float, *, sample_rate: int) -> np.ndarray:
    """Clips [shape=(n, samples)] shifted by ``semitones`` with their length and timing kept (librosa's
    phase vocoder and resampling), as a player's transpose button does [shape=(n, samples)].

    Unlike :func:`pitch_shift`, the music keeps its tempo: the same notes, higher or lower.
    """
    import librosa

    waveforms = _check(waveforms)
    frame = min(2048, 2 ** int(np.log2(waveforms.shape[1])))  # librosa's frame, or the clip's length if shorter
    shifted = np.empty_like(waveforms)
    for start in range(0, len(waveforms), 256):  # a block at a time: librosa's buffers stay small
        block = waveforms[start : start + 256]
        shifted[start : start + len(block)] = librosa.effects.pitch_shift(
            block, sr=sample_rate, n_steps=semitones, n_fft=frame
        )
    return shifted


def mixtures(waveforms: np.ndarray, groups: Sequence, *, seed: int) -> np.ndarray:
    """Sums of two clips from different groups at random gains [shape=(m, samples)], m <= n.

    ``groups`` names each clip's source (a program, a file): a clip is never mixed with one of
    its own source. Each clip is paired once with a randomly drawn partner; pairs whose sources
    match are dropped.
    """
    waveforms = _check(waveforms)
    groups = np.asarray([str(group) for group in groups])
    if len(groups) != len(waveforms):
        raise ValueError(f"{len(groups)} group names for {len(waveforms)} clips")
    rng = np.random.default_rng(seed)
    first, second = np.arange(len(waveforms)), rng.permutation(len(waveforms))
    kept = groups[first] != groups[second]
    first, second = first[kept], second[kept]
    gains = 10.0 ** (rng.uniform(*MIX_GAIN_DB, size=(2, len(first), 1)) / 20.0)
    mixed = gains[0] * waveforms[first] + gains[1] * waveforms[second]
    peak = np.abs(mixed).max(axis=1, keepdims=True) if len(mixed) else np.zeros((0, 1))
    return (mixed * np.minimum(1.0, PEAK_LIMIT / np.maximum(peak, 1e-12))).astype(np.float32)


def pitch_shifted(waveforms: np.ndarray, *, seed: int) -> np.ndarray:
    """Every clip shifted by a shift drawn from ``SHIFT_SEMITONES`` [shape=(n, samples)]."""
    waveforms = _check(waveforms)
    shifts = np.random.default_rng(seed).choice(SHIFT_SEMITONES, size=len(waveforms))
    shifted = np.empty_like(waveforms)
    for index, (clip, semitones) in enumerate(zip(waveforms, shifts, strict=True)):
        shifted[index] = pitch_shift(clip, float(semitones))
    return shifted


def between_clips(
    waveforms: np.ndarray, rows: Sequence[dict], *, clip_seconds: float, offsets: Sequence[float] = (0.5,)
) -> np.ndarray:
    """Clips that start between two consecutive clips of one file [shape=(m, samples)], m <= (n - 1) * len(offsets).

    A folder's clips are cut end to end (``start_seconds`` ``clip_seconds`` apart, one ``gain`` per file),
    so the audio from inside one clip to inside the next is known exactly: the first clip's tail joined to
    the second's head. Each offset (a share of the clip, in (0, 1)) gives one such clip per pair: new
    windows on the same music, framed where no training clip is. Pairs that are not contiguous (a silent
    clip left out between them, another file, another gain) give none; rows without ``file`` and
    ``start_seconds`` (the notes) give none at all.
    """
    waveforms = _check(waveforms)
    if len(rows) != len(waveforms):
        raise ValueError(f"{len(rows)} manifest rows for {len(waveforms)} clips")
    if any(not 0.0 < offset < 1.0 for offset in offsets):
        raise ValueError(f"offsets must lie strictly between 0 and 1, got {list(offsets)}")
    samples = waveforms.shape[1]
    pairs = [index for index in range(len(rows) - 1) if _contiguous(rows[index], rows[index + 1], clip_seconds)]
    made = np.empty((len(pairs) * len(offsets), samples), dtype=np.float32)
    for position, (index, offset) in enumerate((i, o) for i in pairs for o in offsets):
        cut = int(round(offset * samples))
        made[position, : samples - cut] = waveforms[index, cut:]
        made[position, samples - cut :] = waveforms[index + 1, :cut]
    return made


def _contiguous(first: dict, second: dict, clip_seconds: float) -> bool:
    """Whether ``second``'s clip starts where ``first``'s ends, in the same file at the same gain."""
    if not all(key in row for row in (first, second) for key in ("file", "start_seconds")):
        return False
    if first["file"] != second["file"] or first.get("gain") != second.get("gain"):
        return False
    step = float(second["start_seconds"]) - float(first["start_seconds"])
    return abs(step - clip_seconds) < 1e-6


def augmented_clips(waveforms: np.ndarray, groups: Sequence, *, seed: int) -> np.ndarray:
    """The extra training clips: one mixture and one pitch shift per clip [shape=(<= 2n, samples)]."""
    return np.concatenate([mixtures(waveforms, groups, seed=seed), pitch_shifted(waveforms, seed=seed + 1)])


def source_of(row: dict) -> str:
    """The source a manifest row's clip comes from: its program (notes) or its file (a folder)."""
    for key in ("program", "file", "score"):
        if key in row:
            return f"{key}:{row[key]}"
    raise KeyError(f"manifest row has no program, file or score to tell its source: {sorted(row)}")


def training_extras(
    waveforms: np.ndarray,
    rows: Sequence[dict],
    *,
    seed: int,
    clip_seconds: float,
    mix_and_shift: bool = True,
    between_offsets: Sequence[float] = (),
) -> np.ndarray:
    """Every extra training clip made from the clips held [shape=(m, samples)]: a mixture and a pitch shift per
    clip (:func:`augmented_clips`, when ``mix_and_shift``), then the windows between consecutive clips of a file
    at ``between_offsets`` (:func:`between_clips`; none for the notes, whose clips are not cut end to end)."""
    waveforms = _check(waveforms)
    parts = [np.zeros((0, waveforms.shape[1]), np.float32)]
    if mix_and_shift:
        parts.append(augmented_clips(waveforms, [source_of(row) for row in rows], seed=seed))
    if between_offsets:
        parts.append(between_clips(waveforms, rows, clip_seconds=clip_seconds, offsets=between_offsets))
    return np.concatenate(parts)
