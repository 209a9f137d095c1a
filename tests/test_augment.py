"""Augmentation: pitch shifts move partials by the right ratio, mixtures never mix a source with itself."""

from __future__ import annotations

import numpy as np
import pytest

from lib.core.errors import AudioInputError
from lib.data import augment
from tests.conftest import harmonic_tone


def _peak_hz(waveform: np.ndarray, sample_rate: int = 16_000) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.argmax(spectrum) * sample_rate / len(waveform))


@pytest.mark.parametrize("semitones", [-2.0, 1.0, 2.0])
def test_pitch_shift_moves_the_fundamental_and_keeps_the_length(semitones):
    tone = harmonic_tone(440.0)
    shifted = augment.pitch_shift(tone, semitones)
    assert shifted.shape == tone.shape and shifted.dtype == np.float32
    expected = 440.0 * 2 ** (semitones / 12)
    assert _peak_hz(shifted) == pytest.approx(expected, abs=3.0)


def test_shift_keeping_time_moves_the_notes_and_keeps_their_timing():
    tone = harmonic_tone(220.0)
    burst = np.where(np.arange(len(tone)) < len(tone) // 2, tone, 0).astype(np.float32)  # sounds in the first half
    shifted = augment.shifted_keeping_time(np.stack([tone, burst]), 12.0, sample_rate=16_000)
    assert shifted.shape == (2, len(tone)) and shifted.dtype == np.float32
    assert _peak_hz(shifted[0]) == pytest.approx(440.0, abs=3.0)
    half = len(tone) // 2  # resampling would squeeze the burst into the first quarter; this keeps it in the half
    energy = np.square(shifted[1])
    assert (
        energy[: half - 1600].sum() > 0.9 * energy.sum() * (half - 1600) / half
        and energy[half + 1600 :].sum() < 0.01 * energy.sum()
    )
    with pytest.raises(AudioInputError):
        augment.shifted_keeping_time(np.zeros(10), 12.0, sample_rate=16_000)


def test_mixtures_pair_different_sources_and_stay_below_full_scale():
    clips = np.stack([harmonic_tone(frequency) * 3 for frequency in (110, 220, 330, 440, 550, 660)])
    groups = ["a", "a", "a", "b", "b", "b"]
    mixed = augment.mixtures(clips, groups, seed=0)
    assert 0 < len(mixed) <= len(clips) and mixed.shape[1] == clips.shape[1]
    assert np.abs(mixed).max() <= augment.PEAK_LIMIT + 1e-6
    # Each mixture holds two fundamentals, one from each source group.
    for clip in mixed:
        spectrum = np.abs(np.fft.rfft(clip))
        low, high = spectrum[100:400].max(), spectrum[400:700].max()
        assert low > 0.05 * spectrum.max() and high > 0.05 * spectrum.max()
    assert len(augment.mixtures(clips, ["same"] * 6, seed=0)) == 0  # one source: nothing to mix


def test_augmented_clips_are_seeded_and_checked():
    clips = np.stack([harmonic_tone(frequency) for frequency in (110, 220, 330, 440)])
    first = augment.augmented_clips(clips, [0, 1, 2, 3], seed=3)
    assert np.array_equal(first, augment.augmented_clips(clips, [0, 1, 2, 3], seed=3))
    assert len(clips) < len(first) <= 2 * len(clips)
    with pytest.raises(ValueError, match="group names"):
        augment.mixtures(clips, [0, 1], seed=0)
    with pytest.raises(AudioInputError, match="NaN"):
        augment.pitch_shifted(np.full((2, 100), np.nan), seed=0)
    assert augment.source_of({"program": 6, "pitch": 60}) == "program:6"
    assert augment.source_of({"file": "a.wav"}) == "file:a.wav"
    with pytest.raises(KeyError, match="source"):
        augment.source_of({"pitch": 60})


def test_between_clips_join_contiguous_clips_of_one_file_exactly():
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 4 * 100).astype(np.float32)  # one file, 4 clips of 100
    rows = [{"file": "a.flac", "start_seconds": float(i), "gain": 1.0} for i in range(3)]
    rows.append({"file": "b.flac", "start_seconds": 0.0, "gain": 1.0})  # another file: no clip across it
    clips = audio.reshape(4, 100)
    made = augment.between_clips(clips, rows, clip_seconds=1.0, offsets=(0.25, 0.5))
    assert made.shape == (4, 100)  # pairs (0, 1) and (1, 2), two offsets each
    np.testing.assert_array_equal(made[0], audio[25:125])
    np.testing.assert_array_equal(made[1], audio[50:150])
    np.testing.assert_array_equal(made[3], audio[150:250])


def test_between_clips_skip_gaps_and_rows_without_positions():
    clips = np.ones((3, 50), np.float32)
    gap = [{"file": "a", "start_seconds": start} for start in (0.0, 2.0, 3.5)]
    assert augment.between_clips(clips, gap, clip_seconds=1.0).shape == (0, 50)
    notes = [{"program": 1, "pitch": 60}] * 3
    assert augment.between_clips(clips, notes, clip_seconds=1.0).shape == (0, 50)
    with pytest.raises(ValueError, match="offsets"):
        augment.between_clips(clips, gap, clip_seconds=1.0, offsets=(1.0,))
    with pytest.raises(ValueError, match="manifest rows"):
        augment.between_clips(clips, gap[:2], clip_seconds=1.0)
