"""Operations on latent vectors: noise, mixing, attribute vectors, attribute maps and principal directions.

All functions take latents of shape (n, latent_dim) or (latent_dim,) and return the same
kind; none of them needs the model (the measured "louder" vector takes an encoding function), so
each is tested on plain arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


def _as_latents(latents: np.ndarray) -> np.ndarray:
    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim not in (1, 2):
        raise ValueError(f"expected latents of shape (latent_dim,) or (n, latent_dim), got {latents.shape}")
    return latents


def latent_spread(training_latents: np.ndarray) -> np.ndarray:
    """Standard deviation of each latent dimension over the training set [shape=(latent_dim,)]."""
    training_latents = _as_latents(training_latents)
    if training_latents.ndim != 2 or len(training_latents) < 2:
        raise ValueError(f"need at least two training latents of shape (n, latent_dim), got {training_latents.shape}")
    return training_latents.std(axis=0)


def add_noise(
    latents: np.ndarray, spread: np.ndarray, strength: float, *, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Add Gaussian noise scaled per dimension by ``spread``; ``strength`` 0 leaves latents unchanged."""
    latents = _as_latents(latents)
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    rng = np.random.default_rng(rng)
    return latents + strength * np.asarray(spread, dtype=np.float32) * rng.standard_normal(latents.shape).astype(
        np.float32
    )


def lerp(start: np.ndarray, end: np.ndarray, fraction: float) -> np.ndarray:
    """Linear interpolation: ``fraction`` 0 gives ``start``, 1 gives ``end``."""
    start, end = _as_latents(start), _as_latents(end)
    return (1 - fraction) * start + fraction * end


def slerp(start: np.ndarray, end: np.ndarray, fraction: float) -> np.ndarray:
    """Spherical interpolation along the great circle between two vectors (norms interpolated linearly).

    Falls back to linear interpolation for (nearly) parallel vectors, where the arc is undefined.
    """
    start, end = _as_latents(start), _as_latents(end)
    start_norm = np.linalg.norm(start, axis=-1, keepdims=True)
    end_norm = np.linalg.norm(end, axis=-1, keepdims=True)
    cosine = np.sum(start * end, axis=-1, keepdims=True) / np.maximum(start_norm * end_norm, 1e-12)
    angle = np.arccos(np.clip(cosine, -1.0, 1.0))
    sine = np.sin(angle)
    safe = sine > 1e-6
    along_arc = (np.sin((1 - fraction) * angle) * start + np.sin(fraction * angle) * end) / np.where(safe, sine, 1.0)
    return np.where(safe, along_arc, lerp(start, end, fraction)).astype(np.float32)


def crossover(first: np.ndarray, second: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Take each dimension from ``first`` where ``mask`` is True, else from ``second``."""
    first, second = _as_latents(first), _as_latents(second)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape[-1] != first.shape[-1]:
        raise ValueError(f"mask has {mask.shape[-1]} dimensions, latents have {first.shape[-1]}")
    return np.where(mask, first, second)


def random_mask(latent_dim: int, share: float = 0.5, *, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """A crossover mask picking about ``share`` of the dimensions from the first parent."""
    return np.random.default_rng(rng).random(latent_dim) < share


def arithmetic(base: np.ndarray, subtract: np.ndarray, add: np.ndarray) -> np.ndarray:
    """Latent arithmetic ``base - subtract + add`` (e.g. piano C4 - piano C3 + flute C3)."""
    return _as_latents(base) - _as_latents(subtract) + _as_latents(add)


def attribute_vector(source_latents: np.ndarray, target_latents: np.ndarray) -> np.ndarray:
    """Mean latent difference from a source group to a target group [shape=(latent_dim,)].

    With paired groups (row i of each differs only in the attribute) this is the mean of the
    pair differences; with unpaired groups, the difference of the group means.
    """
    source_latents, target_latents = _as_latents(source_latents), _as_latents(target_latents)
    if source_latents.ndim != 2 or target_latents.ndim != 2 or not len(source_latents) or not len(target_latents):
        raise ValueError("both groups need at least one latent of shape (n, latent_dim)")
    return target_latents.mean(axis=0) - source_latents.mean(axis=0)


def apply_attribute(latents: np.ndarray, vector: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Move latents along an attribute vector: ``latents + strength * vector``."""
    return _as_latents(latents) + strength * np.asarray(vector, dtype=np.float32)


@dataclass
class LatentMap:
    """An affine map of the latent space fitted on pairs: ``latents @ weights + offset``.

    Where a constant vector can only add the same change to every latent (on a latent that is
    linear in the spectrum, "an octave up" becomes "the average spectrum of higher notes"), a map
    moves each latent by its own amount: the partials of *this* note to where they lie an octave up.
    """

    weights: np.ndarray  # [shape=(latent_dim, latent_dim)]
    offset: np.ndarray  # [shape=(latent_dim,)]
    ridge: float  # the penalty chosen on held-out pairs, relative to the pairs' mean variance
    pairs: int  # pairs it was fitted on

    def apply(self, latents: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """Move latents [shape=(n, latent_dim) or (latent_dim,)] towards their image: ``strength`` 0
        leaves them, 1 gives the map's output; in between, a straight line in the latent space."""
        latents = _as_latents(latents)
        mapped = latents @ self.weights + self.offset
        return (latents + np.float32(strength) * (mapped - latents)).astype(np.float32)


RIDGES: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)  # penalties tried by :func:`fit_latent_map`


def _ridge_solution(sources: np.ndarray, targets: np.ndarray, ridge: float) -> np.ndarray:
    """Weights [shape=(latent_dim + 1, latent_dim)] of ``[sources, 1] @ weights ≈ targets``; the
    offset (last row) is not penalised."""
    design = np.hstack([sources, np.ones((len(sources), 1))]).astype(np.float64)
    penalty = ridge * len(sources) * float(np.mean(np.var(sources, axis=0)) + 1e-12) * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0
    return np.linalg.solve(design.T @ design + penalty, design.T @ targets.astype(np.float64))


def fit_latent_map(
    source_latents: np.ndarray,
    target_latents: np.ndarray,
    *,
    ridges: Sequence[float] = RIDGES,
    held_out_share: float = 0.2,
    seed: int = 0,
    error: Callable[[np.ndarray, np.ndarray], float] | None = None,
) -> LatentMap:
    """The affine map from paired latents [each shape=(n, latent_dim)], row i of each a pair (a note
    and the same note an octave up), by ridge regression.

    The penalty is the one of ``ridges`` with the least ``error(predicted, target)`` on a seeded
    ``held_out_share`` of the pairs (default: the mean squared error of the latents; pass one measured
    where the sound is, e.g. on decoded spectrograms, since a latent's numbers need not weigh alike);
    the map is then fitted on every pair. Needs at least 10 pairs.
    """
    sources, targets = _as_latents(source_latents), _as_latents(target_latents)
    if sources.ndim != 2 or sources.shape != targets.shape:
        raise ValueError(f"need paired latents of one shape (n, latent_dim), got {sources.shape} and {targets.shape}")
    if len(sources) < 10 or not ridges:
        raise ValueError(f"need at least 10 pairs and one ridge to fit a map, got {len(sources)} and {list(ridges)}")
    order = np.random.default_rng(seed).permutation(len(sources))
    cut = max(1, int(held_out_share * len(order)))
    held_out, kept = order[:cut], order[cut:]
    if error is None:

        def error(predicted: np.ndarray, target: np.ndarray) -> float:
            return float(np.mean((predicted - target) ** 2))

    errors = []
    for ridge in ridges:
        weights = _ridge_solution(sources[kept], targets[kept], ridge)
        predicted = np.hstack([sources[held_out], np.ones((len(held_out), 1))]) @ weights
        errors.append(error(predicted.astype(np.float32), targets[held_out]))
    ridge = float(ridges[int(np.argmin(errors))])
    weights = _ridge_solution(sources, targets, ridge)
    return LatentMap(weights[:-1].astype(np.float32), weights[-1].astype(np.float32), ridge, len(sources))


def decoded_error(decode: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray, np.ndarray], float]:
    """An ``error`` for :func:`fit_latent_map` measured on what ``decode`` makes of latents [shape=(n, d)]
    (e.g. a codec's spectrograms): the mean squared difference between decoded predictions and targets."""

    def error(predicted: np.ndarray, target: np.ndarray) -> float:
        return float(np.mean((np.asarray(decode(predicted)) - np.asarray(decode(target))) ** 2))

    return error


def apply_edit(latents: np.ndarray, edit: np.ndarray | LatentMap, strength: float = 1.0) -> np.ndarray:
    """Apply an attribute vector (``latents + strength * vector``) or a :class:`LatentMap`."""
    if isinstance(edit, LatentMap):
        return edit.apply(latents, strength)
    return apply_attribute(latents, edit, strength)


def paired_indices(
    rows: Sequence[dict], field: str, delta: int, *, match: Sequence[str]
) -> tuple[list[int], list[int]]:
    """Pairs of rows equal in every ``match`` field whose ``field`` differs by ``delta``.

    Returns (source indices, target indices), e.g. ``field="pitch", delta=12,
    match=("program", "velocity")`` pairs each note with the same note an octave up.
    """
    position = {tuple(row[name] for name in (*match, field)): index for index, row in enumerate(rows)}
    sources, targets = [], []
    for index, row in enumerate(rows):
        partner = position.get((*(row[name] for name in match), row[field] + delta))
        if partner is not None:
            sources.append(index)
            targets.append(partner)
    return sources, targets


def hybrid_pairs(sources: Sequence[object], count: int, *, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """``count`` random pairs of clip positions [shape=(count, 2)] for hybrids, and whether their
    sources differ.

    ``sources`` names each clip's source (its program, its file). A pair takes two clips of
    different sources when there are at least two; a split that holds one source (a small folder's
    test split can hold one file) gets pairs of different clips of it, and ``False``.
    """
    sources = list(sources)
    if len(sources) < 2:
        raise ValueError(f"need at least two clips to pair, got {len(sources)}")
    if count < 1:
        raise ValueError(f"need a positive number of pairs, got {count}")
    different = len(set(sources)) > 1
    pairs = []
    while len(pairs) < count:  # with two sources or more, a draw of different ones always comes
        first, second = rng.choice(len(sources), 2, replace=False)
        if not different or sources[first] != sources[second]:
            pairs.append((first, second))
    return np.array(pairs), different


@dataclass
class PrincipalDirections:
    """PCA of training latents: the natural axes for sliders."""

    mean: np.ndarray  # [shape=(latent_dim,)]
    directions: np.ndarray  # [shape=(k, latent_dim)], orthonormal rows, most variance first
    spread: np.ndarray  # [shape=(k,)], standard deviation of the latents along each direction
    explained_share: np.ndarray  # [shape=(k,)], share of total latent variance per direction

    def move(self, latents: np.ndarray, amounts: Sequence[float]) -> np.ndarray:
        """Shift latents by ``amounts[i]`` standard deviations along direction ``i``."""
        amounts = np.asarray(amounts, dtype=np.float32)
        if amounts.shape[0] > self.directions.shape[0]:
            raise ValueError(f"{amounts.shape[0]} amounts for {self.directions.shape[0]} directions")
        count = amounts.shape[0]
        return _as_latents(latents) + (amounts * self.spread[:count]) @ self.directions[:count]


def principal_directions(training_latents: np.ndarray, count: int = 8) -> PrincipalDirections:
    """The first ``count`` principal directions of the training latents, with their share of variance."""
    training_latents = _as_latents(training_latents)
    if training_latents.ndim != 2 or not 1 <= count <= min(training_latents.shape):
        raise ValueError(f"count must lie in 1..{min(training_latents.shape)}, got {count}")
    mean = training_latents.mean(axis=0)
    _, singular_values, right_vectors = np.linalg.svd(training_latents - mean, full_matrices=False)
    variance = singular_values**2 / (len(training_latents) - 1)
    return PrincipalDirections(
        mean=mean,
        directions=right_vectors[:count].astype(np.float32),
        spread=np.sqrt(variance[:count]).astype(np.float32),
        explained_share=(variance[:count] / variance.sum()).astype(np.float32),
    )


def pad_latents(latents: np.ndarray, size: int) -> np.ndarray:
    """Latents [shape=(n, d)] with zeros appended up to ``size`` numbers [shape=(n, size)] (``d <= size``):
    the first numbers of a nested latent, decoded by the full-size decoder."""
    latents = np.asarray(latents)
    if latents.shape[1] > size:
        raise ValueError(f"latents of {latents.shape[1]} numbers do not fit in {size}")
    return np.pad(latents, ((0, 0), (0, size - latents.shape[1])))


@dataclass
class AttributeVectors:
    """Stage 2's attribute vectors (name -> [shape=(latent_dim,)]), its attribute maps, and the groups they
    were measured from.

    ``centroid_hz``: the mean spectral centroid of each family's (or label's) training clips;
    ``darkest`` and ``brightest``: the groups with the lowest and highest; ``found``: what the
    vectors rest on, in words, for the notebook to show.
    """

    vectors: dict[str, np.ndarray]
    centroid_hz: dict[str, float]
    darkest: str
    brightest: str
    found: list[str]
    maps: dict[str, LatentMap] = field(default_factory=dict)  # name -> affine map (``octave_up``)

    @property
    def group_vector(self) -> str:
        """The name of the darkest-to-brightest group vector."""
        return f"{self.darkest}_to_{self.brightest}"


def _group_centroids(rows: Sequence[dict], key: str, centroids: np.ndarray) -> dict[str, float]:
    names = sorted({row[key] for row in rows})
    return {name: float(np.mean(centroids[[row[key] == name for row in rows]])) for name in names}


def _group_difference(latents: np.ndarray, rows: Sequence[dict], key: str, source: str, target: str) -> np.ndarray:
    return attribute_vector(latents[[r[key] == source for r in rows]], latents[[r[key] == target for r in rows]])


def note_attribute_vectors(
    latents: np.ndarray,
    rows: Sequence[dict],
    waveforms: np.ndarray,
    *,
    sample_rate: int,
    decode: Callable[[np.ndarray], np.ndarray] | None = None,
) -> AttributeVectors:
    """The notes' vectors from labelled training clips (latents [shape=(n, d)], rows, waveforms [shape=(n, samples)]):
    ``octave_up`` (pairs of the same note an octave apart), ``louder`` (softest to loudest velocity,
    same program and pitch) and the darkest family to the brightest (by mean spectral centroid).

    The ``octave_up`` map is fitted on the same pairs; ``decode`` (latents to spectrograms), when given,
    is where its penalty is chosen (:func:`decoded_error`)."""
    from lib.data.analysis import spectral_centroid_hz

    velocities = sorted({row["velocity"] for row in rows})
    octave_sources, octave_targets = paired_indices(rows, "pitch", 12, match=("program", "velocity"))
    loud_sources, loud_targets = paired_indices(
        rows, "velocity", velocities[-1] - velocities[0], match=("program", "pitch")
    )
    centroid = {}
    for family in sorted({row["family"] for row in rows}):  # family by family: the clips of one at a time
        members = [i for i, row in enumerate(rows) if row["family"] == family]
        centroid[family] = float(np.mean(spectral_centroid_hz(waveforms[members], sample_rate=sample_rate)))
    darkest, brightest = min(centroid, key=centroid.get), max(centroid, key=centroid.get)
    vectors = {
        "octave_up": attribute_vector(latents[octave_sources], latents[octave_targets]),
        "louder": attribute_vector(latents[loud_sources], latents[loud_targets]),
        f"{darkest}_to_{brightest}": _group_difference(latents, rows, "family", darkest, brightest),
    }
    found = [
        f"pairs used: {{'octave_up': {len(octave_sources)}, 'louder': {len(loud_sources)}}}",
        f"darkest family: {darkest} ({centroid[darkest]:.0f} Hz spectral centroid)",
        f"brightest family: {brightest} ({centroid[brightest]:.0f} Hz)",
    ]
    maps = {}
    if len(octave_sources) >= 10:
        maps["octave_up"] = fit_latent_map(
            latents[octave_sources], latents[octave_targets], error=None if decode is None else decoded_error(decode)
        )
        found.append(f"octave_up map: {len(octave_sources)} pairs, ridge {maps['octave_up'].ridge:g}")
    return AttributeVectors(vectors, centroid, darkest, brightest, found, maps)


LOUDER_DB = 6.0  # the level step the measured "louder" vector stands for
MAP_CLIPS = 1000  # training clips (at most) the measured octave-up map is fitted on


def measured_attribute_vectors(
    latents: np.ndarray,
    rows: Sequence[dict],
    waveforms: np.ndarray,
    *,
    sample_rate: int,
    encode: Callable[[np.ndarray], np.ndarray],
    decode: Callable[[np.ndarray], np.ndarray] | None = None,
    map_clips: int = MAP_CLIPS,
    seed: int = 0,
) -> AttributeVectors:
    """Vectors for clips without note labels, measured from the training clips (latents [shape=(n, d)],
    rows, waveforms [shape=(n, samples)]): ``louder`` (the same clips :data:`LOUDER_DB` louder,
    encoded by ``encode``: level alone, where louder and quieter clips of a recording also differ in
    what they play), ``brighter`` (lowest quarter of spectral centroids to highest) and, with two labels
    or more, the darkest label to the brightest.

    The ``octave_up`` map is fitted on up to ``map_clips`` training clips (a seeded sample) and the same
    clips an octave up, their length kept (:func:`lib.data.augment.shifted_keeping_time`), encoded;
    ``decode`` (latents to spectrograms), when given, is where its penalty is chosen."""
    from lib.data.analysis import spectral_centroid_hz
    from lib.data.augment import shifted_keeping_time

    centroids = spectral_centroid_hz(waveforms, sample_rate=sample_rate)
    quarter = max(1, len(rows) // 4)
    louder = encode(np.asarray(waveforms, np.float32) * np.float32(10 ** (LOUDER_DB / 20)))
    vectors = {
        "louder": attribute_vector(latents, louder),
        "brighter": attribute_vector(
            latents[np.argsort(centroids)[:quarter]], latents[np.argsort(centroids)[-quarter:]]
        ),
    }
    centroid = _group_centroids(rows, "label", centroids)
    darkest, brightest = min(centroid, key=centroid.get), max(centroid, key=centroid.get)
    if darkest != brightest:
        vectors[f"{darkest}_to_{brightest}"] = _group_difference(latents, rows, "label", darkest, brightest)
    found = [
        f"louder: {len(rows)} training clips and the same clips {LOUDER_DB:g} dB louder; "
        f"brighter: groups of {quarter} training clips per end; labels by spectral centroid: {centroid}"
    ]
    maps = {}
    sample = np.sort(np.random.default_rng(seed).permutation(len(rows))[:map_clips])
    if len(sample) >= 10:
        octave = encode(shifted_keeping_time(np.asarray(waveforms)[sample], 12.0, sample_rate=sample_rate))
        maps["octave_up"] = fit_latent_map(
            latents[sample], octave, seed=seed, error=None if decode is None else decoded_error(decode)
        )
        found.append(
            f"octave_up map: {len(sample)} training clips and the same clips an octave up, "
            f"ridge {maps['octave_up'].ridge:g}"
        )
    return AttributeVectors(vectors, centroid, darkest, brightest, found, maps)


def note_edit_candidates(
    rows: Sequence[dict], found: AttributeVectors, *, top_pitch: int, softest_velocity: int
) -> dict[str, list[int]]:
    """Test clips each note vector applies to: an octave up only where it stays at or below ``top_pitch``,
    louder from ``softest_velocity``, the group vector from the darkest family (every clip when it has none)."""
    return {
        "octave_up": [i for i, row in enumerate(rows) if row["pitch"] + 12 <= top_pitch],
        "louder": [i for i, row in enumerate(rows) if row["velocity"] == softest_velocity],
        found.group_vector: [i for i, row in enumerate(rows) if row["family"] == found.darkest]
        or list(range(len(rows))),
    }


def measured_edit_candidates(
    rows: Sequence[dict], waveforms: np.ndarray, found: AttributeVectors, *, sample_rate: int
) -> dict[str, list[int]]:
    """Test clips each measured vector applies to: the quieter and the darker half of the test clips, and
    the darkest label's clips for the group vector (every clip when it has none)."""
    from lib.data.analysis import spectral_centroid_hz

    centroids = spectral_centroid_hz(waveforms, sample_rate=sample_rate)
    levels = np.array([row["level_db"] for row in rows])
    half = max(1, len(rows) // 2)
    candidates = {"louder": list(np.argsort(levels)[:half]), "brighter": list(np.argsort(centroids)[:half])}
    if found.group_vector in found.vectors:
        candidates[found.group_vector] = [i for i, row in enumerate(rows) if row["label"] == found.darkest] or list(
            range(len(rows))
        )
    return candidates
