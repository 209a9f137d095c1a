"""Control: a conditional VAE that makes notes on request (pitch, loudness, instrument family).

The conditions are one vector per clip (:class:`ConditionSpace`): a one-hot MIDI pitch, the
family as weights over the dataset's families (one-hot for a real note, a blend for a hybrid
instrument), and the velocity as one number. Both the encoder and the decoder see them (the
CVAE of Sohn et al., 2015): since the encoder is *told* the pitch, loudness and family, the KL
term gives it no reason to spend latent numbers on them, so the latent keeps what the labels
do not say (which instrument of the family, the attack, the tone) and the decoder takes the
labels from the conditions. That is what makes a condition swap work: encode a note with its
own labels, decode it with others (an octave up, another family) and the rest stays.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from lib.baselines import SpectralBasis
from lib.fileio import load_json, save_json
from lib.models import coefficient_scaling, hidden_stack
from lib.representation import SpectrogramRepresentation
from lib.training import load_model
from lib.vae import VAE, Sampling, VAEConfig

MAX_VELOCITY = 127  # MIDI


@dataclass(frozen=True)
class ConditionSpace:
    """The labels a conditional model takes, and how they become one vector per clip."""

    pitches: tuple[int, ...]  # MIDI pitches the model knows, one input each
    families: tuple[str, ...]  # instrument families, one input each

    def __post_init__(self) -> None:
        if not self.pitches or not self.families:
            raise ValueError(f"need at least one pitch and one family, got {self.pitches} and {self.families}")

    @property
    def size(self) -> int:
        """Numbers per condition vector: pitches, families and the velocity."""
        return len(self.pitches) + len(self.families) + 1

    def encode(
        self, pitch: Sequence[int] | np.ndarray, velocity: Sequence[float] | np.ndarray, family: Sequence | np.ndarray
    ) -> np.ndarray:
        """Condition vectors [shape=(n, size)] for n requests.

        Parameters
        ----------
        pitch : [shape=(n,)] MIDI pitches, each one of ``pitches``
        velocity : [shape=(n,)] MIDI velocities in 1..127 (fractions allowed)
        family : [shape=(n,)] family names, or [shape=(n, len(families))] non-negative weights
            (normalised to sum 1: a blend of families for hybrid instruments)
        """
        pitch = np.atleast_1d(np.asarray(pitch))
        velocity = np.atleast_1d(np.asarray(velocity, dtype=np.float32))
        family_weights = self.family_weights(family)
        if not len(pitch) == len(velocity) == len(family_weights):
            raise ValueError(
                "need one pitch, velocity and family per request, "
                f"got {len(pitch)}, {len(velocity)}, {len(family_weights)}"
            )
        unknown = sorted({int(p) for p in pitch} - set(self.pitches))
        if unknown:
            raise ValueError(f"pitch(es) {unknown} outside the model's range {min(self.pitches)}..{max(self.pitches)}")
        if np.any(velocity < 1) or np.any(velocity > MAX_VELOCITY):
            raise ValueError(f"velocities must lie in 1..{MAX_VELOCITY}, got {velocity.min()}..{velocity.max()}")
        pitch_one_hot = np.zeros((len(pitch), len(self.pitches)), dtype=np.float32)
        pitch_one_hot[np.arange(len(pitch)), [self.pitches.index(int(p)) for p in pitch]] = 1.0
        return np.concatenate([pitch_one_hot, family_weights, velocity[:, None] / MAX_VELOCITY], axis=1)

    def family_weights(self, family: Sequence | np.ndarray) -> np.ndarray:
        """Family names [shape=(n,)] or weights [shape=(n, families)] to normalised weights."""
        array = np.asarray(family)
        if array.ndim == 2:
            weights = array.astype(np.float32)
            if weights.shape[1] != len(self.families) or np.any(weights < 0) or np.any(weights.sum(axis=1) <= 0):
                raise ValueError(f"family weights need shape (n, {len(self.families)}), non-negative, positive sums")
            return weights / weights.sum(axis=1, keepdims=True)
        names = [str(name) for name in np.atleast_1d(array)]
        unknown = sorted(set(names) - set(self.families))
        if unknown:
            raise ValueError(f"unknown family(ies) {unknown}; known: {list(self.families)}")
        weights = np.zeros((len(names), len(self.families)), dtype=np.float32)
        weights[np.arange(len(names)), [self.families.index(name) for name in names]] = 1.0
        return weights

    def from_rows(self, rows: Sequence[dict]) -> np.ndarray:
        """Condition vectors of manifest rows (fields pitch, velocity, family)."""
        return self.encode([r["pitch"] for r in rows], [r["velocity"] for r in rows], [r["family"] for r in rows])

    def to_dict(self) -> dict:
        """Plain JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ConditionSpace:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(int(p) for p in values["pitches"]), tuple(str(f) for f in values["families"]))


def build_conditional_encoder(
    config: VAEConfig, condition_size: int, coefficient_std: np.ndarray, *, seed: int = 0
) -> keras.Model:
    """{"coefficients": (batch, basis_size), "conditions": (batch, condition_size)} to [mean, log_variance, z]."""
    coefficients = keras.Input(shape=(config.basis_size,), name="coefficients")
    conditions = keras.Input(shape=(condition_size,), name="conditions")
    whitened = coefficient_scaling(coefficient_std, invert=False, name="whiten")(coefficients)
    joined = layers.Concatenate(name="with_conditions")([whitened, conditions])
    hidden = hidden_stack(joined, width=config.hidden_width, count=config.hidden_layers)
    mean = layers.Dense(config.latent_dim, name="mean")(hidden)
    log_variance = layers.Dense(config.latent_dim, name="log_variance")(hidden)
    z = Sampling(seed=seed, name="sampling")([mean, log_variance])
    return keras.Model(
        {"coefficients": coefficients, "conditions": conditions}, [mean, log_variance, z], name="encoder"
    )


def build_conditional_decoder(config: VAEConfig, condition_size: int, coefficient_std: np.ndarray) -> keras.Model:
    """{"latent": (batch, latent_dim), "conditions": (batch, condition_size)} to coefficients (batch, basis_size)."""
    latents = keras.Input(shape=(config.latent_dim,), name="latent")
    conditions = keras.Input(shape=(condition_size,), name="conditions")
    joined = layers.Concatenate(name="with_conditions")([latents, conditions])
    hidden = hidden_stack(joined, width=config.hidden_width, count=config.hidden_layers)
    whitened = layers.Dense(config.basis_size, name="whitened_coefficients")(hidden)
    coefficients = coefficient_scaling(coefficient_std, invert=True, name="unwhiten")(whitened)
    return keras.Model({"latent": latents, "conditions": conditions}, coefficients, name="decoder")


@keras.saving.register_keras_serializable(package="latent_music_lab")
class ConditionalVAE(VAE):
    """A VAE whose encoder and decoder also take condition vectors.

    Inputs are dicts ``{"coefficients": (batch, basis_size), "conditions": (batch, condition_size)}``;
    training, losses, warm-up and free bits are the VAE's.
    """

    def encode(self, inputs, training: bool = False):
        return self.encoder(
            {"coefficients": inputs["coefficients"], "conditions": inputs["conditions"]}, training=training
        )

    def decode(self, latents, inputs, training: bool = False):
        return self.decoder({"latent": latents, "conditions": inputs["conditions"]}, training=training)

    def target(self, inputs):
        return inputs["coefficients"]

    def build(self, input_shape=None) -> None:
        # The encoder and decoder are Functional models, built when they are made (or loaded).
        self.built = True


def build_conditional_vae(
    config: VAEConfig, conditions: ConditionSpace, coefficient_std: np.ndarray, *, seed: int = 0
) -> ConditionalVAE:
    """A conditional VAE in the autoencoder's coordinates, conditioned on ``conditions``."""
    return conditional_vae_for(config, conditions.size, coefficient_std, seed=seed)


def conditional_vae_for(
    config: VAEConfig, condition_size: int, coefficient_std: np.ndarray, *, seed: int = 0, name: str = "conditional_vae"
) -> ConditionalVAE:
    """A conditional VAE taking any condition vector of ``condition_size`` numbers (e.g. a one-hot genre)."""
    model = ConditionalVAE(
        build_conditional_encoder(config, condition_size, coefficient_std, seed=seed),
        build_conditional_decoder(config, condition_size, coefficient_std),
        beta=config.beta,
        free_bits=config.free_bits,
        reconstruction_scale=config.reconstruction_scale,
        name=name,
    )
    model.build()
    return model


def model_inputs(coefficients: np.ndarray, conditions: np.ndarray) -> dict[str, np.ndarray]:
    """The input dict of a :class:`ConditionalVAE` (and of its encoder)."""
    coefficients, conditions = np.asarray(coefficients, np.float32), np.asarray(conditions, np.float32)
    if len(coefficients) != len(conditions):
        raise ValueError(f"{len(coefficients)} coefficient rows but {len(conditions)} condition rows")
    return {"coefficients": coefficients, "conditions": conditions}


class ConditionalCodec:
    """A trained conditional VAE with what it needs to go from audio to latents and back.

    Parameters
    ----------
    model : ConditionalVAE
    space : ConditionSpace
        How labels become condition vectors.
    representation : SpectrogramRepresentation
        Waveform <-> normalised spectrogram.
    basis : SpectralBasis
        Spectrogram <-> the model's coefficients.
    """

    def __init__(
        self,
        model: ConditionalVAE,
        space: ConditionSpace,
        representation: SpectrogramRepresentation,
        basis: SpectralBasis,
    ) -> None:
        if int(model.decoder.output_shape[-1]) != basis.size:
            raise ValueError(f"model decodes {model.decoder.output_shape[-1]} coefficients, basis has {basis.size}")
        if int(model.encoder.input["conditions"].shape[-1]) != space.size:
            raise ValueError(
                f"model takes {model.encoder.input['conditions'].shape[-1]} conditions, space has {space.size}"
            )
        self.model, self.space, self.representation, self.basis = model, space, representation, basis

    @property
    def latent_dim(self) -> int:
        """Numbers per latent vector."""
        return int(self.model.decoder.input["latent"].shape[-1])

    def encode_spectrograms(self, spectrograms: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Posterior means [shape=(n, latent_dim)] of spectrograms [shape=(n, bins, frames)] under their conditions."""
        inputs = model_inputs(self.basis.transform(spectrograms), conditions)
        mean, _, _ = self.model.encoder.predict(inputs, batch_size=512, verbose=0)
        return np.asarray(mean, dtype=np.float32)

    def decode_coefficients(self, latents: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Coefficients [shape=(n, basis_size)] of latents [shape=(n, latent_dim)] under conditions (n, size)."""
        latents, conditions = np.asarray(latents, np.float32), np.asarray(conditions, np.float32)
        if latents.ndim != 2 or latents.shape[1] != self.latent_dim or len(latents) != len(conditions):
            raise ValueError(
                f"need latents (n, {self.latent_dim}) and n condition rows, got {latents.shape}, {conditions.shape}"
            )
        inputs = {"latent": latents, "conditions": conditions}
        return np.asarray(self.model.decoder.predict(inputs, batch_size=512, verbose=0))

    def decode_spectrograms(self, latents: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Normalised spectrograms [shape=(n, bins, frames)] of latents under conditions."""
        return self.basis.inverse(self.decode_coefficients(latents, conditions))

    def decode_audio(self, latents: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Waveforms [shape=(n, clip_samples)] of latents under conditions, via Griffin-Lim."""
        return self.representation.inverse(self.decode_spectrograms(latents, conditions))

    def save_description(self, run_folder: str | Path, basis_folder: str | Path) -> Path:
        """Write ``codec.json`` (the condition space and where the basis lives) beside the model."""
        run_folder = Path(run_folder)
        relative = os.path.relpath(Path(basis_folder).resolve(), run_folder.resolve())
        return save_json(
            run_folder / "codec.json", {"conditions": self.space.to_dict(), "basis_folder": relative}, overwrite=True
        )

    @classmethod
    def load(cls, run_folder: str | Path, representation: SpectrogramRepresentation) -> ConditionalCodec:
        """Load a run folder's ``model.keras`` (safe mode) with the ``codec.json`` written beside it."""
        run_folder = Path(run_folder)
        description = load_json(run_folder / "codec.json")
        model = load_model(run_folder / "model.keras")
        basis = SpectralBasis.load(run_folder / description["basis_folder"])
        return cls(model, ConditionSpace.from_dict(description["conditions"]), representation, basis)


def swap_conditions(
    conditions: np.ndarray,
    space: ConditionSpace,
    *,
    pitch: Sequence[int] | np.ndarray | None = None,
    velocity: Sequence[float] | np.ndarray | None = None,
    family: Sequence | np.ndarray | None = None,
) -> np.ndarray:
    """Copies of condition vectors [shape=(n, size)] with some labels replaced (None keeps them)."""
    conditions = np.asarray(conditions, dtype=np.float32)
    if conditions.ndim != 2 or conditions.shape[1] != space.size:
        raise ValueError(f"expected conditions of shape (n, {space.size}), got {conditions.shape}")
    pitch_count, family_count = len(space.pitches), len(space.families)
    old_pitch = np.array(space.pitches)[conditions[:, :pitch_count].argmax(axis=1)]
    old_family = conditions[:, pitch_count : pitch_count + family_count]
    old_velocity = conditions[:, -1] * MAX_VELOCITY
    count = len(conditions)
    return space.encode(
        old_pitch if pitch is None else np.broadcast_to(np.asarray(pitch), (count,)),
        old_velocity if velocity is None else np.broadcast_to(np.asarray(velocity, dtype=np.float32), (count,)),
        old_family if family is None else _broadcast_family(family, count, family_count),
    )


def _broadcast_family(family, count: int, family_count: int) -> np.ndarray:
    array = np.asarray(family)
    if array.ndim == 0:
        return np.full(count, str(array))
    if array.ndim == 1 and array.shape[0] == family_count and np.issubdtype(array.dtype, np.number):
        return np.broadcast_to(array, (count, family_count))
    return array
