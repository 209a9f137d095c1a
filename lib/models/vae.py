"""A variational autoencoder in the same coordinates as the autoencoder (lib.models.autoencoder).

The encoder has a mean and a log-variance head; a serialisable :class:`Sampling` layer draws
``z = mean + exp(log_variance / 2) * epsilon`` (the reparameterisation trick). :class:`VAE` is
a ``keras.Model`` subclass with its own ``train_step`` and trackers for the reconstruction
term, the KL term and their total. Against posterior collapse it has a KL weight ``beta``
that warms up from zero (:class:`KLWarmup`), and *free bits*: each latent dimension's KL
below ``free_bits`` nats costs nothing, so the optimiser has no reason to switch it off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np
from keras import layers, ops

from lib.models.autoencoder import AutoencoderConfig, build_decoder, coefficient_scaling, hidden_stack


@dataclass(frozen=True)
class VAEConfig:
    """Sizes and loss weights of the VAE."""

    basis_size: int = 512  # PCA coefficients in and out
    latent_dim: int = 32  # numbers per clip
    hidden_width: int = 1024  # units per hidden layer
    hidden_layers: int = 2  # hidden layers in the encoder, and again in the decoder
    beta: float = 1.0  # weight of the KL term after warm-up
    free_bits: float = 0.25  # nats per latent dimension that the KL term does not charge
    reconstruction_scale: float = 10.0  # weight of the squared error summed over coefficients (1 / 2 sigma^2)

    def to_dict(self) -> dict:
        """Plain JSON-ready dictionary."""
        return asdict(self)


@keras.saving.register_keras_serializable(package="latent_music_lab")
class Sampling(layers.Layer):
    """Draw ``z ~ N(mean, exp(log_variance))`` with the reparameterisation trick.

    Inputs: [mean, log_variance], each [shape=(batch, latent_dim)]. Output: z, same shape.
    """

    def __init__(self, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mean, log_variance = inputs
        epsilon = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_variance) * epsilon

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


def kl_per_dimension(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, 1)) per example and dimension, in nats."""
    return -0.5 * (1.0 + log_variance - ops.square(mean) - ops.exp(log_variance))


def build_vae_encoder(config: VAEConfig, coefficient_std: np.ndarray, *, seed: int = 0) -> keras.Model:
    """Coefficients [shape=(batch, basis_size)] to [mean, log_variance, z], each [shape=(batch, latent_dim)]."""
    coefficients = keras.Input(shape=(config.basis_size,), name="coefficients")
    whitened = coefficient_scaling(coefficient_std, invert=False, name="whiten")(coefficients)
    hidden = hidden_stack(whitened, width=config.hidden_width, count=config.hidden_layers)
    mean = layers.Dense(config.latent_dim, name="mean")(hidden)
    log_variance = layers.Dense(config.latent_dim, name="log_variance")(hidden)
    z = Sampling(seed=seed, name="sampling")([mean, log_variance])
    return keras.Model(coefficients, [mean, log_variance, z], name="encoder")


@keras.saving.register_keras_serializable(package="latent_music_lab")
class VAE(keras.Model):
    """Encoder and decoder trained with reconstruction + beta * free-bits KL.

    The reconstruction term is ``reconstruction_scale`` times the squared error summed over the
    basis coefficients (which equals the squared error summed over the spectrogram inside the
    basis's span): a Gaussian likelihood with variance ``1 / (2 * reconstruction_scale)``.
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        *,
        beta: float = 1.0,
        free_bits: float = 0.25,
        reconstruction_scale: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.target_beta = float(beta)
        self.free_bits = float(free_bits)
        self.reconstruction_scale = float(reconstruction_scale)
        self.beta = keras.Variable(float(beta), trainable=False, name="beta", dtype="float32")
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, inputs, training=False):
        mean, _, z = self.encode(inputs, training=training)
        return self.decode(z if training else mean, inputs, training=training)

    # The three hooks below are all that a conditional VAE (lib.models.conditional) changes.
    def encode(self, inputs, training: bool = False):
        """[mean, log_variance, z] for a batch of inputs."""
        return self.encoder(inputs, training=training)

    def decode(self, latents, inputs, training: bool = False):
        """Coefficients from latents (``inputs`` carry any conditions; unused here)."""
        return self.decoder(latents, training=training)

    def target(self, inputs):
        """The coefficients the reconstruction is compared with."""
        return inputs

    def compute_losses(self, inputs, training: bool):
        """(total, reconstruction, kl) for a batch, each a scalar (mean over the batch)."""
        mean, log_variance, z = self.encode(inputs, training=training)
        reconstruction = self.decode(z, inputs, training=training)
        squared_error = ops.sum(ops.square(self.target(inputs) - reconstruction), axis=1)
        reconstruction_loss = self.reconstruction_scale * ops.mean(squared_error)
        kl_per_dim = ops.mean(kl_per_dimension(mean, log_variance), axis=0)  # batch mean, per dimension
        kl_loss = ops.sum(kl_per_dim)
        charged_kl = ops.sum(ops.maximum(kl_per_dim, self.free_bits))
        total = reconstruction_loss + self.beta * charged_kl
        return total, reconstruction_loss, kl_loss

    def train_step(self, data):
        import tensorflow as tf

        inputs = keras.utils.unpack_x_y_sample_weight(data)[0]
        with tf.GradientTape() as tape:
            total, reconstruction_loss, kl_loss = self.compute_losses(inputs, training=True)
        gradients = tape.gradient(total, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._update_trackers(total, reconstruction_loss, kl_loss)

    def test_step(self, data):
        inputs = keras.utils.unpack_x_y_sample_weight(data)[0]
        return self._update_trackers(*self.compute_losses(inputs, training=False))

    def _update_trackers(self, total, reconstruction_loss, kl_loss):
        self.total_loss_tracker.update_state(total)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {metric.name: metric.result() for metric in self.metrics}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": self.target_beta,
            "free_bits": self.free_bits,
            "reconstruction_scale": self.reconstruction_scale,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


def build_vae(config: VAEConfig, coefficient_std: np.ndarray, *, seed: int = 0) -> VAE:
    """A VAE whose decoder has the autoencoder's shape (lib.models.autoencoder.build_decoder)."""
    decoder_config = AutoencoderConfig(
        basis_size=config.basis_size,
        latent_dim=config.latent_dim,
        hidden_width=config.hidden_width,
        hidden_layers=config.hidden_layers,
        nested_sizes=(config.latent_dim,),
        linear_path=False,  # a VAE's latent is a posterior sample, not a copy of PCA coefficients
    )
    vae = VAE(
        build_vae_encoder(config, coefficient_std, seed=seed),
        build_decoder(decoder_config, coefficient_std),
        beta=config.beta,
        free_bits=config.free_bits,
        reconstruction_scale=config.reconstruction_scale,
        name="vae",
    )
    vae.build((None, config.basis_size))
    return vae


class KLWarmup(keras.callbacks.Callback):
    """Raise the KL weight linearly from 0 to the model's target ``beta`` over ``epochs`` epochs."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = max(1, int(epochs))

    def on_epoch_begin(self, epoch, logs=None):
        self.model.beta.assign(self.model.target_beta * min(1.0, epoch / self.epochs))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["beta"] = float(self.model.beta.numpy())


def active_units(mean_latents: np.ndarray, *, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean varies across the data by more than ``threshold``.

    The measure of Burda et al. (2016): Var over x of E[z_d | x]; collapsed dimensions stay at
    the prior for every clip and have (near) zero variance.
    """
    return int(np.sum(np.var(np.asarray(mean_latents), axis=0) > threshold))


class ActiveUnitsLogger(keras.callbacks.Callback):
    """Adds ``active_units`` on fixed validation inputs to each epoch's logs.

    ``coefficients`` is what the encoder takes: an array, or a conditional model's input dict.
    """

    def __init__(self, coefficients: np.ndarray | dict[str, np.ndarray], *, threshold: float = 0.01) -> None:
        super().__init__()
        self.coefficients = coefficients
        self.threshold = threshold

    def on_epoch_end(self, epoch, logs=None):
        # One direct call (predict would build a data pipeline every epoch); the inputs fit one batch.
        mean = keras.ops.convert_to_numpy(self.model.encoder(self.coefficients, training=False)[0])
        if logs is not None:
            logs["active_units"] = active_units(mean, threshold=self.threshold)


def sample_prior(
    decoder: keras.Model, count: int, *, temperature: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``count`` latents from N(0, temperature^2 I) and decode them to coefficients.

    Returns (latents [shape=(count, latent_dim)], coefficients [shape=(count, basis_size)]).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    latent_dim = int(decoder.input_shape[-1])
    latents = temperature * np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)
    return latents, np.asarray(decoder.predict(latents, verbose=0, batch_size=512))


def traversal(base: np.ndarray, dimension: int, values: np.ndarray) -> np.ndarray:
    """Copies of ``base`` [shape=(latent_dim,)] with one dimension set to each of ``values``."""
    base = np.asarray(base, dtype=np.float32)
    if not 0 <= dimension < base.shape[-1]:
        raise ValueError(f"dimension must lie in 0..{base.shape[-1] - 1}, got {dimension}")
    steps = np.repeat(base[None], len(values), axis=0)
    steps[:, dimension] = values
    return steps
