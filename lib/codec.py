"""The encode/decode API: audio or spectrograms in, latents out, and back to audio.

A :class:`LatentCodec` joins the three pieces a trained autoencoder (or VAE) needs: the
spectrogram representation, the spectral basis its networks work in, and the encoder and
decoder models. Later notebooks only talk to this class.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from lib.baselines import SpectralBasis
from lib.models import truncate_latents
from lib.representation import SpectrogramRepresentation
from lib.training import load_model


class LatentCodec:
    """Encode clips to latent vectors and decode latent vectors to clips.

    Parameters
    ----------
    representation : SpectrogramRepresentation
        Waveform <-> normalised spectrogram.
    basis : SpectralBasis
        Spectrogram <-> basis coefficients (the models' coordinates).
    encoder : keras.Model
        Coefficients [shape=(n, basis_size)] to latents [shape=(n, latent_dim)]. For a VAE
        the encoder's first output (the posterior mean) is the latent.
    decoder : keras.Model
        Latents [shape=(n, latent_dim)] to coefficients [shape=(n, basis_size)].
    """

    def __init__(
        self,
        representation: SpectrogramRepresentation,
        basis: SpectralBasis,
        encoder: keras.Model,
        decoder: keras.Model,
    ) -> None:
        if encoder.input_shape[-1] != basis.size:
            raise ValueError(f"encoder expects {encoder.input_shape[-1]} coefficients, basis has {basis.size}")
        self.representation = representation
        self.basis = basis
        self.encoder = encoder
        self.decoder = decoder

    @property
    def latent_dim(self) -> int:
        """Numbers per latent vector."""
        return int(self.decoder.input_shape[-1])

    def encode_spectrograms(self, spectrograms: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Normalised spectrograms [shape=(n, frequency_bins, frames)] to latents [shape=(n, latent_dim)]."""
        coefficients = self.basis.transform(spectrograms)
        outputs = self.encoder.predict(coefficients, batch_size=batch_size, verbose=0)
        latents = outputs[0] if isinstance(outputs, list | tuple) else outputs
        return np.asarray(latents, dtype=np.float32)

    def encode_audio(self, waveforms: np.ndarray) -> np.ndarray:
        """Waveforms [shape=(n, clip_samples)] to latents [shape=(n, latent_dim)]."""
        return self.encode_spectrograms(self.representation.forward(waveforms))

    def decode_spectrograms(self, latents: np.ndarray, *, size: int | None = None, batch_size: int = 256) -> np.ndarray:
        """Latents [shape=(n, latent_dim)] to spectrograms in [0, 1], keeping the first ``size`` numbers."""
        latents = np.asarray(latents, dtype=np.float32)
        if latents.ndim != 2 or latents.shape[1] != self.latent_dim:
            raise ValueError(f"expected latents of shape (n, {self.latent_dim}), got {latents.shape}")
        if size is not None:
            latents = truncate_latents(latents, size)
        coefficients = self.decoder.predict(latents, batch_size=batch_size, verbose=0)
        return self.basis.inverse(coefficients)

    def decode_audio(self, latents: np.ndarray, *, size: int | None = None) -> np.ndarray:
        """Latents [shape=(n, latent_dim)] to waveforms [shape=(n, clip_samples)] via Griffin-Lim."""
        return self.representation.inverse(self.decode_spectrograms(latents, size=size))

    @classmethod
    def load(
        cls, run_folder: str | Path, representation: SpectrogramRepresentation, *, model_name: str = "model.keras"
    ) -> LatentCodec:
        """Load a trained model (safe mode) and its basis from a run folder."""
        run_folder = Path(run_folder)
        model = load_model(run_folder / model_name)
        basis = SpectralBasis.load(run_folder / "basis")
        return cls(representation, basis, model.get_layer("encoder"), model.get_layer("decoder"))
