"""The encode/decode API: audio or spectrograms in, latents out, and back to audio.

A :class:`LatentCodec` joins the three pieces a trained autoencoder (or VAE) needs: the
spectrogram representation, the spectral basis its networks work in, and the encoder and
decoder models. Later notebooks only talk to this class.

An autoencoder built with a linear path (``lib.models.autoencoder``) is PCA plus learned residuals. A
:class:`Shrinkage`, chosen on held-out clips by :func:`calibrate_shrinkage`, says how much of
those residuals the codec applies: all of it where they help on new material, less (down to
none, which is PCA exactly) where they do not.

**The smallest sizes may have a model of their own.** One nested-dropout autoencoder serves every
size with prefixes of one latent, and every size pays for the sharing: on the notes' test split, a
model trained for 8 and 16 numbers alone codes them 0.7 and 0.6 dB closer, and the shared model trained
for 32, 64 and 128 alone codes those 0.8, 0.7 and 0.6 dB closer (notebook 01; the README's design notes).
A codec given ``small`` (another linear-path codec in the same basis, whose ``latent_dim`` is the
largest size it serves) hands every ``size`` up to that to it, and keeps the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import keras
import numpy as np

from lib.core.fileio import load_json, save_json
from lib.core.parallel import map_chunks
from lib.models.autoencoder import truncate_latents
from lib.models.refine import LogMelObjective
from lib.models.training import load_model
from lib.spectral.basis import SpectralBasis
from lib.spectral.metrics import log_mel_db_distance, log_mel_power_db, mel_filter_bank
from lib.spectral.representation import SpectrogramRepresentation

SHRINKAGE_FILE = "shrinkage.json"
SMALL_SIZES_FOLDER = "small_sizes"  # inside an autoencoder's run folder: the model of the smallest sizes
ENCODER_SHRINKAGE_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # encoder residual shares tried
DECODER_SHRINKAGE_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # decoder residual shares tried
PCA_TIE_DB = 1e-4  # dB: float rounding between the codec's PCA path and the basis's own projection
CLIP_SHARES: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # residual shares a clip may be coded with
CHOICE_BITS = 3  # bits that name a clip's share among CLIP_SHARES, stored beside its latent


@dataclass(frozen=True)
class Shrinkage:
    """Shares of the learned residuals a linear-path codec applies (1: the trained model; 0: PCA).

    ``encoder`` and ``decoder`` map a latent size to the share of the encoder's and the decoder's
    residual at that size: a ``k``-number code is the first ``k`` numbers of the latent encoded with
    the share of size ``k`` (so the sizes' latents are prefixes of one latent only where their
    encoder shares agree). ``distances`` records, per size, the calibration's log-mel distances
    (dB, on magnitudes) of PCA, the full model and the chosen shares.
    """

    encoder: dict[int, float] = field(default_factory=dict)
    decoder: dict[int, float] = field(default_factory=dict)
    calibrated_on: str = ""
    distances: dict[int, dict[str, float]] = field(default_factory=dict)

    @staticmethod
    def _share(shares: dict[int, float], size: int) -> float:
        """The share of the smallest calibrated size >= ``size`` (else of the largest); 1 when uncalibrated."""
        if not shares:
            return 1.0
        sizes = sorted(shares)
        return shares[next((known for known in sizes if known >= size), sizes[-1])]

    def encoder_share(self, size: int) -> float:
        """The encoder share for a ``size``-number code."""
        return self._share(self.encoder, size)

    def decoder_share(self, size: int) -> float:
        """The decoder share for a ``size``-number code."""
        return self._share(self.decoder, size)

    def save(self, path: str | Path) -> Path:
        """Write as JSON (replacing an earlier calibration of the same model)."""
        content = asdict(self)
        for name in ("encoder", "decoder", "distances"):
            content[name] = {str(size): value for size, value in getattr(self, name).items()}
        return save_json(path, content, overwrite=True)

    @classmethod
    def load(cls, path: str | Path) -> Shrinkage:
        """Read a calibration written by :meth:`save` (an older file's single encoder share serves every size)."""
        content = load_json(path)
        decoder = {int(size): float(share) for size, share in content["decoder"].items()}
        encoder = content["encoder"]
        return cls(
            encoder={int(size): float(share) for size, share in encoder.items()}
            if isinstance(encoder, dict)
            else dict.fromkeys(decoder, float(encoder)),
            decoder=decoder,
            calibrated_on=content.get("calibrated_on", ""),
            distances={int(size): row for size, row in content.get("distances", {}).items()},
        )


@dataclass(frozen=True)
class CodedClips:
    """Clips coded by :meth:`LatentCodec.code_clips`, with their log-mel distances (dB, on magnitudes)."""

    latents: np.ndarray  # [shape=(n, latent_dim)], zero beyond the size
    choices: np.ndarray  # [shape=(n,)], int8 indices into CLIP_SHARES
    chosen_db: np.ndarray  # [shape=(n,)]: the best share's decoding, before any refinement
    coded_db: np.ndarray  # [shape=(n,)]: the decoding of ``latents``

    @property
    def refined_share(self) -> float:
        """Share of clips whose refined latent decodes closer than the chosen share's."""
        return float(np.mean(self.coded_db < self.chosen_db)) if len(self.coded_db) else float("nan")


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
    small : LatentCodec, optional
        The codec of the smallest sizes (same representation and basis, a smaller ``latent_dim``):
        a ``size`` up to its ``latent_dim`` is encoded and decoded by it, its latent padded with
        zeros to this codec's ``latent_dim`` (so it is not a prefix of this codec's latent).
    """

    def __init__(
        self,
        representation: SpectrogramRepresentation,
        basis: SpectralBasis,
        encoder: keras.Model,
        decoder: keras.Model,
        shrinkage: Shrinkage | None = None,
        small: LatentCodec | None = None,
    ) -> None:
        if encoder.input_shape[-1] != basis.size:
            raise ValueError(f"encoder expects {encoder.input_shape[-1]} coefficients, basis has {basis.size}")
        self.representation = representation
        self.basis = basis
        self.encoder = encoder
        self.decoder = decoder
        if shrinkage is not None and not self.has_linear_path:
            raise ValueError("shrinkage needs an autoencoder built with a linear path (lib.models.autoencoder)")
        self.shrinkage = shrinkage
        self.small = None
        if small is not None:
            self.attach_small(small)

    def attach_small(self, small: LatentCodec) -> None:
        """Hand the sizes up to ``small.latent_dim`` to ``small`` (see the class's parameters)."""
        if small.basis is not self.basis and small.basis.fingerprint() != self.basis.fingerprint():
            raise ValueError("the codec of the smallest sizes must work in the same basis")
        if small.small is not None or small.latent_dim >= self.latent_dim:
            raise ValueError(
                f"the codec of the smallest sizes needs a latent below {self.latent_dim} numbers and no "
                f"smaller codec of its own, got {small.latent_dim}"
            )
        self.small = small

    def serving(self, size: int | None) -> LatentCodec:
        """The codec that codes a ``size``-number latent: the small one up to its ``latent_dim``, else this one."""
        if size is not None and self.small is not None and size <= self.small.latent_dim:
            return self.small
        return self

    def _padded(self, latents: np.ndarray) -> np.ndarray:
        """A smaller codec's latents [shape=(n, k)] with zeros to this codec's ``latent_dim``."""
        padded = np.zeros((len(latents), self.latent_dim), dtype=np.float32)
        padded[:, : latents.shape[1]] = latents
        return padded

    @property
    def has_linear_path(self) -> bool:
        """Whether the models are PCA plus residuals (``AutoencoderConfig.linear_path``)."""
        names = {layer.name for layer in self.encoder.layers} | {layer.name for layer in self.decoder.layers}
        return {"latent_linear", "whitened_coefficients_linear", "whiten"} <= names

    def _coefficient_std(self) -> np.ndarray:
        """Spread of each basis coefficient [shape=(basis_size,)], as the encoder's whitening holds it."""
        return np.sqrt(np.asarray(keras.ops.convert_to_numpy(self.encoder.get_layer("whiten").variance))).reshape(-1)

    def linear_latents(self, coefficients: np.ndarray) -> np.ndarray:
        """The linear path's latents: the first ``latent_dim`` whitened coefficients [shape=(n, latent_dim)]."""
        std = self._coefficient_std()[: self.latent_dim]
        return (np.asarray(coefficients, dtype=np.float32)[:, : self.latent_dim] / std).astype(np.float32)

    def linear_coefficients(self, latents: np.ndarray) -> np.ndarray:
        """The decoder's linear path: latents back to basis coefficients [shape=(n, basis_size)], zeros beyond."""
        coefficients = np.zeros((len(latents), self.basis.size), dtype=np.float32)
        coefficients[:, : self.latent_dim] = latents * self._coefficient_std()[: self.latent_dim]
        return coefficients

    @property
    def latent_dim(self) -> int:
        """Numbers per latent vector."""
        return int(self.decoder.input_shape[-1])

    def encode_spectrograms(
        self, spectrograms: np.ndarray, *, size: int | None = None, batch_size: int = 256, refine_steps: int = 0
    ) -> np.ndarray:
        """Normalised spectrograms [shape=(n, frequency_bins, frames)] to latents [shape=(n, latent_dim)].

        A calibrated codec encodes with the encoder share of a ``size``-number code (default: the
        whole latent); decode with the same ``size``. Every number is returned either way. A
        ``size`` the codec of the smallest sizes serves is encoded by it (zeros past its numbers).
        ``refine_steps`` > 0 then searches each clip's first ``size`` numbers for the decoding
        closest to it, as :meth:`code_clips` does, with the calibrated share (:meth:`refine_latents`).
        """
        if self.serving(size) is not self:
            return self._padded(
                self.small.encode_spectrograms(
                    spectrograms, size=size, batch_size=batch_size, refine_steps=refine_steps
                )
            )
        coefficients = self.basis.transform(spectrograms)
        outputs = run_model(self.encoder, coefficients, batch_size=batch_size)
        latents = np.asarray(outputs[0] if isinstance(outputs, list | tuple) else outputs, dtype=np.float32)
        share = 1.0 if self.shrinkage is None else self.shrinkage.encoder_share(size or self.latent_dim)
        if share != 1.0:
            linear = self.linear_latents(coefficients)
            latents = linear + np.float32(share) * (latents - linear)
        if refine_steps > 0:
            latents = self.refine_latents(
                spectrograms, latents, size=size or self.latent_dim, refine_steps=refine_steps
            )
        return latents

    def refine_latents(
        self, spectrograms: np.ndarray, latents: np.ndarray, *, size: int, refine_steps: int
    ) -> np.ndarray:
        """Latents [shape=(n, latent_dim)] of the clips ``spectrograms`` after a search on their first ``size``
        numbers: ``refine_steps`` gradient steps on each clip's log-mel distance through the decoder at the
        calibrated share of ``size`` (:mod:`lib.models.refine`). A moved latent is kept only where it decodes
        closer, so no clip is coded worse; the numbers past ``size`` come back zero. Decode with the same ``size``.
        """
        if self.serving(size) is not self:
            small_latents = np.asarray(latents, dtype=np.float32)[:, : self.small.latent_dim]
            return self._padded(
                self.small.refine_latents(spectrograms, small_latents, size=size, refine_steps=refine_steps)
            )
        if not self.has_linear_path:
            raise ValueError("the search needs an autoencoder built with a linear path (lib.models.autoencoder)")
        share = 1.0 if self.shrinkage is None else self.shrinkage.decoder_share(size)
        spectrograms = np.asarray(spectrograms, dtype=np.float32)
        refined = truncate_latents(np.asarray(latents, dtype=np.float32), size)
        for start in range(0, len(spectrograms), DISTANCE_BATCH):
            part = slice(start, start + DISTANCE_BATCH)
            reference = LogMelReference(self.representation, spectrograms[part])
            before = refined[part]
            refined[part], _ = self._searched(
                before,
                reference.distances(self.decode_spectrograms(before, size=size)),
                np.full(len(before), share),
                reference,
                lambda moved: self.decode_spectrograms(moved, size=size),
                size=size,
                steps=refine_steps,
            )
        return refined

    def refine_span(
        self,
        span_spectrogram: np.ndarray,
        latents: np.ndarray,
        *,
        size: int,
        refine_steps: int,
        hop: int,
        weights: np.ndarray,
    ) -> np.ndarray:
        """Latents [shape=(n, latent_dim)] of consecutive clips, ``hop`` frames apart, after a search on all their
        first ``size`` numbers together, as a recording decodes them (:meth:`LogMelObjective.refine_span`):
        ``refine_steps`` gradient steps on the log-mel distance of the span they decode to, cross-faded with
        ``weights`` [shape=(frames,)], against ``span_spectrogram`` [shape=(bins, (n - 1) * hop + frames)] (the
        span's own normalised spectrogram), plus the neighbours' disagreement where they overlap. The moved
        latents are kept only if that objective fell; the numbers past ``size`` come back zero. Decode with the
        same ``size``.
        """
        if self.serving(size) is not self:
            small_latents = np.asarray(latents, dtype=np.float32)[:, : self.small.latent_dim]
            return self._padded(
                self.small.refine_span(
                    span_spectrogram, small_latents, size=size, refine_steps=refine_steps, hop=hop, weights=weights
                )
            )
        if not self.has_linear_path:
            raise ValueError("the search needs an autoencoder built with a linear path (lib.models.autoencoder)")
        share = 1.0 if self.shrinkage is None else self.shrinkage.decoder_share(size)
        latents = truncate_latents(np.asarray(latents, dtype=np.float32), size)
        reference_db = LogMelReference(self.representation, np.asarray(span_spectrogram)[None]).reference_db[0]
        moved, before, after = self.refinement.refine_span(
            latents, share, reference_db, weights, hop=hop, size=size, steps=refine_steps
        )
        return moved if after < before else latents

    def _searched(self, latents, latents_db, shares, reference, decode, *, size: int, steps: int):
        """``steps`` of search from ``latents`` [shape=(n, latent_dim)] (their distances ``latents_db``, decoder
        ``shares``); each clip keeps the moved latent only where ``decode`` of it lies closer. Returns
        (latents, their distances in dB)."""
        moved = self.refinement.refine(latents, shares, reference.reference_db, size=size, steps=steps)
        moved_db = reference.distances(decode(moved))
        closer = moved_db < latents_db
        return np.where(closer[:, None], moved, latents), np.where(closer, moved_db, latents_db)

    def encode_audio(self, waveforms: np.ndarray, *, size: int | None = None) -> np.ndarray:
        """Waveforms [shape=(n, clip_samples)] to latents [shape=(n, latent_dim)]; ``size``: see encode_spectrograms."""
        return self.encode_spectrograms(self.representation.forward(waveforms), size=size)

    def decode_spectrograms(
        self,
        latents: np.ndarray,
        *,
        size: int | None = None,
        choices: np.ndarray | None = None,
        batch_size: int = 256,
    ) -> np.ndarray:
        """Latents [shape=(n, latent_dim)] to spectrograms in [0, 1], keeping the first ``size`` numbers.

        ``choices`` [shape=(n,), indices into ``CLIP_SHARES``], from :meth:`encode_choosing`, give
        each clip its own decoder share; without them every clip gets the calibrated share of ``size``.
        A ``size`` the codec of the smallest sizes serves is decoded by it.
        """
        latents = np.asarray(latents, dtype=np.float32)
        if latents.ndim != 2 or latents.shape[1] != self.latent_dim:
            raise ValueError(f"expected latents of shape (n, {self.latent_dim}), got {latents.shape}")
        if self.serving(size) is not self:
            small_latents = latents[:, : self.small.latent_dim]
            return self.small.decode_spectrograms(small_latents, size=size, choices=choices, batch_size=batch_size)
        if size is not None:
            latents = truncate_latents(latents, size)
        coefficients = run_model(self.decoder, latents, batch_size=batch_size)
        if choices is not None:
            if not self.has_linear_path:
                raise ValueError("per-clip shares need an autoencoder built with a linear path")
            share = np.asarray(CLIP_SHARES, dtype=np.float32)[np.asarray(choices, dtype=np.int64)][:, None]
        else:
            share = np.float32(1.0 if self.shrinkage is None else self.shrinkage.decoder_share(size or self.latent_dim))
        if choices is not None or share != 1.0:
            linear = self.linear_coefficients(latents)
            coefficients = linear + share * (coefficients - linear)
        return self.basis.inverse(coefficients)

    def decode_audio(
        self, latents: np.ndarray, *, size: int | None = None, choices: np.ndarray | None = None
    ) -> np.ndarray:
        """Latents [shape=(n, latent_dim)] to waveforms [shape=(n, clip_samples)] via Griffin-Lim."""
        return self.representation.inverse(self.decode_spectrograms(latents, size=size, choices=choices))

    def encode_choosing(
        self, spectrograms: np.ndarray, *, size: int, batch_size: int = 256, refine_steps: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """A ``size``-number code per clip with the residual share that serves that clip best (analysis by synthesis).

        Each clip is coded with every share of ``CLIP_SHARES`` (the encoder's and the decoder's
        residual alike), decoded, and the share whose decoding has the lowest log-mel distance
        to it (on magnitudes) wins. Share 0 is PCA, so no clip is coded worse than PCA would code
        it: the codec takes the learned residuals where they help this clip and not elsewhere.
        ``refine_steps`` > 0 then moves the chosen latent by that many gradient steps on the clip's
        log-mel distance (:mod:`lib.models.refine`), kept where it decodes closer. Returns the latents
        [shape=(n, latent_dim), zero beyond ``size``] and the choices [shape=(n,), int8 indices into
        ``CLIP_SHARES``, ``CHOICE_BITS`` bits each when stored]; decode with
        ``decode_spectrograms(latents, size=size, choices=choices)``. A ``size`` the codec of the smallest
        sizes serves is coded by it.
        """
        coded = self.code_clips(spectrograms, size=size, batch_size=batch_size, refine_steps=refine_steps)
        return coded.latents, coded.choices

    def code_clips(
        self, spectrograms: np.ndarray, *, size: int, batch_size: int = 256, refine_steps: int = 0
    ) -> CodedClips:
        """:meth:`encode_choosing` with each clip's distances on the way (:class:`CodedClips`)."""
        if self.serving(size) is not self:
            coded = self.small.code_clips(spectrograms, size=size, batch_size=batch_size, refine_steps=refine_steps)
            return dataclasses.replace(coded, latents=self._padded(coded.latents))
        if not self.has_linear_path:
            raise ValueError("encode_choosing needs an autoencoder built with a linear path (lib.models.autoencoder)")
        spectrograms = np.asarray(spectrograms, dtype=np.float32)
        latents = np.zeros((len(spectrograms), self.latent_dim), dtype=np.float32)
        choices = np.zeros(len(spectrograms), dtype=np.int8)
        chosen_db, coded_db = np.zeros(len(spectrograms)), np.zeros(len(spectrograms))
        for start in range(0, len(spectrograms), batch_size):
            part = slice(start, start + batch_size)
            chunk = spectrograms[part]
            coefficients = self.basis.transform(chunk)
            full = np.asarray(run_model(self.encoder, coefficients, batch_size=batch_size), dtype=np.float32)
            linear = self.linear_latents(coefficients)
            candidates = np.stack(
                [truncate_latents(linear + np.float32(share) * (full - linear), size) for share in CLIP_SHARES]
            )
            reference = LogMelReference(self.representation, chunk)
            distances = np.stack(
                [
                    reference.distances(self._decode_with_choice(candidate, index))
                    for index, candidate in enumerate(candidates)
                ]
            )
            chosen = np.argmin(distances, axis=0)
            picked, picked_db = candidates[chosen, np.arange(len(chunk))], distances[chosen, np.arange(len(chunk))]
            chosen_db[part] = picked_db
            if refine_steps > 0:
                picked, picked_db = self._searched(
                    picked,
                    picked_db,
                    np.asarray(CLIP_SHARES, dtype=np.float32)[chosen],
                    reference,
                    lambda moved, chosen=chosen: self.decode_spectrograms(moved, choices=chosen),
                    size=size,
                    steps=refine_steps,
                )
            choices[part], latents[part], coded_db[part] = chosen, picked, picked_db
        return CodedClips(latents, choices, chosen_db, coded_db)

    def _decode_with_choice(self, latents: np.ndarray, index: int) -> np.ndarray:
        return self.decode_spectrograms(latents, choices=np.full(len(latents), index))

    def refine_pca(self, spectrograms: np.ndarray, *, size: int, refine_steps: int) -> np.ndarray:
        """PCA's first ``size`` coefficients of each clip (whitened, as the linear path's latents), refined on
        the clip's log-mel distance like :meth:`code_clips` refines the codec's latents: the baseline for what
        the search alone gives. Latents [shape=(n, latent_dim)]; decode with choices 0."""
        if self.serving(size) is not self:
            return self._padded(self.small.refine_pca(spectrograms, size=size, refine_steps=refine_steps))
        spectrograms = np.asarray(spectrograms, dtype=np.float32)
        latents = np.zeros((len(spectrograms), self.latent_dim), dtype=np.float32)
        for start in range(0, len(spectrograms), DISTANCE_BATCH):
            chunk = spectrograms[start : start + DISTANCE_BATCH]
            linear = truncate_latents(self.linear_latents(self.basis.transform(chunk)), size)
            reference_db = LogMelReference(self.representation, chunk).reference_db
            moved = self.linear_refinement.refine(
                linear, np.zeros(len(chunk)), reference_db, size=size, steps=refine_steps
            )
            latents[start : start + len(chunk)] = moved
        return latents

    @cached_property
    def refinement(self) -> LogMelObjective:
        """The log-mel distance through this codec's decoder and basis, for :meth:`code_clips`'s refinement."""
        return self._objective(self.decoder)

    @cached_property
    def linear_refinement(self) -> LogMelObjective:
        """The log-mel distance through the linear path alone, for :meth:`refine_pca`."""
        return self._objective(None)

    def _objective(self, decoder: keras.Model | None) -> LogMelObjective:
        config = self.representation.config
        return LogMelObjective(
            decoder,
            self.basis.components,
            self.basis.mean,
            self._coefficient_std()[: self.latent_dim],
            shape=self.representation.shape,
            peak_db=config.peak_db,
            range_db=config.dynamic_range_db,
            mel=mel_filter_bank(config.sample_rate, n_fft=config.n_fft)[:, : config.frequency_bins],
        )

    @classmethod
    def load(
        cls, run_folder: str | Path, representation: SpectrogramRepresentation, *, model_name: str = "model.keras"
    ) -> LatentCodec:
        """Load a trained model (safe mode), its basis and its shrinkage (if calibrated) from a run folder.

        A run folder that holds the model of the smallest sizes (``SMALL_SIZES_FOLDER``, with its own
        ``model.keras`` and shrinkage, in the same basis) gives it to the codec as ``small``.
        """
        run_folder = Path(run_folder)
        basis = SpectralBasis.load(run_folder / "basis")
        codec = cls._from_folder(run_folder, representation, basis, model_name)
        small_folder = run_folder / SMALL_SIZES_FOLDER
        if (small_folder / model_name).is_file():
            codec.attach_small(cls._from_folder(small_folder, representation, basis, model_name))
        return codec

    @classmethod
    def _from_folder(
        cls, folder: Path, representation: SpectrogramRepresentation, basis: SpectralBasis, model_name: str
    ) -> LatentCodec:
        """The codec of one model in ``folder`` (its ``model_name`` and, if calibrated, its shrinkage)."""
        model = load_model(folder / model_name)
        shrinkage_path = folder / SHRINKAGE_FILE
        shrinkage = Shrinkage.load(shrinkage_path) if shrinkage_path.exists() else None
        return cls(representation, basis, model.get_layer("encoder"), model.get_layer("decoder"), shrinkage)


def run_model(model: keras.Model, inputs: np.ndarray, *, batch_size: int = 256):
    """``model.predict`` without its per-call set-up: batches through the model in inference mode.

    ``predict`` builds a data pipeline and may trace a function on every call, which costs more
    than the small dense models here on a few hundred clips (the whole-recording codec calls
    them once per batch of clips). Returns an array, or a list of arrays for several outputs.
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    pieces = [model(inputs[start : start + batch_size], training=False) for start in range(0, len(inputs), batch_size)]
    if not pieces:
        return model.predict(inputs, verbose=0)
    if isinstance(pieces[0], list | tuple):
        outputs = range(len(pieces[0]))
        return [np.concatenate([keras.ops.convert_to_numpy(piece[i]) for piece in pieces]) for i in outputs]
    return np.concatenate([keras.ops.convert_to_numpy(piece) for piece in pieces])


DISTANCE_BATCH = 256  # clips searched together by refine_latents and refine_pca
DISTANCE_CHUNK = 16  # spectrograms per task of a LogMelReference: bounds the linear magnitudes held on the way


class LogMelReference:
    """Reference spectrograms [shape=(n, bins, frames)] kept as mel power, to measure many estimates against.

    :meth:`distances` is :func:`lib.spectral.metrics.log_mel_magnitude_distance_db` of the
    denormalised spectrograms, the same numbers bit for bit, with the reference's half worked out
    once and the clips worked in chunks on every core.
    """

    def __init__(self, representation: SpectrogramRepresentation, reference: np.ndarray) -> None:
        reference = np.asarray(reference)
        if reference.ndim != 3:
            raise ValueError(f"need reference spectrograms of shape (n, bins, frames), got {reference.shape}")
        self.representation = representation
        self.reference_db = np.concatenate(map_chunks(self._power_db, reference, chunk=DISTANCE_CHUNK))

    def _power_db(self, spectrograms: np.ndarray) -> np.ndarray:
        config = self.representation.config
        return log_mel_power_db(
            self.representation.denormalise(spectrograms), sample_rate=config.sample_rate, n_fft=config.n_fft
        )

    def distances(self, estimate: np.ndarray) -> np.ndarray:
        """Log-mel distance (dB) of each clip [shape=(n,)] of normalised spectrograms [shape=(n, bins, frames)]."""
        estimate = np.asarray(estimate)
        clips, _, frames = self.reference_db.shape
        if estimate.ndim != 3 or (len(estimate), estimate.shape[-1]) != (clips, frames):
            raise ValueError(f"estimate of shape {estimate.shape} for {clips} reference clips of {frames} frames")
        parts = map_chunks(
            lambda reference_db, chunk: log_mel_db_distance(reference_db, self._power_db(chunk)),
            self.reference_db,
            estimate,
            chunk=DISTANCE_CHUNK,
        )
        return np.concatenate(parts)


def clip_distances_db(
    representation: SpectrogramRepresentation, reference: np.ndarray, estimate: np.ndarray
) -> np.ndarray:
    """Log-mel distance (dB) of each clip [shape=(n,)] between normalised spectrograms [shape=(n, bins, frames)]."""
    return LogMelReference(representation, reference).distances(estimate)


def magnitude_distance_db(
    representation: SpectrogramRepresentation, reference: np.ndarray | LogMelReference, estimate: np.ndarray
) -> float:
    """Mean log-mel distance (dB) between normalised spectrograms [shape=(n, bins, frames)], before any inversion.

    ``reference`` may be a :class:`LogMelReference` of the reference spectrograms (kept across estimates).
    """
    if not isinstance(reference, LogMelReference):
        reference = LogMelReference(representation, reference)
    return float(np.mean(reference.distances(estimate)))


def calibrate_shrinkage(
    codec: LatentCodec, spectrograms: np.ndarray, sizes: Sequence[int], *, calibrated_on: str = ""
) -> Shrinkage:
    """Choose how much of the learned residuals to apply, on held-out spectrograms [shape=(n, bins, frames)].

    Each size gets the pair of shares (encoder share from ``ENCODER_SHRINKAGE_GRID``, decoder share
    from ``DECODER_SHRINKAGE_GRID``) with the lowest log-mel distance on the magnitudes among the
    pairs no worse than PCA with as many components. Shares 0 and 0 are PCA exactly, so on these
    clips the calibrated codec is never worse than PCA at any of ``sizes``.
    """
    if not codec.has_linear_path:
        raise ValueError("calibrate_shrinkage needs an autoencoder built with a linear path (lib.models.autoencoder)")
    if len(spectrograms) == 0:
        raise ValueError("calibrate_shrinkage needs at least one held-out spectrogram")
    representation, sizes = codec.representation, sorted(int(size) for size in sizes)
    coefficients = codec.basis.transform(spectrograms)
    reference = LogMelReference(representation, spectrograms)  # measured against every pair of shares
    full_latents = np.asarray(run_model(codec.encoder, coefficients), dtype=np.float32)
    linear_latents = codec.linear_latents(coefficients)
    encoder_shares, decoder_shares, distances = {}, {}, {}
    for size in sizes:
        pca = magnitude_distance_db(representation, reference, codec.basis.reconstruct(spectrograms, size))
        tried = {}
        for encoder_share in ENCODER_SHRINKAGE_GRID:
            kept = truncate_latents(linear_latents + np.float32(encoder_share) * (full_latents - linear_latents), size)
            decoded = np.asarray(run_model(codec.decoder, kept), dtype=np.float32)
            linear = codec.linear_coefficients(kept)
            for decoder_share in DECODER_SHRINKAGE_GRID:
                estimate = codec.basis.inverse(linear + np.float32(decoder_share) * (decoded - linear))
                tried[encoder_share, decoder_share] = magnitude_distance_db(representation, reference, estimate)
        allowed = {shares: distance for shares, distance in tried.items() if distance <= pca + PCA_TIE_DB}
        # Only float rounding can rule out shares 0 and 0 (PCA itself): then PCA it is.
        (encoder_shares[size], decoder_shares[size]), chosen = (
            min(allowed.items(), key=lambda item: item[1]) if allowed else ((0.0, 0.0), pca)
        )
        distances[size] = {"pca": pca, "full_model": tried[1.0, 1.0], "chosen": chosen}
    return Shrinkage(encoder=encoder_shares, decoder=decoder_shares, calibrated_on=calibrated_on, distances=distances)


def calibrate_codec(
    codec: LatentCodec, spectrograms: np.ndarray, sizes: Sequence[int], *, calibrated_on: str = ""
) -> Shrinkage:
    """:func:`calibrate_shrinkage` for ``codec`` and, on the sizes it serves, its codec of the smallest sizes.

    Sets each codec's ``shrinkage`` and returns every size's shares and distances as one
    :class:`Shrinkage` (for the record and the table; each codec keeps and saves its own).
    """
    sizes = sorted(int(size) for size in sizes)
    small_sizes = [size for size in sizes if codec.serving(size) is not codec]
    calibrated = [(codec, [size for size in sizes if size not in small_sizes])]
    if small_sizes:
        calibrated.append((codec.small, small_sizes))
    encoder, decoder, distances = {}, {}, {}
    for part, part_sizes in calibrated:
        if part_sizes:
            part.shrinkage = calibrate_shrinkage(part, spectrograms, part_sizes, calibrated_on=calibrated_on)
            encoder |= part.shrinkage.encoder
            decoder |= part.shrinkage.decoder
            distances |= part.shrinkage.distances
    return Shrinkage(
        encoder=dict(sorted(encoder.items())),
        decoder=dict(sorted(decoder.items())),
        calibrated_on=calibrated_on,
        distances=dict(sorted(distances.items())),
    )


def save_calibration(codec: LatentCodec, run_folder: str | Path) -> None:
    """Write ``codec``'s shrinkage into ``run_folder`` and its small codec's into ``SMALL_SIZES_FOLDER`` there."""
    run_folder = Path(run_folder)
    if codec.shrinkage is not None:
        codec.shrinkage.save(run_folder / SHRINKAGE_FILE)
    if codec.small is not None and codec.small.shrinkage is not None:
        codec.small.shrinkage.save(run_folder / SMALL_SIZES_FOLDER / SHRINKAGE_FILE)
