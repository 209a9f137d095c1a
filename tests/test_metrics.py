"""Metrics against cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from lib.core.errors import AudioInputError
from lib.spectral import metrics
from tests.conftest import SAMPLE_RATE


def test_identical_signals_score_perfectly(tone):
    batch = np.stack([tone, tone[::-1].copy()])
    assert np.allclose(metrics.log_mel_distance_db(batch, batch, sample_rate=SAMPLE_RATE), 0.0)
    assert np.allclose(metrics.spectral_convergence(batch, batch), 0.0)
    assert np.allclose(metrics.multi_resolution_stft_distance(batch, batch), 0.0)
    assert np.all(metrics.snr_db(batch, batch) > 90)
    assert np.all(metrics.si_sdr_db(batch, batch) > 90)


@pytest.mark.parametrize("gain", [0.5, 0.25, 2.0])
def test_known_gain(noise, gain):
    expected_db = abs(20 * np.log10(gain))
    # White noise has energy in every mel band, so no band sits at the floor.
    assert metrics.log_mel_distance_db(noise, gain * noise, sample_rate=SAMPLE_RATE) == pytest.approx(
        expected_db, abs=1e-3
    )
    assert metrics.spectral_convergence(noise, gain * noise) == pytest.approx(abs(1 - gain), abs=1e-6)
    assert metrics.snr_db(noise, gain * noise) == pytest.approx(-20 * np.log10(abs(1 - gain)), abs=1e-6)
    assert metrics.si_sdr_db(noise, gain * noise) > 90  # scale-invariant: a gain is no distortion


def test_known_noise_level(tone):
    rng = np.random.default_rng(1)
    disturbance = rng.standard_normal(tone.shape)
    for target_snr in (10.0, 30.0):
        scale = np.sqrt(np.sum(tone**2) / np.sum(disturbance**2) / 10 ** (target_snr / 10))
        noisy = tone + scale * disturbance
        assert metrics.snr_db(tone, noisy) == pytest.approx(target_snr, abs=1e-6)
        assert metrics.si_sdr_db(tone, noisy) == pytest.approx(target_snr, abs=0.1)


def test_distances_grow_with_the_noise(tone):
    rng = np.random.default_rng(2)
    disturbance = rng.standard_normal(tone.shape).astype(np.float32)
    small, large = tone + 0.001 * disturbance, tone + 0.05 * disturbance
    assert metrics.log_mel_distance_db(tone, small, sample_rate=SAMPLE_RATE) < metrics.log_mel_distance_db(
        tone, large, sample_rate=SAMPLE_RATE
    )
    assert metrics.multi_resolution_stft_distance(tone, small) < metrics.multi_resolution_stft_distance(tone, large)


def test_bad_input_is_refused(tone):
    with pytest.raises(AudioInputError, match="differs"):
        metrics.snr_db(tone, tone[:-1])
    broken = tone.copy()
    broken[3] = np.inf
    with pytest.raises(AudioInputError, match="NaN or infinite"):
        metrics.spectral_convergence(tone, broken)


def test_multi_resolution_distance_of_a_gain(noise):
    # At every resolution: spectral convergence |1 - g| plus the mean |log g| of the magnitudes
    # (white noise keeps every bin far above the epsilon added before the log).
    for gain in (0.5, 2.0):
        expected = abs(1 - gain) + abs(np.log(gain))
        assert metrics.multi_resolution_stft_distance(noise, gain * noise) == pytest.approx(expected, abs=2e-3)


def test_summarise_gives_every_distance(noise):
    gain = 0.5
    row = metrics.summarise(noise[None], gain * noise[None], sample_rate=SAMPLE_RATE)
    assert set(row) == {"log_mel_distance_db", "multi_resolution_stft", "spectral_convergence", "snr_db", "si_sdr_db"}
    assert row["log_mel_distance_db"] == pytest.approx(20 * np.log10(1 / gain), abs=1e-3)
    assert row["multi_resolution_stft"] == pytest.approx(abs(1 - gain) + abs(np.log(gain)), abs=2e-3)
    assert row["spectral_convergence"] == pytest.approx(0.5, abs=1e-6)
    assert row["snr_db"] == pytest.approx(-20 * np.log10(1 - gain), abs=1e-6)
    assert row["si_sdr_db"] > 90


def test_summarise_gives_the_numbers_of_each_distance_on_its_own():
    generator = np.random.default_rng(3)
    reference = generator.standard_normal((70, 4000)) * 0.1  # three chunks of clips, the last short
    estimate = reference * 0.8 + generator.standard_normal((70, 4000)) * 0.02
    row = metrics.summarise(reference, estimate, sample_rate=SAMPLE_RATE)
    assert row["log_mel_distance_db"] == np.mean(
        metrics.log_mel_distance_db(reference, estimate, sample_rate=SAMPLE_RATE)
    )
    assert row["multi_resolution_stft"] == np.mean(metrics.multi_resolution_stft_distance(reference, estimate))
    assert row["spectral_convergence"] == np.mean(metrics.spectral_convergence(reference, estimate))
    assert row["snr_db"] == np.mean(metrics.snr_db(reference, estimate))
    assert row["si_sdr_db"] == np.mean(metrics.si_sdr_db(reference, estimate))
