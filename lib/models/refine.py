"""Analysis by synthesis for a trained decoder: each clip's latent moved to lower its own log-mel distance.

The encoder is a network that proposes a latent in one pass; it is trained for the average clip, and
it is not told the distance the lab measures. A codec's encoder may do more work than that: the
decoder and the stored numbers stay the same, and the encoder searches for the numbers the decoder
turns into the closest spectrogram (speech codecs search their codebooks so; in learned image
compression the latent's refinement per image is Campos et al., 2019, and Yang et al., 2020).

:meth:`LogMelObjective.refine` takes the latents a codec chose (and each clip's decoder share of the learned
residuals, so PCA-coded clips stay on the linear path) and runs ``steps`` Adam steps on them
against the log-mel distance of :func:`lib.spectral.metrics.log_mel_magnitude_distance_db`, on
magnitudes, through the fixed decoder and the basis: the mel power of the decoded spectrogram, in dB,
floored 80 dB under the clip's peak, against the clip's own. Only the first ``size`` numbers move; the
numbers past them stay zero. :meth:`lib.models.codec.LatentCodec.code_clips` keeps a refined
latent only where its decoding is closer than the chosen one's, so refinement can only help.

:meth:`LogMelObjective.refine_span` is the same search for a recording's overlapping clips, all at once: on the
distance of the stretch they decode to, cross-faded as :mod:`lib.models.recording` lays them, plus how far
neighbours' decodings differ where they overlap (``NEIGHBOUR_AGREEMENT``), so that fitting each clip does not
open a seam between two of them.

Imports: :mod:`lib.spectral.metrics` (the power floor); nothing above the models layer.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from lib.spectral.metrics import POWER_FLOOR

REFINE_STEPS = 10  # Adam steps per clip (0: the encoder's latent as it is)
# Adam's step size in latent units (whitened: one spread each). Scratch runs on the notes chose it: 0.03 coded the
# validation split 0.04 dB worse at 128 numbers and as well at 8; twenty steps (at 0.03) gained 0.08 dB more at 128
# on the test split in twice the time.
REFINE_RATE = 0.06
FLOOR_DB = 80.0  # as log_mel_db_distance: differences more than this under the clip's peak do not count
ADAM_BETAS = (0.9, 0.999)
# Weight of the neighbours' disagreement in a recording's search (refine_span): how far two overlapping clips'
# decodings differ, in dB, where they overlap. A search that only fits each clip moves neighbours apart, and the
# cross-fade between them is heard as a seam. Chosen on validation files (3 of the genre collections', 2 of the
# 50 h folder's), as the smallest of 0.25 / 0.35 / 0.5 whose seams stayed below the codec's without the search on
# both: it kept 81 and 88 % of the search's gain in distance there.
NEIGHBOUR_AGREEMENT = 0.35


class LogMelObjective:
    """The log-mel distance of decoded latents to their clips, differentiable in the latent.

    ``decoder`` maps latents [shape=(n, latent_dim)] to basis coefficients (None: the linear path
    alone, so PCA's coefficients are what moves); ``components``
    [shape=(basis_size, bins * frames)] and ``mean`` turn coefficients into normalised spectrograms
    (clipped to [0, 1], as the basis's inverse does); ``coefficient_std`` [shape=(latent_dim,)] is the
    linear path's scale (a share ``s`` decodes ``linear + s * (decoder - linear)``). ``peak_db`` and
    ``range_db`` are the representation's scale, ``mel`` [shape=(n_mels, bins)] its filter bank.
    """

    def __init__(
        self,
        decoder,
        components: np.ndarray,
        mean: np.ndarray,
        coefficient_std: np.ndarray,
        *,
        shape: tuple[int, int],
        peak_db: float,
        range_db: float,
        mel: np.ndarray,
    ) -> None:
        self.decoder = decoder
        self.components = tf.constant(np.asarray(components, np.float32))
        self.mean = tf.constant(np.asarray(mean, np.float32).reshape(-1))
        self.std = tf.constant(np.asarray(coefficient_std, np.float32).reshape(1, -1))
        self.shape, self.peak_db, self.range_db = tuple(shape), float(peak_db), float(range_db)
        self.mel = tf.constant(np.asarray(mel, np.float32))
        self.latent_dim = int(self.std.shape[1])
        self.basis_size = int(self.components.shape[0])
        signature = [
            tf.TensorSpec([None, None], tf.float32),  # the moving numbers [n, size]
            tf.TensorSpec([None, None], tf.float32),  # Adam's first moment
            tf.TensorSpec([None, None], tf.float32),  # Adam's second moment
            tf.TensorSpec([], tf.float32),  # the step's number, from 1
            tf.TensorSpec([None, 1], tf.float32),  # each clip's decoder share
            tf.TensorSpec([None, None, None], tf.float32),  # the clips' mel power in dB, floored
            tf.TensorSpec([None, 1, 1], tf.float32),  # each clip's floor
            tf.TensorSpec([], tf.float32),  # the step size
        ]
        self._step = tf.function(self._adam_step, input_signature=signature, reduce_retracing=True)
        self._span_compiled: dict = {}  # hop (frames) -> the compiled step and objective of refine_span

    def decoded(self, moving: tf.Tensor, share: tf.Tensor) -> tf.Tensor:
        """Normalised spectrograms [shape=(n, bins, frames)] of the first ``size`` latent numbers ``moving``."""
        size = tf.shape(moving)[1]
        if self.decoder is None:  # the linear path alone: PCA's first ``size`` coefficients, all that is not zero
            flat = (moving * self.std[:, :size]) @ self.components[:size]
        else:
            latents = tf.pad(moving, [[0, 0], [0, self.latent_dim - size]])
            linear = tf.pad(latents * self.std, [[0, 0], [0, self.basis_size - self.latent_dim]])
            flat = (linear + share * (self.decoder(latents, training=False) - linear)) @ self.components
        spectrograms = tf.clip_by_value(flat + self.mean, 0.0, 1.0)
        return tf.reshape(spectrograms, (-1, *self.shape))

    def mel_db(self, spectrograms: tf.Tensor) -> tf.Tensor:
        """Mel power in dB [shape=(n, n_mels, frames)] of normalised spectrograms [shape=(n, bins, frames)]."""
        decibels = spectrograms * self.range_db + (self.peak_db - self.range_db)
        power = tf.where(spectrograms <= 0.0, 0.0, tf.pow(10.0, decibels / 10.0))  # the representation's silence
        return 10.0 * tf.math.log(tf.einsum("mb,nbf->nmf", self.mel, power) + POWER_FLOOR) / np.log(10.0)

    def distances(self, moving: tf.Tensor, share: tf.Tensor, reference_db: tf.Tensor, floor: tf.Tensor) -> tf.Tensor:
        """Log-mel distance (dB) of each clip [shape=(n,)] for the first ``size`` latent numbers ``moving``."""
        mel_db = self.mel_db(self.decoded(moving, share))
        return tf.reduce_mean(tf.abs(tf.maximum(mel_db, floor) - reference_db), axis=(1, 2))

    def span_terms(
        self,
        moving: tf.Tensor,
        share: tf.Tensor,
        reference_db: tf.Tensor,
        floor: tf.Tensor,
        weights: tf.Tensor,
        hop: int,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The span that consecutive clips decode to, cross-faded as a recording is: (its log-mel distance in dB,
        the mean dB by which neighbouring clips' decodings differ where they overlap).

        ``moving`` [shape=(n, size)]: the latents of clips ``hop`` frames apart; ``weights`` [shape=(frames,)]:
        each clip's cross-fade over its real frames (``lib.models.recording.clip_weights``); ``reference_db``
        [shape=(n_mels, (n - 1) * hop + frames)]: the span's own mel power in dB, floored; ``floor``: a scalar.
        """
        frames = tf.shape(weights)[0]
        decoded = self.decoded(moving, share)[:, :, :frames]  # [n, bins, frames]
        summed = tf.signal.overlap_and_add(tf.transpose(decoded * weights, (1, 0, 2)), hop)  # [bins, span frames]
        weight = tf.signal.overlap_and_add(tf.tile(weights[None, :], (tf.shape(moving)[0], 1)), hop)
        mel_db = self.mel_db((summed / weight)[None])[0]
        distance = tf.reduce_mean(tf.abs(tf.maximum(mel_db, floor) - reference_db))
        tails = tf.maximum(self.mel_db(decoded[:-1, :, hop:]), floor)  # each clip where the next one starts
        heads = tf.maximum(self.mel_db(decoded[1:, :, : frames - hop]), floor)  # the next one there
        differences = tf.abs(tails - heads)  # [n - 1, mels, overlap]: empty for one clip
        count = tf.maximum(tf.cast(tf.size(differences), tf.float32), 1.0)
        return distance, tf.reduce_sum(differences) / count

    def _adam_step(self, moving, first, second, step, share, reference_db, floor, rate):
        with tf.GradientTape() as tape:
            tape.watch(moving)
            loss = tf.reduce_sum(self.distances(moving, share, reference_db, floor))
        return _adam(moving, first, second, step, tape.gradient(loss, moving), rate)

    def refine(
        self,
        latents: np.ndarray,
        shares: np.ndarray,
        reference_db: np.ndarray,
        *,
        size: int,
        steps: int = REFINE_STEPS,
        learning_rate: float = REFINE_RATE,
    ) -> np.ndarray:
        """Latents [shape=(n, latent_dim)] after ``steps`` Adam steps on their first ``size`` numbers.

        ``shares`` [shape=(n,)]: each clip's decoder share; ``reference_db`` [shape=(n, n_mels, frames)]:
        the clips' mel power in dB (``LogMelReference.reference_db``). The rest of each latent is zero.
        """
        latents = self._checked(latents, size)
        reference_db = np.asarray(reference_db, np.float32)
        floor = reference_db.max(axis=(1, 2), keepdims=True) - FLOOR_DB
        arguments = (
            tf.constant(np.asarray(shares, np.float32).reshape(-1, 1)),
            tf.constant(np.maximum(reference_db, floor)),
            tf.constant(floor),
            tf.constant(float(learning_rate), tf.float32),
        )
        moving = tf.constant(latents[:, :size])
        first, second = tf.zeros_like(moving), tf.zeros_like(moving)
        for step in range(1, steps + 1):
            moving, first, second = self._step(moving, first, second, tf.constant(float(step)), *arguments)
        refined = np.zeros_like(latents)
        refined[:, :size] = moving.numpy()
        return refined

    def refine_span(
        self,
        latents: np.ndarray,
        share: float,
        reference_db: np.ndarray,
        weights: np.ndarray,
        *,
        hop: int,
        size: int,
        steps: int = REFINE_STEPS,
        learning_rate: float = REFINE_RATE,
        agreement: float = NEIGHBOUR_AGREEMENT,
    ) -> tuple[np.ndarray, float, float]:
        """Latents [shape=(n, latent_dim)] of consecutive clips after ``steps`` Adam steps, all together, on the
        span they decode to (:meth:`span_terms`): its log-mel distance plus ``agreement`` times the neighbours'
        disagreement where they overlap.

        Each clip is searched in its neighbours' company: the frames two clips share are fitted as they sound,
        cross-faded, and the two are kept close there, so the search does not open seams. Returns (the moved
        latents, the objective before, after); the rest of each latent is zero.
        """
        latents = self._checked(latents, size)
        weights = np.asarray(weights, np.float32)
        reference_db = np.asarray(reference_db, np.float32)
        span = (len(latents) - 1) * hop + len(weights)
        if reference_db.shape != (self.mel.shape[0], span):
            raise ValueError(f"{len(latents)} clips {hop} frames apart need ({self.mel.shape[0]}, {span}) mel frames")
        floor = float(reference_db.max()) - FLOOR_DB
        arguments = (
            tf.constant(float(share), tf.float32),
            tf.constant(np.maximum(reference_db, floor)),
            tf.constant(floor, tf.float32),
            tf.constant(weights),
            tf.constant(float(agreement), tf.float32),
        )
        step_function, objective = self._span_functions(hop)
        moving = tf.constant(latents[:, :size])
        before = float(objective(moving, *arguments))
        first, second = tf.zeros_like(moving), tf.zeros_like(moving)
        rate = tf.constant(float(learning_rate), tf.float32)
        for step in range(1, steps + 1):
            moving, first, second = step_function(moving, first, second, tf.constant(float(step)), rate, *arguments)
        refined = np.zeros_like(latents)
        refined[:, :size] = moving.numpy()
        return refined, before, float(objective(moving, *arguments))

    def _checked(self, latents: np.ndarray, size: int) -> np.ndarray:
        """``latents`` as float32 [shape=(n, latent_dim)]; ValueError unless so shaped and ``size`` in 1..latent_dim."""
        latents = np.asarray(latents, np.float32)
        if latents.ndim != 2 or latents.shape[1] != self.latent_dim or not 1 <= size <= self.latent_dim:
            raise ValueError(f"need latents of shape (n, {self.latent_dim}) and a size in 1..{self.latent_dim}")
        return latents

    def _span_functions(self, hop: int):
        """The compiled Adam step and objective of :meth:`refine_span` for clips ``hop`` frames apart."""
        if hop not in self._span_compiled:
            numbers = tf.TensorSpec([None, None], tf.float32)  # the moving numbers [n, size], or a moment of them
            scalar = tf.TensorSpec([], tf.float32)
            terms = [  # share, the span's floored mel dB, floor, cross-fade weights, agreement
                scalar,
                tf.TensorSpec([None, None], tf.float32),
                scalar,
                tf.TensorSpec([None], tf.float32),
                scalar,
            ]

            def objective(moving, share, reference_db, floor, weights, agreement):
                distance, disagreement = self.span_terms(moving, share, reference_db, floor, weights, hop)
                return distance + agreement * disagreement

            def step_function(moving, first, second, step, rate, *rest):
                with tf.GradientTape() as tape:
                    tape.watch(moving)
                    loss = objective(moving, *rest) * tf.cast(tf.shape(moving)[0], tf.float32)  # a clip's own scale
                return _adam(moving, first, second, step, tape.gradient(loss, moving), rate)

            self._span_compiled[hop] = (
                tf.function(step_function, input_signature=[numbers, numbers, numbers, scalar, scalar, *terms]),
                tf.function(objective, input_signature=[numbers, *terms]),
            )
        return self._span_compiled[hop]


def _adam(moving, first, second, step, gradient, rate):
    """One Adam step (``ADAM_BETAS``) on ``moving``; returns it and the two moments."""
    first = ADAM_BETAS[0] * first + (1 - ADAM_BETAS[0]) * gradient
    second = ADAM_BETAS[1] * second + (1 - ADAM_BETAS[1]) * tf.square(gradient)
    corrected = (first / (1 - ADAM_BETAS[0] ** step)) / (tf.sqrt(second / (1 - ADAM_BETAS[1] ** step)) + 1e-7)
    return moving - rate * corrected, first, second
