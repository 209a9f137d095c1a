"""Codec baselines: the bitrate is measured from bytes, and decoded clips line up with the input."""

from __future__ import annotations

import numpy as np
import pytest

from lib.measure.baselines import codec_round_trip
from lib.spectral import metrics
from tests.conftest import SAMPLE_RATE, harmonic_tone


@pytest.mark.parametrize("codec", ["opus", "mp3"])
def test_codec_round_trip(codec):
    clips = np.stack([harmonic_tone(frequency) for frequency in (220, 330, 440, 550)])
    result = codec_round_trip(clips, sample_rate=SAMPLE_RATE, codec=codec)
    assert result.waveforms.shape == clips.shape
    assert 2.0 < result.bitrate_kbps < 40.0  # a low-bitrate setting, measured, not assumed
    assert result.bitrate_kbps == pytest.approx(8 * result.encoded_bytes / 4.0 / 1000)
    # Aligned: a decoded clip is far closer to its own original than to a neighbour.
    own = metrics.log_mel_distance_db(clips, result.waveforms, sample_rate=SAMPLE_RATE)
    shifted = metrics.log_mel_distance_db(clips, np.roll(result.waveforms, 1, axis=0), sample_rate=SAMPLE_RATE)
    assert np.all(own < 20.0) and np.all(own < shifted)


def test_unknown_codec():
    with pytest.raises(ValueError, match="unknown codec"):
        codec_round_trip(np.zeros((1, 100), dtype=np.float32), sample_rate=SAMPLE_RATE, codec="flac")
