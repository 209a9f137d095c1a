"""The spectrogram representation every model sees, and its way back to audio.

``forward`` turns a clip into a normalised log-magnitude spectrogram of fixed shape;
``inverse`` turns such a spectrogram back into a waveform with Griffin-Lim. Normalisation
uses two dataset-level constants (a peak level in dB and a dynamic range) stored in JSON, so
nothing per clip has to be remembered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lib.core.errors import AudioInputError
from lib.core.fileio import load_json, save_json
from lib.core.parallel import map_chunks
from lib.spectral.inversion import CHUNK as GRIFFIN_LIM_CHUNK
from lib.spectral.inversion import PHASE_INITS, griffin_lim, stft

AMPLITUDE_FLOOR = 1e-10  # linear magnitude added before the log, to avoid log(0)
DENORMALISE_CHUNK = 16  # clips per task of denormalise on a stack
FORWARD_CHUNK = 256  # clips transformed (or inverted) at once: bounds the spectra held on the way; a multiple of 8


def stft_magnitude(waveforms: np.ndarray, *, n_fft: int, hop_length: int, chunk: int = 64) -> np.ndarray:
    """|STFT| of waveforms [shape=(..., n)] -> [shape=(..., n_fft // 2 + 1, frames)], centred frames.

    Works through the clips in chunks that stay in cache (float32 real FFTs, see ``lib.spectral.inversion``).
    """
    waveforms = np.asarray(waveforms, dtype=np.float32)
    flat = waveforms.reshape(-1, waveforms.shape[-1])
    pieces = [
        np.abs(stft(flat[start : start + chunk], n_fft=n_fft, hop_length=hop_length)).swapaxes(1, 2)
        for start in range(0, len(flat), chunk)
    ]
    frames = 1 + waveforms.shape[-1] // hop_length
    spectrum = np.concatenate(pieces) if pieces else np.zeros((0, n_fft // 2 + 1, frames), np.float32)
    return spectrum.reshape(*waveforms.shape[:-1], *spectrum.shape[-2:])


@dataclass(frozen=True)
class SpectrogramConfig:
    """Fixed parameters of the representation."""

    sample_rate: int = 16_000  # Hz
    clip_samples: int = 16_000  # samples per clip (1 s at 16 kHz)
    n_fft: int = 1024  # samples per STFT frame
    hop_length: int = 256  # samples between frames
    frequency_bins: int = 512  # bins kept (the Nyquist bin is dropped)
    frames: int = 64  # frames kept (63 real frames of a 1 s clip, padded by one silent frame)
    peak_db: float = 40.0  # dB level that maps to 1.0; a dataset constant, see ``fit_peak_db``
    dynamic_range_db: float = 100.0  # dB span below ``peak_db`` that maps to [0, 1]

    @property
    def shape(self) -> tuple[int, int]:
        """(frequency_bins, frames) of one spectrogram."""
        return (self.frequency_bins, self.frames)

    @property
    def clip_seconds(self) -> float:
        """Clip length in seconds."""
        return self.clip_samples / self.sample_rate

    @classmethod
    def for_clip(cls, *, sample_rate: int, clip_samples: int) -> SpectrogramConfig:
        """Shapes for a clip length: up to 1 s the default frames (hop 256); longer clips hop 512.

        A 4 s phrase at 16 kHz is then 512 x 128, the size of two 1 s clips rather than four:
        the models and Griffin-Lim stay within the run-all budget, at some cost in inversion
        quality (half-overlapping frames), which the oracle row of every table shows.
        """
        hop_length = 256 if clip_samples <= sample_rate else 512
        real_frames = 1 + clip_samples // hop_length
        return cls(
            sample_rate=sample_rate, clip_samples=clip_samples, hop_length=hop_length, frames=-(-real_frames // 8) * 8
        )


class SpectrogramRepresentation:
    """Normalised log-magnitude STFT with Griffin-Lim inversion.

    Parameters
    ----------
    config : SpectrogramConfig
        Shapes and the normalisation constants.
    griffin_lim_iterations : int
        Iterations of Griffin-Lim in ``inverse`` (16 by default: chosen by ``make bench``'s
        sweep of quality against speed, see the README's Performance section).
    momentum : float
        Momentum of the fast Griffin-Lim variant (0.99 is librosa's default).
    phase_init : str
        Griffin-Lim's starting phase: "gradient" (from the magnitude's slopes) or "random".
    """

    def __init__(
        self,
        config: SpectrogramConfig | None = None,
        *,
        griffin_lim_iterations: int = 16,
        momentum: float = 0.99,
        phase_init: str = "gradient",
    ) -> None:
        self.config = config or SpectrogramConfig()
        if griffin_lim_iterations < 1:
            raise ValueError(f"griffin_lim_iterations must be at least 1, got {griffin_lim_iterations}")
        if phase_init not in PHASE_INITS:
            raise ValueError(f"phase_init must be one of {PHASE_INITS}, got {phase_init!r}")
        self.griffin_lim_iterations = griffin_lim_iterations
        self.momentum = momentum
        self.phase_init = phase_init

    @property
    def shape(self) -> tuple[int, int]:
        """(frequency_bins, frames)."""
        return self.config.shape

    def magnitude(self, waveforms: np.ndarray) -> np.ndarray:
        """Linear STFT magnitude cropped to the fixed shape.

        waveforms : [shape=(..., clip_samples)] -> [shape=(..., frequency_bins, frames)]
        """
        waveforms = self._check_waveforms(waveforms)
        config = self.config
        spectrum = stft_magnitude(waveforms, n_fft=config.n_fft, hop_length=config.hop_length)
        spectrum = spectrum[..., : config.frequency_bins, : config.frames]
        missing = config.frames - spectrum.shape[-1]
        if missing > 0:
            pad = [(0, 0)] * (spectrum.ndim - 1) + [(0, missing)]
            spectrum = np.pad(spectrum, pad)
        return spectrum.astype(np.float32)

    def forward(self, waveforms: np.ndarray) -> np.ndarray:
        """Waveforms to normalised log-magnitude spectrograms in [0, 1].

        waveforms : [shape=(..., clip_samples)] -> [shape=(..., frequency_bins, frames)]

        A stack of clips is transformed ``FORWARD_CHUNK`` at a time into one preallocated array, so the
        memory on the way is the result's and one chunk's, not a complex spectrum of every clip.
        """
        waveforms = np.asarray(waveforms)
        if waveforms.ndim != 2 or len(waveforms) <= FORWARD_CHUNK:
            return self.normalise_magnitude(self.magnitude(waveforms))
        spectrograms = np.empty((len(waveforms), *self.shape), dtype=np.float32)
        for start in range(0, len(waveforms), FORWARD_CHUNK):
            chunk = waveforms[start : start + FORWARD_CHUNK]
            spectrograms[start : start + len(chunk)] = self.normalise_magnitude(self.magnitude(chunk))
        return spectrograms

    def normalise_magnitude(self, magnitude: np.ndarray) -> np.ndarray:
        """Linear magnitude to [0, 1]: 0 is ``dynamic_range_db`` below ``peak_db``, 1 is ``peak_db``."""
        config = self.config
        decibels = 20.0 * np.log10(np.maximum(magnitude, AMPLITUDE_FLOOR))
        normalised = (decibels - (config.peak_db - config.dynamic_range_db)) / config.dynamic_range_db
        return np.clip(normalised, 0.0, 1.0).astype(np.float32)

    def denormalise(self, spectrograms: np.ndarray) -> np.ndarray:
        """Normalised spectrograms back to linear magnitude (values outside [0, 1] are clipped).

        spectrograms : [shape=(..., frequency_bins, frames)] -> float32, the same shape. A stack is
        worked in chunks of clips on every core (each number on its own: the same numbers).
        """
        spectrograms = np.asarray(spectrograms)
        if spectrograms.ndim < 3 or len(spectrograms) < 2 * DENORMALISE_CHUNK:
            return self._magnitude(spectrograms)
        magnitude = np.empty(spectrograms.shape, np.float32)

        def work(chunk: np.ndarray, into: np.ndarray) -> None:  # ``into``: the chunk's rows of ``magnitude``
            into[...] = self._magnitude(chunk)

        map_chunks(work, spectrograms, magnitude, chunk=DENORMALISE_CHUNK)
        return magnitude

    def _magnitude(self, spectrograms: np.ndarray) -> np.ndarray:
        config = self.config
        clipped = np.clip(spectrograms, 0.0, 1.0)
        decibels = clipped * config.dynamic_range_db + (config.peak_db - config.dynamic_range_db)
        magnitude = 10.0 ** (decibels / 20.0)
        # The floor of the normalised scale stands for "quieter than the range": silence.
        return np.where(clipped <= 0.0, 0.0, magnitude).astype(np.float32, copy=False)

    def inverse(self, spectrograms: np.ndarray) -> np.ndarray:
        """Normalised spectrograms to waveforms with Griffin-Lim.

        spectrograms : [shape=(..., frequency_bins, frames)] -> [shape=(..., clip_samples)]

        Like :meth:`forward`, a stack is inverted ``FORWARD_CHUNK`` spectrograms at a time into one
        preallocated array (the magnitudes on the way are one chunk's); the waveforms are the same, bit
        for bit, as inverting the stack at once.
        """
        spectrograms = np.asarray(spectrograms, dtype=np.float32)
        if spectrograms.shape[-2:] != self.shape:
            raise AudioInputError(f"expected spectrograms of shape (..., {self.shape}), got {spectrograms.shape}")
        batch_shape = spectrograms.shape[:-2]
        flat = spectrograms.reshape(-1, *self.shape)
        waveforms = np.empty((len(flat), self.config.clip_samples), dtype=np.float32)
        for start in range(0, len(flat), FORWARD_CHUNK):
            waveforms[start : start + FORWARD_CHUNK] = self._griffin_lim(flat[start : start + FORWARD_CHUNK], start)
        return waveforms.reshape(*batch_shape, self.config.clip_samples)

    def _griffin_lim(self, spectrograms: np.ndarray, start: int) -> np.ndarray:
        """Spectrograms ``start`` onwards of a stack [shape=(n, frequency_bins, frames)] to waveforms."""
        config = self.config
        magnitude = self.denormalise(spectrograms)
        # Restore the dropped Nyquist bin (as silence) and the frames cropped by ``forward``.
        real_frames = 1 + config.clip_samples // config.hop_length
        magnitude = np.pad(
            magnitude[..., :real_frames], [(0, 0), (0, config.n_fft // 2 + 1 - config.frequency_bins), (0, 0)]
        )
        return griffin_lim(
            magnitude,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            samples=config.clip_samples,
            iterations=self.griffin_lim_iterations,
            momentum=self.momentum,
            init=self.phase_init,
            seed=start // GRIFFIN_LIM_CHUNK,  # the seeds a whole stack's chunks get: random starts do not move
        )

    def _check_waveforms(self, waveforms: np.ndarray) -> np.ndarray:
        waveforms = np.asarray(waveforms, dtype=np.float32)
        if waveforms.shape[-1] != self.config.clip_samples:
            raise AudioInputError(f"expected clips of {self.config.clip_samples} samples, got shape {waveforms.shape}")
        if not np.all(np.isfinite(waveforms)):
            raise AudioInputError("waveforms contain NaN or infinite samples")
        return waveforms

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Store the configuration (including the dataset constants) as JSON."""
        content = {
            "config": asdict(self.config),
            "griffin_lim_iterations": self.griffin_lim_iterations,
            "momentum": self.momentum,
            "phase_init": self.phase_init,
        }
        return save_json(path, content, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, **overrides: float) -> SpectrogramRepresentation:
        """Rebuild a representation from its JSON (``overrides`` replace Griffin-Lim settings)."""
        content = load_json(path)
        settings = {
            "griffin_lim_iterations": content["griffin_lim_iterations"],
            "momentum": content["momentum"],
            "phase_init": content.get("phase_init", "gradient"),
        }
        settings.update(overrides)
        return cls(SpectrogramConfig(**content["config"]), **settings)


def fit_peak_db(magnitudes: np.ndarray, *, percentile: float = 99.99) -> float:
    """Dataset constant: the level in dB that maps to 1.0, from training magnitudes.

    A high percentile rather than the maximum, so one outlier does not squash the scale;
    rounded up to a whole dB so the JSON stays readable.
    """
    decibels = 20.0 * np.log10(np.maximum(np.asarray(magnitudes, dtype=np.float64), AMPLITUDE_FLOOR))
    return float(np.ceil(np.percentile(decibels, percentile)))
