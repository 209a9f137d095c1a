"""The representation: fixed shapes, range, and an oracle inversion that is close to the original."""

from __future__ import annotations

import numpy as np
import pytest

from lib.core.errors import AudioInputError
from lib.spectral import metrics
from lib.spectral.representation import SpectrogramConfig, SpectrogramRepresentation, fit_peak_db
from tests.conftest import SAMPLE_RATE


def test_forward_shape_and_range(tone, noise):
    representation = SpectrogramRepresentation()
    spectrograms = representation.forward(np.stack([tone, noise]))
    assert spectrograms.shape == (2, 512, 64)
    assert spectrograms.min() >= 0.0 and spectrograms.max() <= 1.0
    assert spectrograms[0].max() > 0.5  # the tone is loud enough to use the upper range


def test_oracle_inversion_is_close_and_zero_phase_is_not(tone):
    representation = SpectrogramRepresentation(griffin_lim_iterations=32)
    spectrogram = representation.forward(tone)
    reconstructed = representation.inverse(spectrogram)
    assert reconstructed.shape == tone.shape
    distance = metrics.log_mel_distance_db(tone, reconstructed, sample_rate=SAMPLE_RATE)
    assert distance < 2.0
    silent = representation.inverse(np.zeros_like(spectrogram))
    assert np.max(np.abs(silent)) < 1e-6  # the floor of the scale decodes to silence


def test_normalisation_round_trip():
    representation = SpectrogramRepresentation(SpectrogramConfig(peak_db=20.0, dynamic_range_db=60.0))
    magnitude = np.array([[10 ** (10 / 20), 10 ** (-20 / 20)]], dtype=np.float32)  # 10 dB and -20 dB
    normalised = representation.normalise_magnitude(magnitude)
    assert normalised == pytest.approx(np.array([[50 / 60, 20 / 60]]), abs=1e-6)
    assert representation.denormalise(normalised) == pytest.approx(magnitude, rel=1e-5)


def test_save_and_load(tmp_path):
    representation = SpectrogramRepresentation(SpectrogramConfig(peak_db=31.0), griffin_lim_iterations=7)
    representation.save(tmp_path / "representation.json")
    loaded = SpectrogramRepresentation.load(tmp_path / "representation.json")
    assert loaded.config == representation.config and loaded.griffin_lim_iterations == 7


def test_wrong_shapes_are_refused(tone):
    representation = SpectrogramRepresentation()
    with pytest.raises(AudioInputError, match="16000 samples"):
        representation.forward(tone[:1000])
    with pytest.raises(AudioInputError, match="shape"):
        representation.inverse(np.zeros((10, 10)))


def test_fit_peak_db_rounds_up():
    magnitudes = np.full((4, 4), 10 ** (12.3 / 20))
    assert fit_peak_db(magnitudes) == 13.0


def test_a_stack_of_clips_is_transformed_in_chunks_to_the_same_numbers(monkeypatch):
    from lib.spectral import representation as module

    representation = SpectrogramRepresentation(SpectrogramConfig())
    clips = (0.1 * np.random.default_rng(0).standard_normal((11, representation.config.clip_samples))).astype(
        np.float32
    )
    whole = representation.forward(clips)  # 11 <= FORWARD_CHUNK: one transform
    monkeypatch.setattr(module, "FORWARD_CHUNK", 4)  # 4 + 4 + 3
    chunked = representation.forward(clips)
    assert chunked.dtype == np.float32 and chunked.shape == whole.shape
    assert np.array_equal(chunked, whole)


def test_a_stack_of_spectrograms_is_inverted_in_chunks_to_the_same_waveforms(monkeypatch):
    from lib.spectral import representation as module

    representation = SpectrogramRepresentation(SpectrogramConfig(), griffin_lim_iterations=2, phase_init="random")
    spectrograms = np.random.default_rng(1).random((2, 10, *representation.shape), dtype=np.float32)
    whole = representation.inverse(spectrograms)  # 20 <= FORWARD_CHUNK: one inversion
    monkeypatch.setattr(module, "FORWARD_CHUNK", 8)  # 8 + 8 + 4, each chunk with the seeds of its place
    chunked = representation.inverse(spectrograms)
    assert chunked.shape == (2, 10, representation.config.clip_samples)
    assert np.array_equal(chunked, whole)
    assert representation.inverse(spectrograms[0, 3]).shape == (representation.config.clip_samples,)


def test_a_stack_of_spectrograms_is_denormalised_in_chunks_to_the_same_numbers(monkeypatch):
    from lib.spectral import representation as module

    representation = SpectrogramRepresentation(SpectrogramConfig())
    spectrograms = np.random.default_rng(2).uniform(-0.1, 1.1, (11, *representation.shape)).astype(np.float32)
    whole = representation.denormalise(spectrograms)  # 11 < 2 x DENORMALISE_CHUNK: one pass
    monkeypatch.setattr(module, "DENORMALISE_CHUNK", 4)  # 4 + 4 + 3, on several threads
    chunked = representation.denormalise(spectrograms)
    assert chunked.dtype == np.float32 and np.array_equal(chunked, whole)
    assert np.all(chunked[spectrograms <= 0.0] == 0.0)  # the floor and below: silence
    assert np.array_equal(representation.denormalise(spectrograms[0]), whole[0])  # one spectrogram
