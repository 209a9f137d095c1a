"""What the autoencoder is measured against beside PCA (:mod:`lib.spectral.basis`): real codecs, Opus and MP3."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
import soundfile
from scipy.signal import correlate

from lib.core.errors import AudioInputError
from lib.data.audio import decode_audio_bytes


@dataclass
class CodecResult:
    """A codec round trip: decoded clips and the bitrate measured from the encoded bytes."""

    name: str
    waveforms: np.ndarray  # [shape=(n, clip_samples)], aligned with the input
    bitrate_kbps: float  # encoded bits of the whole stream over its duration
    encoded_bytes: int
    seconds: float  # wall-clock time of encoding plus decoding


# soundfile names and the lowest-bitrate setting each accepts (MP3 refuses compression_level=1.0).
CODECS: dict[str, dict] = {
    "opus": {"format": "OGG", "subtype": "OPUS", "compression_level": 1.0},
    "mp3": {"format": "MP3", "subtype": "MPEG_LAYER_III", "compression_level": 0.99, "bitrate_mode": "CONSTANT"},
}


def codec_round_trip(waveforms: np.ndarray, *, sample_rate: int, codec: str) -> CodecResult:
    """Encode clips [shape=(n, clip_samples)] as one stream, decode, and cut back into clips.

    Joining the clips into one stream measures the codec's real bitrate: container headers
    of many one-second files would otherwise dominate. The decoder's delay (MP3 adds a few
    hundred samples) is found by cross-correlation and removed before cutting.
    """
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; expected one of {sorted(CODECS)}")
    waveforms = np.asarray(waveforms, dtype=np.float32)
    if waveforms.ndim != 2:
        raise AudioInputError(f"expected clips of shape (n, samples), got {waveforms.shape}")
    settings = dict(CODECS[codec])
    stream = waveforms.reshape(-1)
    started = time.perf_counter()
    buffer = io.BytesIO()
    soundfile.write(buffer, stream, sample_rate, **settings)
    payload = buffer.getvalue()
    decoded = decode_audio_bytes(payload, sample_rate=sample_rate, name=f"{codec} stream")
    seconds = time.perf_counter() - started
    delay = _delay(stream, decoded, window=4 * sample_rate, max_lag=4096)
    aligned = decoded[delay : delay + stream.shape[0]]
    if aligned.shape[0] < stream.shape[0]:
        aligned = np.pad(aligned, (0, stream.shape[0] - aligned.shape[0]))
    bitrate = 8 * len(payload) / (stream.shape[0] / sample_rate) / 1000
    return CodecResult(codec, aligned.reshape(waveforms.shape), bitrate, len(payload), seconds)


def _delay(reference: np.ndarray, delayed: np.ndarray, *, window: int, max_lag: int) -> int:
    """Lag (samples, >= 0) at which ``delayed`` best matches the first ``window`` samples of ``reference``."""
    head = reference[:window]
    search = delayed[: head.shape[0] + max_lag]
    if search.shape[0] <= head.shape[0]:
        return 0
    scores = correlate(search, head, mode="valid", method="fft")
    return int(np.argmax(scores))
