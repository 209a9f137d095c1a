"""Genre phrases measured: genre conditions, content measures, transfer (the judge: :mod:`lib.measure.label_judge`).

The phrases themselves (4 s, why that length) come from :mod:`lib.data.phrases`.

Style transfer is measured by what stays of the source phrase: its onset envelope (rhythm)
and its chroma (harmony and melody), each correlated with the source's; a random phrase of
the target genre gives the level that owes nothing to the source. Phrases start on a fixed
grid in scores of steady tempo, so every phrase shares a little: beats fall at the same
places, a genre's keys colour the chroma. Correlating raw features would reward a result that
returns that shared part (the genre's average phrase correlates with any source better than a
real phrase does); so both features are first taken relative to their mean over the training
phrases (:func:`content_baseline`), and only what is particular to the source counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

FEATURE_HOP = 512  # samples between frames of the onset envelope and the chroma
EDGE_FRAMES = 4  # frames dropped at each end (~0.13 s at 16 kHz): a clip's cut edges look like onsets


def genre_conditions(labels: list[str] | np.ndarray, genre_names: tuple[str, ...]) -> np.ndarray:
    """One-hot genre vectors [shape=(n, len(genre_names))] for labels [shape=(n,)]."""
    unknown = sorted(set(map(str, labels)) - set(genre_names))
    if unknown:
        raise ValueError(f"unknown genre(s) {unknown}; known: {list(genre_names)}")
    conditions = np.zeros((len(labels), len(genre_names)), np.float32)
    conditions[np.arange(len(labels)), [genre_names.index(str(label)) for label in labels]] = 1.0
    return conditions


@dataclass(frozen=True)
class GenreConditions:
    """The genre-conditioned VAE's conditions as a condition space for streamed training
    (:func:`lib.models.training.conditioned_inputs`): a phrase is known when its label is one of
    ``genres``, and its condition vector is that genre's one-hot (:func:`genre_conditions`)."""

    genres: tuple[str, ...]

    def known(self, rows: list[dict]) -> np.ndarray:
        """Which manifest rows carry one of the genres [shape=(n,), bool]."""
        return np.array([row["label"] in self.genres for row in rows], dtype=bool)

    def conditions_of(self, waveforms: np.ndarray, rows: list[dict], *, sample_rate: int) -> np.ndarray:
        """One-hot genre vectors of known phrases [shape=(n, len(genres))] (the audio is not needed)."""
        return genre_conditions([row["label"] for row in rows], self.genres)

    def to_dict(self) -> dict:
        """Plain JSON-ready dictionary."""
        return {"genres": list(self.genres)}


def onset_envelopes(waveforms: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """Onset strength [shape=(n, frames)] of waveforms [shape=(n, samples)]: where notes start.

    The first and last ``EDGE_FRAMES`` frames are dropped: a clip cut from the middle of a piece
    starts with a jump from the padding that every clip shares, which would inflate correlations.
    """
    envelopes = np.stack(
        [librosa.onset.onset_strength(y=clip, sr=sample_rate, hop_length=FEATURE_HOP) for clip in waveforms]
    )
    return envelopes[:, EDGE_FRAMES:-EDGE_FRAMES]


def chroma_features(waveforms: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """Chroma [shape=(n, 12, frames)] of waveforms [shape=(n, samples)]: pitch classes over time."""
    chroma = np.stack(
        [librosa.feature.chroma_stft(y=clip, sr=sample_rate, hop_length=FEATURE_HOP, n_fft=2048) for clip in waveforms]
    )
    return chroma[:, :, EDGE_FRAMES:-EDGE_FRAMES]


def row_correlations(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Pearson correlation of each pair of rows (flattened) [shape=(n,)]; 0 where either is constant."""
    first = np.asarray(first, np.float64).reshape(len(first), -1)
    second = np.asarray(second, np.float64).reshape(len(second), -1)
    if first.shape != second.shape:
        raise ValueError(f"need matching shapes, got {first.shape} and {second.shape}")
    first = first - first.mean(axis=1, keepdims=True)
    second = second - second.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
    return np.where(norms > 0, np.sum(first * second, axis=1) / np.maximum(norms, 1e-12), 0.0)


def content_baseline(waveforms: np.ndarray, *, sample_rate: int) -> dict[str, np.ndarray]:
    """What phrases share: the mean onset envelope [shape=(frames,)] and chroma [shape=(12, frames)]."""
    return {
        "onset": onset_envelopes(waveforms, sample_rate=sample_rate).mean(axis=0),
        "chroma": chroma_features(waveforms, sample_rate=sample_rate).mean(axis=0),
    }


def content_kept(
    source: np.ndarray, result: np.ndarray, *, sample_rate: int, baseline: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """How much of each source phrase [shape=(n, samples)] a result phrase keeps, per pair [shape=(n,)].

    ``onset``: correlation of the onset envelopes (rhythm); ``chroma``: correlation of the
    chromagrams (harmony and melody); both relative to ``baseline`` (:func:`content_baseline`)
    when given. 1 for a phrase against itself; near 0 for unrelated music.
    """
    kept = {}
    for name, features in (("onset", onset_envelopes), ("chroma", chroma_features)):
        shared = 0.0 if baseline is None else baseline[name]
        kept[name] = row_correlations(
            features(source, sample_rate=sample_rate) - shared, features(result, sample_rate=sample_rate) - shared
        )
    return kept


def build_genre_cvae(config, genre_count: int, coefficient_std: np.ndarray, *, seed: int = 0):
    """A conditional VAE (:mod:`lib.models.conditional`), its condition a one-hot genre [shape=(batch, genre_count)]."""
    from lib.models.conditional import conditional_vae_for

    return conditional_vae_for(config, genre_count, coefficient_std, seed=seed, name="genre_cvae")


def decode_with_genres(model, latents: np.ndarray, conditions: np.ndarray) -> np.ndarray:
    """Basis coefficients [shape=(n, basis_size)] that a genre CVAE's decoder makes of latents under conditions."""
    return model.decoder.predict(
        {"latent": np.asarray(latents, np.float32), "conditions": np.asarray(conditions, np.float32)},
        batch_size=256,
        verbose=0,
    )


def encode_with_genres(model, coefficients: np.ndarray, conditions: np.ndarray) -> np.ndarray:
    """Posterior means [shape=(n, latent_dim)] of a genre CVAE for coefficients under their genres."""
    outputs = model.encoder.predict(
        {"coefficients": np.asarray(coefficients, np.float32), "conditions": np.asarray(conditions, np.float32)},
        batch_size=256,
        verbose=0,
    )
    return np.asarray(outputs[0], np.float32)


def transfer_pairs(labels: list[str], genre_names: tuple[str, ...], count: int, *, seed: int = 0) -> list[tuple]:
    """(phrase index, target genre) pairs: ``count`` phrases spread over the genres, each sent to every other genre."""
    rng = np.random.default_rng(seed)
    by_genre = {genre: [i for i, label in enumerate(labels) if label == genre] for genre in genre_names}
    per_genre = max(1, count // len(genre_names))
    chosen = [int(i) for genre in genre_names for i in rng.permutation(by_genre[genre])[:per_genre] if by_genre[genre]]
    return [(i, target) for i in chosen for target in genre_names if target != labels[i]]
