"""Keras 3 models: the autoencoder's encoder and decoder, and the layers they need.

The models work in the coordinates of a :class:`lib.spectral.basis.SpectralBasis`: the first
``basis_size`` PCA coefficients of the normalised spectrogram. On two CPU cores this trains
in minutes where convolutions over the full 512x64 spectrogram took far longer for worse
results. The basis holds many more components than the latent has numbers (1024 against
128 by default), so the decoder is not capped by what ``latent_dim`` components can hold.

**A path that cannot lose to the linear code.** With ``linear_path`` on, each network is a
fixed linear map plus a learned residual whose last layer starts at zero: the encoder's
linear map copies the first ``latent_dim`` (whitened) PCA coefficients into the latent, the
decoder's copies them back. An untrained autoencoder is therefore exactly PCA at every
latent size, and training moves it away from PCA only as far as the data pulls it. How far
the residuals may act on new material is then chosen on held-out clips
(:func:`lib.models.codec.calibrate_shrinkage`), so the codec only adds where it helps.

One autoencoder serves every latent size: *nested dropout* keeps only the first ``k``
latent numbers of each training example (``k`` drawn from ``nested_sizes``), so the leading
numbers learn to carry the most. At inference, keeping the first ``k`` numbers and zeroing
the rest gives a ``k``-number code without training ``k`` separate models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import librosa
import numpy as np
from keras import layers, ops


@dataclass(frozen=True)
class AutoencoderConfig:
    """Sizes of the autoencoder (a comment per field, as in nanoGPT)."""

    basis_size: int = 1024  # PCA coefficients in and out
    latent_dim: int = 128  # numbers per clip at the largest size
    hidden_width: int = 1024  # units of each hidden layer
    hidden_layers: int = 2  # hidden layers in the encoder, and again in the decoder
    nested_sizes: tuple[int, ...] = (8, 16, 32, 64, 128)  # latent sizes trained at once
    linear_path: bool = True  # fixed PCA maps plus zero-started residuals: untrained, the model is PCA
    dropout: float = 0.0  # dropout rate after each hidden layer (training only)

    def __post_init__(self) -> None:
        if not self.nested_sizes or max(self.nested_sizes) > self.latent_dim or min(self.nested_sizes) < 1:
            raise ValueError(f"nested_sizes {self.nested_sizes} must lie in 1..latent_dim={self.latent_dim}")
        if self.linear_path and self.latent_dim > self.basis_size:
            raise ValueError(f"a linear path needs latent_dim <= basis_size, got {self.latent_dim} > {self.basis_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.hidden_layers < 1 or self.hidden_width < 1:
            raise ValueError(
                f"need at least one hidden layer of one unit, got {self.hidden_layers}x{self.hidden_width}"
            )

    def to_dict(self) -> dict:
        """Plain JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def for_basis(cls, basis_size: int, latent_dim: int | None = None) -> AutoencoderConfig:
        """The default sizes fitted to a basis (a small dataset's basis can hold fewer than 128 components)."""
        latent_dim = min(cls.latent_dim if latent_dim is None else latent_dim, basis_size)
        nested = tuple(size for size in cls.nested_sizes if size <= latent_dim) or (latent_dim,)
        return cls(basis_size=basis_size, latent_dim=latent_dim, nested_sizes=nested)


@keras.saving.register_keras_serializable(package="latent_music_lab")
class NestedDropout(layers.Layer):
    """Keep the first ``k`` latent numbers of each example, ``k`` drawn from ``sizes`` (training only).

    Input and output: [shape=(batch, latent_dim)]. At inference the input passes unchanged.
    """

    def __init__(self, sizes: tuple[int, ...] | list[int], seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sizes = tuple(int(size) for size in sizes)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, latents, training=None):
        if not training:
            return latents
        batch = ops.shape(latents)[0]
        latent_dim = ops.shape(latents)[1]
        choice = keras.random.randint((batch,), 0, len(self.sizes), seed=self.seed_generator)
        kept = ops.take(ops.convert_to_tensor(self.sizes, dtype="int32"), choice)
        positions = ops.arange(latent_dim, dtype="int32")
        mask = ops.cast(positions[None, :] < kept[:, None], latents.dtype)
        return latents * mask

    def get_config(self) -> dict:
        return {**super().get_config(), "sizes": list(self.sizes), "seed": self.seed}


def coefficient_scaling(coefficient_std: np.ndarray, *, invert: bool, name: str) -> layers.Normalization:
    """A fixed layer that divides by (or, inverted, multiplies by) each coefficient's spread."""
    std = np.asarray(coefficient_std, dtype=np.float32)
    return layers.Normalization(mean=np.zeros_like(std), variance=std**2, invert=invert, name=name)


def hidden_stack(inputs, *, width: int, count: int, dropout: float = 0.0):
    """``count`` Dense layers of ``width`` GELU units: the body of every encoder and decoder here."""
    hidden = inputs
    for index in range(count):
        hidden = layers.Dense(width, activation="gelu", name=f"hidden_{index}")(hidden)
        if dropout:
            hidden = layers.Dropout(dropout, name=f"dropout_{index}")(hidden)
    return hidden


def _map(inputs, hidden, units: int, config: AutoencoderConfig, *, name: str):
    """The output of an encoder or decoder: Dense on ``hidden``, plus a fixed linear path from ``inputs``.

    With ``config.linear_path`` the learned Dense starts at zero (name ``{name}_residual``) and a
    fixed, untrainable identity map ``{name}_linear`` carries the first ``min(in, out)``
    inputs straight to the first outputs (the rest are zero), so the sum is the linear code.
    """
    if not config.linear_path:
        return layers.Dense(units, name=name)(hidden)
    residual = layers.Dense(units, kernel_initializer="zeros", name=f"{name}_residual")(hidden)
    linear = layers.Dense(units, use_bias=False, kernel_initializer="identity", trainable=False, name=f"{name}_linear")(
        inputs
    )
    return layers.Add(name=name)([linear, residual])


def build_encoder(config: AutoencoderConfig, coefficient_std: np.ndarray, *, name: str = "encoder") -> keras.Model:
    """Basis coefficients [shape=(batch, basis_size)] to latents [shape=(batch, latent_dim)]."""
    coefficients = keras.Input(shape=(config.basis_size,), name="coefficients")
    whitened = coefficient_scaling(coefficient_std, invert=False, name="whiten")(coefficients)
    hidden = hidden_stack(whitened, width=config.hidden_width, count=config.hidden_layers, dropout=config.dropout)
    latents = _map(whitened, hidden, config.latent_dim, config, name="latent")
    return keras.Model(coefficients, latents, name=name)


def build_decoder(config: AutoencoderConfig, coefficient_std: np.ndarray, *, name: str = "decoder") -> keras.Model:
    """Latents [shape=(batch, latent_dim)] to basis coefficients [shape=(batch, basis_size)]."""
    latents = keras.Input(shape=(config.latent_dim,), name="latent")
    hidden = hidden_stack(latents, width=config.hidden_width, count=config.hidden_layers, dropout=config.dropout)
    whitened = _map(latents, hidden, config.basis_size, config, name="whitened_coefficients")
    coefficients = coefficient_scaling(coefficient_std, invert=True, name="unwhiten")(whitened)
    return keras.Model(latents, coefficients, name=name)


def build_autoencoder(
    config: AutoencoderConfig,
    coefficient_std: np.ndarray,
    *,
    seed: int = 0,
    loss_weighting: np.ndarray | None = None,
) -> keras.Model:
    """Encoder, nested dropout and decoder in one trainable model (coefficients in and out).

    Trained with mean squared error on coefficients, which equals the mean squared error on
    the spectrogram inside the basis's span (the basis is orthonormal). With ``loss_weighting``
    (a matrix from :func:`loss_weighting`, [shape=(basis_size, basis_size)]) the output is the
    decoded coefficients times that fixed matrix (layer ``loss_weighting``): train it on targets
    multiplied by the same matrix and the squared error becomes a weighted one on the spectrogram.
    The codec uses the ``encoder`` and ``decoder`` inside and never sees the weighting.
    """
    encoder = build_encoder(config, coefficient_std)
    decoder = build_decoder(config, coefficient_std)
    coefficients = keras.Input(shape=(config.basis_size,), name="coefficients")
    latents = NestedDropout(config.nested_sizes, seed=seed, name="nested_dropout")(encoder(coefficients))
    outputs = decoder(latents)
    if loss_weighting is not None:
        weighting = np.asarray(loss_weighting, dtype=np.float32)
        if weighting.shape != (config.basis_size, config.basis_size):
            raise ValueError(f"loss_weighting must be {config.basis_size} x {config.basis_size}, got {weighting.shape}")
        layer = layers.Dense(config.basis_size, use_bias=False, trainable=False, name="loss_weighting")
        outputs = layer(outputs)
        layer.set_weights([weighting])
    return keras.Model(coefficients, outputs, name="autoencoder")


def mel_bin_weights(sample_rate: int, n_fft: int, frequency_bins: int, n_mels: int = 80) -> np.ndarray:
    """How much each STFT bin counts in the log-mel distance [shape=(frequency_bins,)], mean 1.

    Each mel band is an average over its bins (filters normalised to sum 1); a bin's weight is
    its summed share over the bands. A low bin nearly makes a band on its own, a high one shares
    a band with dozens: an error there costs the distance far less. A floor of 5% of the mean
    keeps every bin in play (the DC bin belongs to no band).
    """
    filters = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)[:, :frequency_bins]
    weights = (filters / np.maximum(filters.sum(axis=1, keepdims=True), 1e-12)).sum(axis=0)
    weights = np.maximum(weights, 0.05 * weights.mean())
    return (weights / weights.mean()).astype(np.float32)


def loss_weighting(basis_components: np.ndarray, bin_weights: np.ndarray, frames: int) -> np.ndarray:
    """Matrix ``W`` [shape=(size, size)] such that ``|e @ W|^2`` is the bin-weighted squared error on the spectrogram.

    ``basis_components`` [shape=(size, frequency_bins * frames)] are orthonormal rows; a
    coefficient error ``e`` is the spectrogram error ``e @ components``, whose squares weighted
    by ``bin_weights`` (repeated over the ``frames``) sum to ``e @ M @ e.T`` with
    ``M = components @ diag(w) @ components.T``. ``W`` is a square root of ``M``.
    """
    components = np.asarray(basis_components, dtype=np.float32)
    per_value = np.repeat(np.asarray(bin_weights, dtype=np.float32), frames)
    if per_value.shape[0] != components.shape[1]:
        raise ValueError(f"{len(bin_weights)} bin weights x {frames} frames do not match {components.shape[1]} values")
    metric = (components * per_value) @ components.T
    eigenvalues, eigenvectors = np.linalg.eigh(metric.astype(np.float64))
    return (eigenvectors * np.sqrt(np.maximum(eigenvalues, 0.0))).astype(np.float32)


def truncate_latents(latents: np.ndarray, size: int) -> np.ndarray:
    """Keep the first ``size`` numbers of each latent [shape=(n, latent_dim)]; zero the rest."""
    latents = np.asarray(latents, dtype=np.float32)
    if not 1 <= size <= latents.shape[-1]:
        raise ValueError(f"size must lie in 1..{latents.shape[-1]}, got {size}")
    truncated = np.zeros_like(latents)
    truncated[..., :size] = latents[..., :size]
    return truncated


def load_keras(path: str | Path) -> keras.Model:
    """A ``.keras`` file loaded with safe mode on (no arbitrary code, no lambdas), uncompiled.

    The file's custom classes must be registered, that is their modules imported: this module's,
    and the caller's own (:func:`lib.models.training.load_model` imports every model module of the lab).
    """
    return keras.saving.load_model(path, safe_mode=True, compile=False)
