"""Distances between reference and estimated waveforms: the yardsticks of every stage.

Every function takes waveforms of shape (..., n) and returns one value per clip, shape
(...). Lower is better for distances; higher is better for SNR and SI-SDR.
"""

from __future__ import annotations

import functools

import librosa
import numpy as np

from lib.core.errors import AudioInputError
from lib.core.parallel import map_chunks
from lib.spectral.representation import stft_magnitude

POWER_FLOOR = 1e-10  # power added before the log
LOG_MAGNITUDE_EPSILON = 1e-5  # magnitude added before the log in the multi-resolution distance
SUMMARY_CHUNK = 32  # clips per task of summarise
MULTI_RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop)


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a reference/estimate pair of equal shape (..., n)."""
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.shape != estimate.shape:
        raise AudioInputError(f"reference shape {reference.shape} differs from estimate shape {estimate.shape}")
    if reference.shape[-1] == 0:
        raise AudioInputError("waveforms hold no samples")
    if not (np.all(np.isfinite(reference)) and np.all(np.isfinite(estimate))):
        raise AudioInputError("waveforms contain NaN or infinite samples")
    return reference, estimate


def log_mel_distance_db(
    reference: np.ndarray,
    estimate: np.ndarray,
    *,
    sample_rate: int,
    n_fft: int = 1024,
    hop_length: int = 256,
    n_mels: int = 80,
    floor_db: float = 80.0,
) -> np.ndarray:
    """Mean absolute difference of log-mel power spectrograms, in dB.

    Both spectrograms are floored at ``floor_db`` below the reference's peak, so
    differences in inaudible parts do not count.

    Returns
    -------
    distance : np.ndarray [shape=(...)]
        dB per clip; 0 for identical clips, |20 log10 g| for a gain g on a broadband clip.
    """
    reference, estimate = _pair(reference, estimate)
    return log_mel_magnitude_distance_db(
        _magnitude(reference, n_fft, hop_length),
        _magnitude(estimate, n_fft, hop_length),
        sample_rate=sample_rate,
        n_fft=n_fft,
        n_mels=n_mels,
        floor_db=floor_db,
    )


def log_mel_magnitude_distance_db(
    reference_magnitude: np.ndarray,
    estimate_magnitude: np.ndarray,
    *,
    sample_rate: int,
    n_fft: int = 1024,
    n_mels: int = 80,
    floor_db: float = 80.0,
) -> np.ndarray:
    """:func:`log_mel_distance_db` on linear STFT magnitudes [shape=(..., bins, frames)], no audio needed.

    ``bins`` is ``n_fft // 2 + 1``, or one fewer when the Nyquist bin was dropped (as the
    representation does). Measured on a model's predicted magnitudes it skips phase
    reconstruction: a quick stand-in for the distance after Griffin-Lim. One value per clip.
    """
    if estimate_magnitude.shape != reference_magnitude.shape:
        raise ValueError(f"magnitudes {reference_magnitude.shape} and {estimate_magnitude.shape} must match")
    settings = {"sample_rate": sample_rate, "n_fft": n_fft, "n_mels": n_mels}
    return log_mel_db_distance(
        log_mel_power_db(reference_magnitude, **settings),
        log_mel_power_db(estimate_magnitude, **settings),
        floor_db=floor_db,
    )


def log_mel_power_db(magnitude: np.ndarray, *, sample_rate: int, n_fft: int = 1024, n_mels: int = 80) -> np.ndarray:
    """Mel power in dB [shape=(..., n_mels, frames)] of linear STFT magnitudes [shape=(..., bins, frames)].

    ``bins`` is ``n_fft // 2 + 1``, or one fewer when the Nyquist bin was dropped. The half that
    :func:`log_mel_magnitude_distance_db` computes of each side: a reference measured against many
    estimates is worked out once.
    """
    bins = magnitude.shape[-2]
    if bins not in (n_fft // 2, n_fft // 2 + 1):
        raise ValueError(f"magnitudes of shape {magnitude.shape} need {n_fft // 2 + 1} (or {n_fft // 2}) bins")
    mel_filters = _mel_filters(sample_rate, n_fft, n_mels)[:, :bins]
    return 10 * np.log10(np.matmul(mel_filters, np.asarray(magnitude) ** 2) + POWER_FLOOR)


def mel_filter_bank(sample_rate: int, *, n_fft: int = 1024, n_mels: int = 80) -> np.ndarray:
    """The mel filter bank of :func:`log_mel_power_db` [shape=(n_mels, n_fft // 2 + 1)], read-only."""
    return _mel_filters(sample_rate, n_fft, n_mels)


@functools.lru_cache(maxsize=8)
def _mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa's mel filter bank [shape=(n_mels, n_fft // 2 + 1)], read-only: built once, not per chunk of clips."""
    filters = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
    filters.setflags(write=False)
    return filters


def log_mel_db_distance(reference_db: np.ndarray, estimate_db: np.ndarray, *, floor_db: float = 80.0) -> np.ndarray:
    """Mean absolute difference (dB) per clip [shape=(...)] of two :func:`log_mel_power_db` results.

    Both are floored at ``floor_db`` below the reference's peak, so differences in inaudible parts
    do not count.
    """
    floor = reference_db.max(axis=(-2, -1), keepdims=True) - floor_db
    difference = np.abs(np.maximum(reference_db, floor) - np.maximum(estimate_db, floor))
    return difference.mean(axis=(-2, -1))


def _magnitude(waveforms: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    return stft_magnitude(waveforms, n_fft=n_fft, hop_length=hop_length)


def spectral_convergence(
    reference: np.ndarray, estimate: np.ndarray, *, n_fft: int = 1024, hop_length: int = 256
) -> np.ndarray:
    """Frobenius norm of the magnitude difference over that of the reference's magnitude.

    Returns one value per clip [shape=(...)]: 0 when identical, |1 - g| for a gain g.
    """
    reference, estimate = _pair(reference, estimate)
    return _spectral_convergence(_magnitude(reference, n_fft, hop_length), _magnitude(estimate, n_fft, hop_length))


def _spectral_convergence(reference_magnitude: np.ndarray, estimate_magnitude: np.ndarray) -> np.ndarray:
    numerator = np.linalg.norm(reference_magnitude - estimate_magnitude, axis=(-2, -1))
    denominator = np.linalg.norm(reference_magnitude, axis=(-2, -1))
    return numerator / np.maximum(denominator, POWER_FLOOR)


def multi_resolution_stft_distance(
    reference: np.ndarray,
    estimate: np.ndarray,
    *,
    resolutions: tuple[tuple[int, int], ...] = MULTI_RESOLUTIONS,
) -> np.ndarray:
    """Spectral convergence plus mean absolute log-magnitude difference, averaged over STFT sizes.

    The loss of Parallel WaveGAN, used here as a distance: three (n_fft, hop) pairs by
    default, so both time and frequency detail count. One value per clip [shape=(...)].
    """
    reference, estimate = _pair(reference, estimate)
    total = np.zeros(reference.shape[:-1])
    for n_fft, hop_length in resolutions:
        reference_magnitude = _magnitude(reference, n_fft, hop_length)
        estimate_magnitude = _magnitude(estimate, n_fft, hop_length)
        log_difference = np.abs(
            np.log(reference_magnitude + LOG_MAGNITUDE_EPSILON) - np.log(estimate_magnitude + LOG_MAGNITUDE_EPSILON)
        ).mean(axis=(-2, -1))
        total += _spectral_convergence(reference_magnitude, estimate_magnitude) + log_difference
    return total / len(resolutions)


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Signal-to-noise ratio in dB, the error being ``estimate - reference``. One value per clip."""
    reference, estimate = _pair(reference, estimate)
    signal = np.sum(reference**2, axis=-1)
    noise = np.sum((estimate - reference) ** 2, axis=-1)
    return 10 * np.log10(np.maximum(signal, POWER_FLOOR) / np.maximum(noise, POWER_FLOOR))


def si_sdr_db(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019). One value per clip.

    Both signals are made zero-mean; the estimate is compared with its projection on the
    reference, so a pure gain change scores as a perfect match.
    """
    reference, estimate = _pair(reference, estimate)
    reference = reference - reference.mean(axis=-1, keepdims=True)
    estimate = estimate - estimate.mean(axis=-1, keepdims=True)
    scale = np.sum(estimate * reference, axis=-1, keepdims=True) / np.maximum(
        np.sum(reference**2, axis=-1, keepdims=True), POWER_FLOOR
    )
    target = scale * reference
    residual = estimate - target
    return 10 * np.log10(
        np.maximum(np.sum(target**2, axis=-1), POWER_FLOOR) / np.maximum(np.sum(residual**2, axis=-1), POWER_FLOOR)
    )


def summarise(reference: np.ndarray, estimate: np.ndarray, *, sample_rate: int) -> dict[str, float]:
    """Mean of every distance over a batch of clips [shape=(n, samples)]: the row a results table needs.

    The same numbers as calling each distance on its own, in about a third of the time: each
    side's magnitude at every STFT size is computed once, and chunks of clips run on every core.
    """
    reference, estimate = _pair(reference, estimate)
    parts = map_chunks(
        lambda reference_chunk, estimate_chunk: _per_clip_distances(reference_chunk, estimate_chunk, sample_rate),
        reference.reshape(-1, reference.shape[-1]),
        estimate.reshape(-1, estimate.shape[-1]),
        chunk=SUMMARY_CHUNK,
    )
    return {name: float(np.mean(np.concatenate([part[name] for part in parts]))) for name in parts[0]}


def _per_clip_distances(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """Every distance of :func:`summarise`, per clip, for float64 arrays [shape=(n, samples)]."""
    magnitudes = {
        resolution: (_magnitude(reference, *resolution), _magnitude(estimate, *resolution))
        for resolution in MULTI_RESOLUTIONS
    }
    log_mel_resolution = (1024, 256)  # log_mel_distance_db's and spectral_convergence's defaults
    reference_magnitude, estimate_magnitude = magnitudes[log_mel_resolution]
    multi_resolution = np.zeros(len(reference))
    for reference_at, estimate_at in magnitudes.values():
        log_difference = np.abs(
            np.log(reference_at + LOG_MAGNITUDE_EPSILON) - np.log(estimate_at + LOG_MAGNITUDE_EPSILON)
        ).mean(axis=(-2, -1))
        multi_resolution += _spectral_convergence(reference_at, estimate_at) + log_difference
    return {
        "log_mel_distance_db": log_mel_magnitude_distance_db(
            reference_magnitude, estimate_magnitude, sample_rate=sample_rate, n_fft=log_mel_resolution[0]
        ),
        "multi_resolution_stft": multi_resolution / len(MULTI_RESOLUTIONS),
        "spectral_convergence": _spectral_convergence(reference_magnitude, estimate_magnitude),
        "snr_db": snr_db(reference, estimate),
        "si_sdr_db": si_sdr_db(reference, estimate),
    }
