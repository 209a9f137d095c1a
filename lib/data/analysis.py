"""Descriptors of decoded audio that attribute vectors should move: pitch, loudness, brightness."""

from __future__ import annotations

import functools

import librosa
import numpy as np

from lib.core.parallel import map_in_processes

F0_RANGE_HZ = (50.0, 2000.0)  # pyin's search range: below the lowest and above the highest note used


def frame_f0_hz(
    waveforms: np.ndarray,
    *,
    sample_rate: int,
    hop_length: int = 512,
    fmin: float = F0_RANGE_HZ[0],
    fmax: float = F0_RANGE_HZ[1],
    resolution: float = 0.1,
) -> np.ndarray:
    """Fundamental frequency per frame (librosa.pyin), NaN in unvoiced frames.

    waveforms : [shape=(..., samples)] -> [shape=(..., frames)] in Hz, one frame every ``hop_length`` samples.
    ``resolution`` is pyin's pitch grid in semitones: its Viterbi pass costs the square of the
    number of grid points, so 0.2 runs about five times faster than 0.1 (and is off by at most
    10 cents).
    """
    waveforms = np.asarray(waveforms, dtype=np.float32)
    settings = {"sr": sample_rate, "fmin": fmin, "fmax": fmax, "hop_length": hop_length, "resolution": resolution}
    if waveforms.ndim < 2:
        return _pyin(waveforms, settings)
    flat = waveforms.reshape(-1, waveforms.shape[-1])
    f0 = np.concatenate(map_in_processes(functools.partial(_pyin, settings=settings), flat))
    return f0.reshape(*waveforms.shape[:-1], f0.shape[-1])


def _pyin(waveforms: np.ndarray, settings: dict) -> np.ndarray:
    """librosa.pyin's f0 [shape=(..., frames)] with NaN where unvoiced (a worker process's share)."""
    f0, voiced, _ = librosa.pyin(waveforms, frame_length=2048, **settings)
    return np.where(voiced, f0, np.nan)


def median_f0_hz(
    waveforms: np.ndarray,
    *,
    sample_rate: int,
    fmin: float = F0_RANGE_HZ[0],
    fmax: float = F0_RANGE_HZ[1],
    resolution: float = 0.1,
) -> np.ndarray:
    """Median fundamental frequency of the voiced frames (librosa.pyin), NaN where none is voiced.

    waveforms : [shape=(n, samples)] -> [shape=(n,)] in Hz
    """
    waveforms = np.atleast_2d(np.asarray(waveforms, dtype=np.float32))
    values = frame_f0_hz(waveforms, sample_rate=sample_rate, fmin=fmin, fmax=fmax, resolution=resolution)
    with np.errstate(all="ignore"):
        return np.array([np.nanmedian(row) if np.any(np.isfinite(row)) else np.nan for row in values])


def rms_db(waveforms: np.ndarray) -> np.ndarray:
    """Root-mean-square level in dBFS per clip: [shape=(n, samples)] -> [shape=(n,)]."""
    waveforms = np.atleast_2d(np.asarray(waveforms, dtype=np.float64))
    return 20 * np.log10(np.sqrt(np.mean(waveforms**2, axis=-1)) + 1e-10)


def spectral_centroid_hz(waveforms: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """Energy-weighted mean spectral centroid per clip, in Hz: [shape=(n, samples)] -> [shape=(n,)]."""
    waveforms = np.atleast_2d(np.asarray(waveforms, dtype=np.float32))
    magnitude = np.abs(librosa.stft(waveforms, n_fft=1024, hop_length=256))
    frequencies = librosa.fft_frequencies(sr=sample_rate, n_fft=1024)
    energy = magnitude.sum(axis=(-2, -1))
    return np.einsum("f,nft->n", frequencies, magnitude) / np.maximum(energy, 1e-10)


def semitones(frequency_ratio: np.ndarray) -> np.ndarray:
    """Frequency ratio to semitones (12 per octave)."""
    return 12 * np.log2(frequency_ratio)


def chroma_tuning(waveforms: np.ndarray, *, sample_rate: int, hop_length: int = 512) -> float:
    """The tuning (fractions of a semitone off A440) librosa's chroma estimates from clips [shape=(n, samples)]
    taken together: what :func:`dominant_pitch_class` uses when it is given none."""
    waveforms = np.atleast_2d(np.asarray(waveforms, dtype=np.float32))
    power = np.abs(librosa.stft(waveforms, n_fft=2048, hop_length=hop_length)) ** 2
    return float(librosa.estimate_tuning(S=power, sr=sample_rate, bins_per_octave=12))


def dominant_pitch_class(
    waveforms: np.ndarray, *, sample_rate: int, hop_length: int = 512, tuning: float | None = None
) -> np.ndarray:
    """The pitch class (0 = C … 11 = B) with the most chroma energy over each clip.

    waveforms : [shape=(n, samples)] -> [shape=(n,)] integers. A label any music has, with no
    annotation: for a single note its pitch class, for a chord or a passage its strongest one.
    Without a ``tuning`` it is estimated from the clips given, together (:func:`chroma_tuning`), so a
    clip's class can depend on the others: give clips labelled in several passes one tuning.
    """
    waveforms = np.atleast_2d(np.asarray(waveforms, dtype=np.float32))
    chroma = librosa.feature.chroma_stft(y=waveforms, sr=sample_rate, hop_length=hop_length, tuning=tuning)
    return np.argmax(chroma.sum(axis=-1), axis=-1).astype(np.int64)


# What every clip has, whatever its dataset: measured from its audio (the conditions of lib.models.conditional's
# LabelConditionSpace, and what lib.measure.control checks on decoded requests).
ATTRIBUTES: tuple[str, ...] = ("loudness_db", "brightness_octaves", "onset_rate")
ATTRIBUTE_UNITS = {"loudness_db": "dBFS", "brightness_octaves": "log2 Hz", "onset_rate": "onsets/s"}
ONSET_HOP = 512  # samples between onset-strength frames


def measure_attributes(waveforms: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """The attributes of each clip [shape=(n, len(ATTRIBUTES))] of waveforms [shape=(n, samples)].

    ``loudness_db``: RMS level in dBFS; ``brightness_octaves``: log2 of the spectral centroid in
    Hz (brightness is heard on a log scale); ``onset_rate``: note onsets per second (librosa's
    onset detector), the density of events. A silent clip gets the floor of each measure.
    """
    waveforms = np.atleast_2d(np.asarray(waveforms, dtype=np.float32))
    if waveforms.ndim != 2 or waveforms.shape[1] == 0:
        raise ValueError(f"need waveforms of shape (n, samples), got {waveforms.shape}")
    seconds = waveforms.shape[1] / sample_rate
    loudness = rms_db(waveforms)
    centroid = np.nan_to_num(spectral_centroid_hz(waveforms, sample_rate=sample_rate), nan=1.0)
    onsets = np.array(
        [
            len(librosa.onset.onset_detect(y=clip, sr=sample_rate, hop_length=ONSET_HOP, units="frames"))
            for clip in waveforms
        ],
        dtype=np.float64,
    )
    return np.stack([loudness, np.log2(np.maximum(centroid, 1.0)), onsets / seconds], axis=1)
