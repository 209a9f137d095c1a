"""Judging generated sounds by numbers: an in-repo classifier and distribution metrics.

* :func:`build_classifier`: a small Keras network on normalised spectrograms with a pitch head
  and an instrument-family head; its penultimate layer gives the features the metrics compare.
* :func:`frechet_distance`: the Fréchet distance between Gaussians fitted to two feature sets
  (the FID recipe, with this project's classifier in place of Inception).
* :class:`NDBBins`: the number of statistically different bins (Richardson & Weiss, 2018): k-means
  bins on real training features, a two-proportion z-test per bin.
* :func:`entropy_bits`: diversity of predicted labels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers
from scipy import linalg, stats
from sklearn.cluster import KMeans

FEATURES_LAYER = "features"
# Training clips per label before a judge is expected to beat chance on a folder's labels (the check
# cells and the folder-run test): a one-second clip holds little of a genre or an artist, and the
# genre collections' judge learned from about 700 per label; a smoke folder's 45 per label is not enough.
ENOUGH_CLIPS_PER_LABEL = 100


def build_classifier(
    frequency_bins: int, frames: int, pitch_classes: int, family_classes: int, *, width: int = 128
) -> keras.Model:
    """Spectrograms [shape=(batch, frequency_bins, frames)] to {"pitch", "family"} class probabilities.

    Frames are a sequence whose channels are the frequency bins (as in the autoencoder), so
    the first convolution sees each frame's whole spectrum: harmonic templates for pitch.
    Global average and max pooling over time, then a ``features`` layer shared by both heads.
    """
    spectrograms = keras.Input(shape=(frequency_bins, frames), name="spectrogram")
    hidden = layers.Permute((2, 1), name="time_major")(spectrograms)
    for index, stride in enumerate((1, 2, 2)):
        hidden = layers.Conv1D(width * (1 + index // 2), 3, strides=stride, padding="same", name=f"conv_{index}")(
            hidden
        )
        hidden = layers.BatchNormalization(name=f"norm_{index}")(hidden)
        hidden = layers.ReLU(name=f"relu_{index}")(hidden)
    pooled = layers.Concatenate(name="pool")(
        [layers.GlobalAveragePooling1D(name="average")(hidden), layers.GlobalMaxPooling1D(name="maximum")(hidden)]
    )
    pooled = layers.Dropout(0.3, name="dropout")(pooled)
    features = layers.Dense(width, activation="relu", name=FEATURES_LAYER)(pooled)
    pitch = layers.Dense(pitch_classes, activation="softmax", name="pitch")(features)
    family = layers.Dense(family_classes, activation="softmax", name="family")(features)
    return keras.Model(spectrograms, {"pitch": pitch, "family": family}, name="judge")


@dataclass
class Judgement:
    """What the classifier says about a set of spectrograms."""

    features: np.ndarray  # [shape=(n, width)]
    pitch: np.ndarray  # predicted pitch class index [shape=(n,)]
    family: np.ndarray  # predicted family index [shape=(n,)]


def judge(classifier: keras.Model, spectrograms: np.ndarray, *, batch_size: int = 256) -> Judgement:
    """Features and predicted classes for spectrograms [shape=(n, frequency_bins, frames)]."""
    both = keras.Model(
        classifier.inputs,
        [classifier.get_layer(FEATURES_LAYER).output, classifier.output["pitch"], classifier.output["family"]],
    )
    features, pitch, family = both.predict(spectrograms, batch_size=batch_size, verbose=0)
    return Judgement(np.asarray(features), np.argmax(pitch, axis=1), np.argmax(family, axis=1))


def frechet_distance(first: np.ndarray, second: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [shape=(n, d)] and [shape=(m, d)].

    ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``; 0 for identical sets.
    """
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if first.ndim != 2 or second.ndim != 2 or first.shape[1] != second.shape[1]:
        raise ValueError(f"need two (n, d) feature sets of equal d, got {first.shape} and {second.shape}")
    if len(first) < 2 or len(second) < 2:
        raise ValueError("each feature set needs at least two rows for a covariance")
    mean_difference = first.mean(axis=0) - second.mean(axis=0)
    first_cov = np.atleast_2d(np.cov(first, rowvar=False))
    second_cov = np.atleast_2d(np.cov(second, rowvar=False))
    with warnings.catch_warnings():
        # A singular product (fewer clips than features) is handled below, as the FID code does.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        product_root = linalg.sqrtm(first_cov @ second_cov)
        if not np.all(np.isfinite(product_root)):
            offset = np.eye(first_cov.shape[0]) * 1e-6
            product_root = linalg.sqrtm((first_cov + offset) @ (second_cov + offset))
    product_root = np.real(product_root)
    trace = np.trace(first_cov) + np.trace(second_cov) - 2 * np.trace(product_root)
    return float(mean_difference @ mean_difference + max(trace, 0.0))


@dataclass
class NDBResult:
    """Number of statistically different bins, and the per-bin details."""

    different_bins: int
    bins: int
    reference_shares: np.ndarray  # [shape=(bins,)]
    sample_shares: np.ndarray  # [shape=(bins,)]

    @property
    def ndb_over_k(self) -> float:
        """NDB / K: 0 when the sample fills the bins like the reference does."""
        return self.different_bins / self.bins


class NDBBins:
    """k-means bins fitted on reference (real training) features, reused for every sample set."""

    def __init__(self, reference_features: np.ndarray, *, bins: int = 20, seed: int = 0) -> None:
        reference_features = np.asarray(reference_features, dtype=np.float64)
        if len(reference_features) < 2 * bins:
            raise ValueError(f"need at least {2 * bins} reference rows for {bins} bins, got {len(reference_features)}")
        self.kmeans = KMeans(n_clusters=bins, n_init=4, random_state=seed).fit(reference_features)
        self.bins = bins
        self.reference_counts = np.bincount(self.kmeans.labels_, minlength=bins)

    def compare(self, sample_features: np.ndarray, *, significance: float = 0.05) -> NDBResult:
        """Two-proportion z-test per bin between the reference and the sample."""
        labels = self.kmeans.predict(np.asarray(sample_features, dtype=np.float64))
        sample_counts = np.bincount(labels, minlength=self.bins)
        reference_total, sample_total = self.reference_counts.sum(), sample_counts.sum()
        reference_shares, sample_shares = self.reference_counts / reference_total, sample_counts / sample_total
        pooled = (self.reference_counts + sample_counts) / (reference_total + sample_total)
        standard_error = np.sqrt(pooled * (1 - pooled) * (1 / reference_total + 1 / sample_total))
        z = np.abs(reference_shares - sample_shares) / np.maximum(standard_error, 1e-12)
        p_values = 2 * stats.norm.sf(z)
        return NDBResult(int(np.sum(p_values < significance)), self.bins, reference_shares, sample_shares)


def entropy_bits(labels: np.ndarray, classes: int) -> float:
    """Entropy (bits) of the label histogram: log2(classes) when uniform, 0 when all equal."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=classes).astype(np.float64)
    shares = counts[counts > 0] / counts.sum()
    return float(-(shares * np.log2(shares)).sum())
