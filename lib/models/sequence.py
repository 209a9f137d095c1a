"""Music longer than a clip: a small recurrent model over the latents of consecutive clips.

A recording through the recording codec (``lib.models.recording``) is a sequence of latent frames, one
per overlapping clip. This module learns that sequence: given the last ``context`` frames (and the
recording's label), predict the next. Frames are **standardised** per number on the training
frames, so every number counts alike and the training mean is 0. The model is a GRU over the
context, a hidden layer and a linear read-out of the next frame's mean; the spread around that mean
is the covariance of its residuals on validation files (a Gaussian, sampled with a temperature).
It trains with dropout and with Gaussian noise on its inputs: generating feeds it its own,
imperfect frames, and a model that only ever heard real contexts drifted away from where real
frames lie within a few steps (in trials on the genre collections).
Contexts shorter than ``context`` (a recording's first frames) are padded with zeros, the mean
frame, so the same model starts a piece from nothing and continues one from its first seconds.

Judged against baselines: prediction error at several horizons against "repeat the last frame" and
"the training mean"; generated windows of consecutive frames against real ones (Fréchet distance
in the principal components of real windows, beside independent samples of a mixture prior strung
together and real frames in shuffled order, and the real floor); a label judge on windows;
continuity (distance between consecutive frames).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression

from lib.models.codec import run_model
from lib.models.judge import frechet_distance
from lib.models.priors import MixturePrior

WINDOW_COMPONENTS = 16  # principal components of real windows in which windows are compared


@dataclass
class Standardiser:
    """Per-number mean and spread of training frames [shape=(size,)]."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, sequences: Sequence[np.ndarray]) -> Standardiser:
        """From every frame of ``sequences`` (each [shape=(frames, size)])."""
        frames = np.concatenate(sequences)
        return cls(frames.mean(axis=0).astype(np.float32), (frames.std(axis=0) + 1e-6).astype(np.float32))

    def forward(self, frames: np.ndarray) -> np.ndarray:
        """Latent frames to standardised frames (same shape)."""
        return ((np.asarray(frames, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def inverse(self, frames: np.ndarray) -> np.ndarray:
        """Standardised frames back to latent frames (same shape)."""
        return (np.asarray(frames, dtype=np.float32) * self.std + self.mean).astype(np.float32)


def one_hot(labels: Sequence[int], count: int) -> np.ndarray:
    """Labels [shape=(n,)] as one-hot rows [shape=(n, count)]."""
    rows = np.zeros((len(labels), count), np.float32)
    rows[np.arange(len(labels)), np.asarray(labels, dtype=int)] = 1.0
    return rows


def training_pairs(
    sequences: Sequence[np.ndarray], labels: Sequence[int], *, context: int, label_count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every (context, next frame) pair of standardised sequences.

    Returns inputs [shape=(pairs, context, size + label_count)] (earlier frames, zero-padded at a
    sequence's start, each step carrying the label) and targets [shape=(pairs, size)].
    """
    inputs, targets = [], []
    for sequence, label in zip(sequences, labels):
        size = sequence.shape[1]
        padded = np.concatenate([np.zeros((context, size), np.float32), sequence])
        label_row = one_hot([label], label_count)[0]
        for index in range(len(sequence)):
            window = padded[index : index + context]
            inputs.append(np.concatenate([window, np.broadcast_to(label_row, (context, label_count))], axis=1))
            targets.append(sequence[index])
    return np.asarray(inputs, np.float32), np.asarray(targets, np.float32)


def build_sequence_model(
    context: int,
    size: int,
    label_count: int,
    *,
    width: int = 64,
    dropout: float = 0.2,
    input_noise: float = 0.5,
    seed: int = 0,
) -> keras.Model:
    """GRU over ``context`` frames of ``size`` numbers (+ the label) -> the next frame's mean [shape=(size,)].

    ``input_noise`` (standard deviation, standardised units) and ``dropout`` act in training only.
    """
    initializer = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input((context, size + label_count), name="context")
    noisy = keras.layers.GaussianNoise(input_noise, seed=seed, name="input_noise")(inputs)
    hidden = keras.layers.GRU(width, dropout=dropout, kernel_initializer=initializer, name="gru")(noisy)
    hidden = keras.layers.Dense(width, activation="relu", kernel_initializer=initializer, name="hidden")(hidden)
    hidden = keras.layers.Dropout(dropout, seed=seed, name="dropout")(hidden)
    outputs = keras.layers.Dense(size, kernel_initializer=initializer, name="next_frame")(hidden)
    return keras.Model(inputs, outputs, name="sequence_model")


def residual_factor(model: keras.Model, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Cholesky factor [shape=(size, size)] of the model's residual covariance on held-out pairs."""
    residuals = targets - predict(model, inputs)
    covariance = np.cov(residuals, rowvar=False) + 1e-4 * np.eye(targets.shape[1])
    return np.linalg.cholesky(covariance).astype(np.float32)


def predict(model: keras.Model, inputs: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
    """The next frames' means [shape=(n, size)] for contexts [shape=(n, context, size + labels)]."""
    return np.asarray(run_model(model, inputs, batch_size=batch_size), dtype=np.float32)


def roll_out(
    model: keras.Model,
    prompts: np.ndarray,
    labels: Sequence[int],
    steps: int,
    *,
    label_count: int,
    factor: np.ndarray | None = None,
    temperature: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Continue standardised prompts [shape=(n, frames, size)] (frames may be 0) by ``steps`` frames.

    Each step predicts the next frame's mean and, with a residual ``factor``, adds Gaussian noise
    of that covariance scaled by ``temperature`` (without one, the mean path). Returns
    [shape=(n, steps, size)].
    """
    rng = np.random.default_rng(seed)
    prompts = np.asarray(prompts, np.float32)
    count, _, size = prompts.shape
    context = int(model.input_shape[1])
    history = np.concatenate([np.zeros((count, context, size), np.float32), prompts], axis=1)
    label_rows = np.broadcast_to(one_hot(labels, label_count)[:, None, :], (count, context, label_count))
    generated = []
    for _ in range(steps):
        following = predict(model, np.concatenate([history[:, -context:], label_rows], axis=2))
        if factor is not None:
            following = following + temperature * rng.standard_normal((count, size)).astype(np.float32) @ factor.T
        generated.append(following)
        history = np.concatenate([history[:, 1:], following[:, None]], axis=1)
    return np.stack(generated, axis=1)


def label_proposals(
    sequences: Sequence[np.ndarray], labels: Sequence[int], *, components: int = 8, seed: int = 0
) -> dict[int, MixturePrior]:
    """A Gaussian mixture per label, fitted to that label's standardised training frames: the baseline
    that strings independent samples together."""
    proposals = {}
    for label in sorted(set(labels)):
        frames = np.concatenate([s for s, own in zip(sequences, labels) if own == label])
        proposals[int(label)] = MixturePrior.fit(frames, max(1, min(components, len(frames) // 20)), seed=seed)
    return proposals


def horizon_errors(
    model: keras.Model,
    sequences: Sequence[np.ndarray],
    labels: Sequence[int],
    horizons: Sequence[int],
    *,
    label_count: int,
) -> dict[int, dict[str, float]]:
    """Mean squared error (standardised units) of the frame ``h`` steps ahead, by horizon.

    From every position ``t >= 1`` of every held-out sequence with ``t + h <= frames``: the model
    rolled out on its own mean predictions from the frames before ``t``, against "repeat the last
    frame" (frame ``t - 1``) and "the training mean" (0).
    """
    errors: dict[int, dict[str, float]] = {}
    for horizon in horizons:
        model_errors, repeat_errors, mean_errors = [], [], []
        for sequence, label in zip(sequences, labels):
            starts = np.arange(1, len(sequence) - horizon + 1)
            if not len(starts):
                continue
            prompts = np.stack([_last_frames(sequence[:start], int(model.input_shape[1])) for start in starts])
            predicted = roll_out(model, prompts, [label] * len(starts), horizon, label_count=label_count)[:, -1]
            truth = sequence[starts + horizon - 1]
            model_errors.append(np.mean((predicted - truth) ** 2, axis=1))
            repeat_errors.append(np.mean((sequence[starts - 1] - truth) ** 2, axis=1))
            mean_errors.append(np.mean(truth**2, axis=1))
        if model_errors:
            errors[horizon] = {
                "sequence_model": float(np.mean(np.concatenate(model_errors))),
                "repeat_last_frame": float(np.mean(np.concatenate(repeat_errors))),
                "training_mean": float(np.mean(np.concatenate(mean_errors))),
                "positions": int(sum(len(e) for e in model_errors)),
            }
    return errors


def _last_frames(frames: np.ndarray, context: int) -> np.ndarray:
    """The last ``context`` frames, zero-padded in front when fewer exist [shape=(context, size)]."""
    kept = frames[-context:]
    return np.concatenate([np.zeros((context - len(kept), frames.shape[1]), np.float32), kept])


def windows(sequences: Sequence[np.ndarray], width: int) -> np.ndarray:
    """Every run of ``width`` consecutive frames, flattened [shape=(n, width * size)]."""
    found = [
        sequence[start : start + width].reshape(-1)
        for sequence in sequences
        for start in range(len(sequence) - width + 1)
    ]
    return np.asarray(found, np.float32)


def continuity(sequences: Sequence[np.ndarray]) -> float:
    """Mean distance (standardised units) between consecutive frames."""
    steps = [np.linalg.norm(np.diff(sequence, axis=0), axis=1) for sequence in sequences if len(sequence) > 1]
    return float(np.mean(np.concatenate(steps)))


@dataclass
class WindowSpace:
    """Real training windows' principal components, where windows are compared, and a label judge
    (None when the windows carry one label: nothing to tell apart)."""

    pca: PCA
    judge: LogisticRegression | None

    @classmethod
    def fit(cls, train_windows: np.ndarray, train_labels: np.ndarray, *, seed: int = 0) -> WindowSpace:
        """Fit the components and the judge (logistic regression on the components) on real windows."""
        components = min(WINDOW_COMPONENTS, train_windows.shape[1], len(train_windows) - 1)
        pca = PCA(components, random_state=seed).fit(train_windows)
        judge = None
        if len(np.unique(train_labels)) > 1:
            judge = LogisticRegression(max_iter=2000).fit(pca.transform(train_windows), train_labels)
        return cls(pca, judge)

    def features(self, windows_: np.ndarray) -> np.ndarray:
        """Windows [shape=(n, width * size)] in the components [shape=(n, components)]."""
        return self.pca.transform(windows_).astype(np.float32)

    def frechet(self, windows_: np.ndarray, reference: np.ndarray) -> float:
        """Fréchet distance between two sets of windows, in the components."""
        return float(frechet_distance(self.features(windows_), self.features(reference)))

    def judged(self, windows_: np.ndarray) -> np.ndarray:
        """The judge's label for each window [shape=(n,)]."""
        if self.judge is None:
            raise ValueError("the training windows carry one label: there is no judge to tell labels apart")
        return self.judge.predict(self.features(windows_))
