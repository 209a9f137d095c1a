"""Loading audio: formats, conversions, and clear errors for every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from lib.core.errors import AudioInputError
from lib.core.fileio import atomic_write_bytes, load_json, load_npy, save_json, save_npy
from lib.data import audio
from tests.conftest import SAMPLE_RATE, harmonic_tone


@pytest.mark.parametrize(
    ("suffix", "format_name", "subtype"),
    [(".wav", "WAV", "PCM_16"), (".flac", "FLAC", "PCM_16"), (".ogg", "OGG", "VORBIS"), (".mp3", "MP3", None)],
)
def test_loads_every_format_as_mono_float(tmp_path, suffix, format_name, subtype):
    path = tmp_path / f"tone{suffix}"
    soundfile.write(path, harmonic_tone(), SAMPLE_RATE, format=format_name, subtype=subtype)
    waveform = audio.load_audio(path, sample_rate=SAMPLE_RATE)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(waveform.shape[0] - SAMPLE_RATE) < 0.1 * SAMPLE_RATE  # codecs may pad a little


def test_stereo_is_mixed_to_mono_and_resampled(tmp_path):
    left = harmonic_tone(sample_rate=44_100)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, 44_100)
    waveform = audio.load_audio(path, sample_rate=SAMPLE_RATE)
    assert waveform.shape == (SAMPLE_RATE,)
    # Mixing halves the one active channel.
    assert np.max(np.abs(waveform)) == pytest.approx(np.max(np.abs(left)) / 2, rel=0.05)


def _expect_error(path, fragment, **kwargs):
    with pytest.raises(AudioInputError) as caught:
        audio.load_audio(path, sample_rate=SAMPLE_RATE, **kwargs)
    assert str(path) in str(caught.value)
    assert fragment in str(caught.value)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    _expect_error(path, "empty")


def test_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is a text file, not audio")
    _expect_error(path, "not readable as audio")


def test_truncated_file(tmp_path):
    path = tmp_path / "truncated.wav"
    soundfile.write(path, harmonic_tone(), SAMPLE_RATE)
    path.write_bytes(path.read_bytes()[:40])  # header cut short, no samples
    with pytest.raises(AudioInputError) as caught:
        audio.load_audio(path, sample_rate=SAMPLE_RATE)
    assert str(path) in str(caught.value)


def test_nan_samples(tmp_path):
    path = tmp_path / "nan.wav"
    samples = harmonic_tone()
    samples[100] = np.nan
    soundfile.write(path, samples, SAMPLE_RATE, subtype="FLOAT")
    _expect_error(path, "NaN")


def test_silent_file(tmp_path):
    path = tmp_path / "silent.wav"
    soundfile.write(path, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    _expect_error(path, "silent")


def test_too_short(tmp_path):
    path = tmp_path / "short.wav"
    soundfile.write(path, harmonic_tone(seconds=0.2), SAMPLE_RATE)
    _expect_error(path, "shorter than a 1 s clip", min_seconds=1.0)


def test_unsupported_rate(tmp_path):
    path = tmp_path / "slow.wav"
    soundfile.write(path, harmonic_tone(sample_rate=2000), 2000)
    _expect_error(path, "unsupported sample rate 2000")


def test_writes_are_atomic_and_never_silently_overwrite(tmp_path):
    path = tmp_path / "out.wav"
    audio.write_wav(path, harmonic_tone(), sample_rate=SAMPLE_RATE)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        audio.write_wav(path, np.zeros(10, dtype=np.float32), sample_rate=SAMPLE_RATE)
    assert path.read_bytes() == before
    atomic_write_bytes(path, b"new", overwrite=True)
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temporary files left behind


def test_arrays_and_json_without_pickle(tmp_path):
    save_npy(tmp_path / "a.npy", np.arange(5))
    assert load_npy(tmp_path / "a.npy").tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError, match="pickle"):
        save_npy(tmp_path / "b.npy", np.array([{"a": 1}], dtype=object))
    np.save(tmp_path / "c.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        load_npy(tmp_path / "c.npy")
    save_json(tmp_path / "d.json", {"value": np.float32(1.5), "shape": np.array([2, 3])})
    assert load_json(tmp_path / "d.json") == {"value": 1.5, "shape": [2, 3]}


@pytest.mark.parametrize("rate", [44_100, 22_050])
def test_a_constant_file_at_another_rate_is_refused_as_dc_only(tmp_path, rate):
    # The resampler's start-up transient once made such a file look like a short sound (one clip of it).
    path = tmp_path / "dc.wav"
    soundfile.write(path, np.full(3 * rate, 0.25, dtype=np.float32), rate, subtype="FLOAT")
    stream = audio.AudioStream(path, sample_rate=SAMPLE_RATE)
    list(stream)
    with pytest.raises(AudioInputError, match=r"only a DC offset \(\+0.25\)"):
        stream.finish()


def test_a_short_missing_tail_is_kept_with_a_note_and_a_long_one_refused(tmp_path):
    path = tmp_path / "song.wav"
    soundfile.write(path, harmonic_tone(seconds=60.0), SAMPLE_RATE)
    stream = audio.AudioStream(path, sample_rate=SAMPLE_RATE)
    list(stream)
    # As an Ogg header that declares 0.1 s more than decodes (seen on recorded music): kept, with a note.
    stream.declared_frames = stream.frames_read + SAMPLE_RATE // 10
    stream.finish()
    assert any("0.10 s) at the end did not decode: kept" in note for note in stream.notes())
    # Two seconds missing is a cut-off file: refused.
    stream.declared_frames = stream.frames_read + 2 * SAMPLE_RATE
    with pytest.raises(AudioInputError, match="truncated: decoding stopped at frame"):
        stream.finish()
