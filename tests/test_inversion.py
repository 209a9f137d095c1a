"""Fast STFT and Griffin-Lim: the same transform as librosa, and inversion that converges."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from lib.spectral import inversion, metrics
from tests.conftest import SAMPLE_RATE

N_FFT, HOP = 1024, 256


def chord(seconds: float = 1.0) -> np.ndarray:
    """Three partials with an attack and a decay: a note-like test signal."""
    time = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    envelope = np.minimum(time / 0.02, 1.0) * np.exp(-2.0 * time)
    tones = sum(np.sin(2 * np.pi * frequency * time) / (k + 1) for k, frequency in enumerate((220.0, 440.0, 663.0)))
    return (0.3 * envelope * tones).astype(np.float32)


def test_stft_matches_librosa(noise):
    waveforms = np.stack([noise, chord()])
    ours = inversion.stft(waveforms, n_fft=N_FFT, hop_length=HOP)
    reference = librosa.stft(waveforms, n_fft=N_FFT, hop_length=HOP)
    assert ours.shape == (2, 1 + len(noise) // HOP, N_FFT // 2 + 1) and ours.dtype == np.complex64
    assert np.abs(np.swapaxes(ours, 1, 2) - reference).max() < 1e-4 * np.abs(reference).max()


def magnitude_of(waveforms: np.ndarray) -> np.ndarray:
    return np.abs(librosa.stft(waveforms, n_fft=N_FFT, hop_length=HOP)).astype(np.float32)


@pytest.mark.parametrize("init", inversion.PHASE_INITS)
def test_more_iterations_get_closer(init):
    signal = chord()[None]
    distances = [
        metrics.log_mel_distance_db(
            signal,
            inversion.griffin_lim(
                magnitude_of(signal), n_fft=N_FFT, hop_length=HOP, samples=signal.shape[-1], iterations=count, init=init
            ),
            sample_rate=SAMPLE_RATE,
        )[0]
        for count in (0, 4, 32)
    ]
    assert distances[0] > distances[1] > distances[2]
    assert distances[2] < 1.0


def test_gradient_start_beats_random_start():
    signal = chord()[None]
    magnitude = magnitude_of(signal)

    def distance(init: str) -> float:
        estimate = inversion.griffin_lim(
            magnitude, n_fft=N_FFT, hop_length=HOP, samples=signal.shape[-1], iterations=8, init=init
        )
        return float(metrics.log_mel_distance_db(signal, estimate, sample_rate=SAMPLE_RATE)[0])

    assert distance("gradient") < distance("random")


def test_result_does_not_depend_on_threads_or_batch(noise):
    waveforms = np.stack([chord(), noise] * 5)  # more clips than one chunk
    magnitude = magnitude_of(waveforms)
    settings = {"n_fft": N_FFT, "hop_length": HOP, "samples": waveforms.shape[-1], "iterations": 3, "init": "random"}
    together = inversion.griffin_lim(magnitude, threads=2, **settings)
    alone = inversion.griffin_lim(magnitude, threads=1, **settings)
    np.testing.assert_array_equal(together, alone)
    first_chunk = inversion.griffin_lim(magnitude[: inversion.CHUNK], threads=1, **settings)
    np.testing.assert_array_equal(together[: inversion.CHUNK], first_chunk)


def test_estimate_stays_within_the_clip():
    """The inverse is confined to the clip: silence in, silence out, and no energy past the end."""
    signal = np.zeros(16_000, np.float32)
    signal[4000:6000] = chord(2000 / SAMPLE_RATE)
    estimate = inversion.griffin_lim(
        magnitude_of(signal[None]), n_fft=N_FFT, hop_length=HOP, samples=16_000, iterations=16
    )[0]
    assert estimate.shape == (16_000,)
    assert np.abs(estimate[:2000]).max() < 0.05 * np.abs(estimate).max()


def test_bad_arguments_are_refused():
    magnitude = np.zeros((1, N_FFT // 2 + 1, 63), np.float32)
    with pytest.raises(ValueError, match="shape"):
        inversion.griffin_lim(magnitude[:, :10], n_fft=N_FFT, hop_length=HOP, samples=16_000)
    with pytest.raises(ValueError, match="init"):
        inversion.griffin_lim(magnitude, n_fft=N_FFT, hop_length=HOP, samples=16_000, init="zeros")
    with pytest.raises(ValueError, match="multiple"):
        inversion.griffin_lim(np.zeros((1, 513, 54)), n_fft=N_FFT, hop_length=300, samples=16_000)
