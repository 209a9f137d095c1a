"""Control: a conditional VAE that makes notes on request (pitch, loudness, instrument family).

The conditions are one vector per clip (:class:`ConditionSpace`): a one-hot MIDI pitch, the
family as weights over the dataset's families (one-hot for a real note, a blend for a hybrid
instrument), and the velocity as one number. Both the encoder and the decoder see them (the
CVAE of Sohn et al., 2015): since the encoder is *told* the pitch, loudness and family, the KL
term gives it no reason to spend latent numbers on them, so the latent keeps what the labels
do not say (which instrument of the family, the attack, the tone) and the decoder takes the
labels from the conditions. That is what makes a condition swap work: encode a note with its
own labels, decode it with others (an octave up, another family) and the rest stays.

A dataset without note labels (the genre collections, a folder of music) conditions the same
model on what every clip has (:class:`LabelConditionSpace`): its label and attributes measured
from its audio (:data:`lib.data.analysis.ATTRIBUTES`); a transfer between labels is a label swap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from lib.core.fileio import load_json, save_json
from lib.data.analysis import ATTRIBUTES, measure_attributes
from lib.models.autoencoder import coefficient_scaling, hidden_stack, load_keras
from lib.models.vae import VAE, Sampling, VAEConfig
from lib.spectral.basis import SpectralBasis
from lib.spectral.representation import SpectrogramRepresentation

MAX_VELOCITY = 127  # MIDI
LIMIT_Z = 3.0  # a LabelConditionSpace clips its attribute values to this many training standard deviations


def category_weights(values: Sequence | np.ndarray, names: tuple[str, ...], what: str) -> np.ndarray:
    """Category names [shape=(n,)] or weights [shape=(n, len(names))] to weights summing to 1 per row.

    A name becomes a one-hot row; weights (a blend: a hybrid instrument, a mix of genres) are
    normalised. ``what`` names the category in error messages ("family", "label").
    """
    array = np.asarray(values)
    if array.ndim == 2:
        weights = array.astype(np.float32)
        if weights.shape[1] != len(names) or np.any(weights < 0) or np.any(weights.sum(axis=1) <= 0):
            raise ValueError(f"{what} weights need shape (n, {len(names)}), non-negative, positive sums")
        return weights / weights.sum(axis=1, keepdims=True)
    given = [str(name) for name in np.atleast_1d(array)]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}; known: {list(names)}")
    weights = np.zeros((len(given), len(names)), dtype=np.float32)
    weights[np.arange(len(given)), [names.index(name) for name in given]] = 1.0
    return weights


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
        return category_weights(family, self.families, "family")

    def from_rows(self, rows: Sequence[dict]) -> np.ndarray:
        """Condition vectors of manifest rows (fields pitch, velocity, family)."""
        return self.encode([r["pitch"] for r in rows], [r["velocity"] for r in rows], [r["family"] for r in rows])

    def known(self, rows: Sequence[dict]) -> np.ndarray:
        """Which manifest rows have a family (and a pitch) of this space [shape=(n,), bool]."""
        return np.array([row["family"] in self.families and row["pitch"] in self.pitches for row in rows], bool)

    def conditions_of(self, waveforms: np.ndarray, rows: Sequence[dict], *, sample_rate: int) -> np.ndarray:
        """Condition vectors of known clips [shape=(n, size)]: from their rows (the audio is not needed)."""
        return self.from_rows(rows)

    def to_dict(self) -> dict:
        """Plain JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ConditionSpace:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(int(p) for p in values["pitches"]), tuple(str(f) for f in values["families"]))


@dataclass(frozen=True)
class LabelConditionSpace:
    """How a label and measured attributes become one condition vector per clip.

    The vector is the label weights (one per label, summing to 1) followed by each attribute
    standardised with the training clips' ``attribute_mean`` and ``attribute_std`` and clipped to
    ±:data:`LIMIT_Z`.
    """

    labels: tuple[str, ...]
    attributes: tuple[str, ...]
    attribute_mean: tuple[float, ...]
    attribute_std: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.labels:
            raise ValueError("need at least one label")
        if not len(self.attributes) == len(self.attribute_mean) == len(self.attribute_std):
            raise ValueError("need one mean and one spread per attribute")
        if any(std <= 0 for std in self.attribute_std):
            raise ValueError(f"attribute spreads must be positive, got {self.attribute_std}")

    @classmethod
    def fit(
        cls, labels: Sequence[str], attribute_values: np.ndarray, *, attributes: Sequence[str] = ATTRIBUTES
    ) -> LabelConditionSpace:
        """The space of training clips: their labels [shape=(n,)] and attributes [shape=(n, k)]."""
        values = np.asarray(attribute_values, dtype=np.float64)
        if values.ndim != 2 or values.shape != (len(labels), len(attributes)):
            raise ValueError(f"need attributes of shape ({len(labels)}, {len(attributes)}), got {values.shape}")
        spread = np.where(values.std(axis=0) > 1e-6, values.std(axis=0), 1.0)
        return cls(
            tuple(sorted({str(label) for label in labels})),
            tuple(attributes),
            tuple(float(m) for m in values.mean(axis=0)),
            tuple(float(s) for s in spread),
        )

    @property
    def size(self) -> int:
        """Numbers per condition vector: labels, then attributes."""
        return len(self.labels) + len(self.attributes)

    def label_weights(self, label: Sequence | np.ndarray) -> np.ndarray:
        """Label names [shape=(n,)] or weights [shape=(n, labels)] to normalised weights [shape=(n, labels)]."""
        return category_weights(label, self.labels, "label")

    def standardise(self, attribute_values: np.ndarray) -> np.ndarray:
        """Attributes in their units [shape=(n, k)] to clipped z-scores [shape=(n, k)]."""
        values = np.atleast_2d(np.asarray(attribute_values, dtype=np.float64))
        if values.shape[1] != len(self.attributes):
            raise ValueError(f"need {len(self.attributes)} attributes per clip, got {values.shape[1]}")
        z = (values - np.array(self.attribute_mean)) / np.array(self.attribute_std)
        return np.clip(z, -LIMIT_Z, LIMIT_Z).astype(np.float32)

    def in_units(self, z: np.ndarray) -> np.ndarray:
        """Z-scores [shape=(n, k)] back to the attributes' units."""
        return np.asarray(z, np.float64) * np.array(self.attribute_std) + np.array(self.attribute_mean)

    def encode(self, label: Sequence | np.ndarray, attribute_values: np.ndarray) -> np.ndarray:
        """Condition vectors [shape=(n, size)] for labels (names or weights) and attributes in their units."""
        weights = self.label_weights(label)
        z = self.standardise(attribute_values)
        if len(weights) != len(z):
            raise ValueError(f"need one label and one attribute row per request, got {len(weights)} and {len(z)}")
        return np.concatenate([weights, z], axis=1)

    def known(self, rows: Sequence[dict]) -> np.ndarray:
        """Which manifest rows carry a label of this space [shape=(n,), bool]."""
        return np.array([row["label"] in self.labels for row in rows], dtype=bool)

    def conditions_of(self, waveforms: np.ndarray, rows: Sequence[dict], *, sample_rate: int) -> np.ndarray:
        """Condition vectors of known clips [shape=(n, size)]: their labels and what their audio
        [shape=(n, samples)] measures."""
        return self.encode([row["label"] for row in rows], measure_attributes(waveforms, sample_rate=sample_rate))

    def swap(
        self, conditions: np.ndarray, *, label: Sequence | np.ndarray | str | None = None, z: dict | None = None
    ) -> np.ndarray:
        """Copies of condition vectors [shape=(n, size)] with the label and/or some attributes replaced.

        ``label``: a name for every row, names per row, or weights; ``z``: {attribute: z-score(s)}.
        """
        conditions = np.array(conditions, dtype=np.float32)
        if conditions.ndim != 2 or conditions.shape[1] != self.size:
            raise ValueError(f"expected conditions of shape (n, {self.size}), got {conditions.shape}")
        count, label_count = len(conditions), len(self.labels)
        if label is not None:
            if isinstance(label, str):
                label = [label] * count
            conditions[:, :label_count] = self.label_weights(label)
        for name, value in (z or {}).items():
            if name not in self.attributes:
                raise ValueError(f"unknown attribute {name!r}; known: {list(self.attributes)}")
            column = label_count + self.attributes.index(name)
            conditions[:, column] = np.clip(np.broadcast_to(np.asarray(value, np.float32), (count,)), -LIMIT_Z, LIMIT_Z)
        return conditions

    def to_dict(self) -> dict:
        """Plain JSON-ready dictionary (with ``kind``, so a saved codec knows which space it had)."""
        return {"kind": "labels_and_attributes", **asdict(self)}

    @classmethod
    def from_dict(cls, values: dict) -> LabelConditionSpace:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(str(label) for label in values["labels"]),
            tuple(str(name) for name in values["attributes"]),
            tuple(float(m) for m in values["attribute_mean"]),
            tuple(float(s) for s in values["attribute_std"]),
        )


def condition_space_from_dict(values: dict) -> ConditionSpace | LabelConditionSpace:
    """The condition space a saved ``codec.json`` describes (notes' or labels-and-attributes)."""
    if values.get("kind") == "labels_and_attributes":
        return LabelConditionSpace.from_dict(values)
    return ConditionSpace.from_dict(values)


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
    space : ConditionSpace or LabelConditionSpace
        How labels (and, for the second, measured attributes) become condition vectors.
    representation : SpectrogramRepresentation
        Waveform <-> normalised spectrogram.
    basis : SpectralBasis
        Spectrogram <-> the model's coefficients.
    """

    def __init__(
        self,
        model: ConditionalVAE,
        space: ConditionSpace | LabelConditionSpace,
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
        return self.encode_coefficients(self.basis.transform(spectrograms), conditions)

    def encode_coefficients(self, coefficients: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        """Posterior means [shape=(n, latent_dim)] of coefficients [shape=(n, basis_size)] under their conditions."""
        mean, _, _ = self.model.encoder.predict(model_inputs(coefficients, conditions), batch_size=512, verbose=0)
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
        model = load_keras(run_folder / "model.keras")  # this module registers its classes, and imports vae and models
        basis = SpectralBasis.load(run_folder / description["basis_folder"])
        return cls(model, condition_space_from_dict(description["conditions"]), representation, basis)


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


def fixed_timbre(
    model, space: ConditionSpace, latent: np.ndarray, family_weights: np.ndarray
) -> Callable[[Sequence[int], Sequence[int]], np.ndarray]:
    """One timbre as an instrument: (MIDI pitches [n], velocities [n]) -> waveforms [shape=(n, clip_samples)].

    Every note is decoded by ``model`` (a conditional codec with ``decode_audio(latents, conditions)``)
    from the same ``latent`` [shape=(1, latent_dim)] and the same blend of families ``family_weights``
    [shape=(1, families)], at its own pitch and velocity.
    """

    def play(pitches: Sequence[int], velocities: Sequence[int]) -> np.ndarray:
        requests = space.encode(pitches, velocities, np.repeat(family_weights, len(pitches), axis=0))
        return model.decode_audio(np.repeat(latent, len(pitches), axis=0), requests)

    return play
