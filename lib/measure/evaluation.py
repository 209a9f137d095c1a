"""Measuring the stages on equal terms: compression, edits and generated sounds.

* :func:`rate_distortion_sweep`: autoencoder and PCA rows at every latent size (stage 1).
* :func:`attribute_effect`: what an attribute vector or map does to decoded audio (stage 2).

Every generator's clips go to audio through the same Griffin-Lim and back into spectrograms
before the judge (lib.models.judge) sees them, and the *real floor* does the same to real training
clips: what Griffin-Lim's artefacts cost is then charged to everyone alike, and a generator
is compared with what real clips score after the same round trip, not with pristine ones.

* :class:`GenerationReference`: the real clips (judged once) that every set is scored against.
* :func:`score_generated`: Fréchet distance, NDB/K, family shares, label entropies, and the
  median distance to the nearest training clip (a copy of the training set scores near 0).
* :func:`pitch_agreement`: how many clips sound (librosa.pyin) within some cents of a pitch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import keras
import librosa
import numpy as np

from lib.data import analysis, stream
from lib.data.clips import ClipDataset
from lib.data.dataset import FAMILIES
from lib.models import judge, latent
from lib.models.codec import CHOICE_BITS
from lib.models.training import StreamedData
from lib.spectral import metrics
from lib.spectral.basis import SpectralBasis
from lib.spectral.representation import SpectrogramRepresentation

logger = logging.getLogger(__name__)
PITCH_RESOLUTION = 0.2  # semitones: pyin's grid for pitch checks (at most 10 cents off; 5x faster than 0.1)
MEASURABLE_DB = 0.05  # dB: the smallest change of a mean log-mel distance counted as a difference
CONVERGENCE_WINDOW = 0.2  # share of the epochs at the end of training where the curve must be flat
CONVERGENCE_TOLERANCE = 0.01  # relative gain of the best validation loss over that window still called flat
JUDGE_BLOCK_CLIPS = 128  # clips read at a time when the judge streams a split: 8 blocks of spectrograms are 128 MB


@dataclass
class GenerationReference:
    """Real clips judged once: the yardstick of every generator.

    ``train`` and ``test`` are the judge's verdicts on the real training and test spectrograms a stage
    holds; ``families`` and ``pitches`` name the judge's classes; ``real_family_shares`` is the share
    of each family among the real test clips. ``every_train`` and ``every_test`` are the verdicts on
    every clip of a split held as a sample (a large collection), judged in passes (None when the held
    clips are the whole split): the distribution figures (Fréchet distance, NDB bins, nearest training
    clip) compare with every clip.
    """

    classifier: keras.Model
    representation: SpectrogramRepresentation
    train: judge.Judgement
    test: judge.Judgement
    families: tuple[str, ...]
    pitches: tuple[int, ...]
    real_family_shares: dict[str, float]
    bins: judge.NDBBins
    every_train: judge.Judgement | None = None
    every_test: judge.Judgement | None = None

    @property
    def train_features(self) -> np.ndarray:
        """Features of every real training clip [shape=(n, width)] (the held ones when they are all)."""
        return (self.every_train or self.train).features

    @property
    def test_features(self) -> np.ndarray:
        """Features of every real test clip [shape=(n, width)] (the held ones when they are all)."""
        return (self.every_test or self.test).features

    @classmethod
    def build(
        cls,
        classifier: keras.Model,
        representation: SpectrogramRepresentation,
        train_spectrograms: np.ndarray,
        test_spectrograms: np.ndarray,
        test_families: Sequence[str],
        *,
        families: Sequence[str],
        pitches: Sequence[int],
        ndb_bins: int = 20,
        seed: int = 0,
        dataset: ClipDataset | None = None,
        splits: tuple[str, str] = ("train", "test"),
        judged: Mapping[str, judge.Judgement | None] | None = None,
    ) -> GenerationReference:
        """Judge the real clips and fit the NDB bins on the training features.

        With ``dataset`` (whose ``splits`` the two stacks hold), a split the dataset holds as a sample is
        also judged over every clip in passes (:func:`judge_in_passes`), for the distribution figures;
        ``judged`` gives such verdicts already made (e.g. another reference's ``every_train``), not redone.
        """
        families = tuple(families)
        train = judge.judge(classifier, train_spectrograms)
        sampled = dataset.sampled_splits() if dataset is not None else {}
        every = {
            split: (judged or {}).get(split) or judge_in_passes(classifier, representation, dataset, split)
            for split in splits
            if split in sampled
        }
        every_train = every.get(splits[0])
        counts = {family: 0 for family in families}
        for family in test_families:
            counts[family] += 1
        return cls(
            classifier,
            representation,
            train,
            judge.judge(classifier, test_spectrograms),
            families,
            tuple(int(p) for p in pitches),
            {family: count / len(test_families) for family, count in counts.items()},
            judge.NDBBins((every_train or train).features, bins=ndb_bins, seed=seed),
            every_train,
            every.get(splits[1]),
        )

    def judged_clips(self) -> dict[str, int]:
        """Real clips the distribution figures compare with: {"train": n, "test": m} (every clip of a split
        held as a sample, the held clips otherwise), for a notebook's metrics."""
        return {"train": len(self.train_features), "test": len(self.test_features)}

    def judge_audio(self, waveforms: np.ndarray) -> judge.Judgement:
        """The judge's verdict on waveforms [shape=(n, clip_samples)] (re-analysed into spectrograms)."""
        return judge.judge(self.classifier, self.representation.forward(waveforms))

    def label_names(self, waveforms: np.ndarray) -> np.ndarray:
        """The family (or, on a labelled dataset, the label) the judge hears in each waveform [shape=(n,)]."""
        return np.array(self.families)[self.judge_audio(waveforms).family]

    def round_trip(self, waveforms: np.ndarray) -> np.ndarray:
        """Real waveforms through the representation and Griffin-Lim, as every generator's output goes."""
        return self.representation.inverse(self.representation.forward(waveforms))


def baseline_generators(
    autoencoder,
    basis,
    training_latents: np.ndarray,
    count: int,
    *,
    noise_strength: float,
    rng: np.random.Generator,
    noise_seed: int,
) -> dict[str, np.ndarray]:
    """The two trivial generators every generative stage is judged against, as normalised spectrograms.

    - ``ae_noise``: ``count`` training latents [shape=(clips, size)] drawn with ``rng``, plus Gaussian
      noise of ``noise_strength`` times each number's training spread (seeded by ``noise_seed``),
      decoded by the autoencoder (zeros after the first ``size`` numbers);
    - ``pca_gaussian``: Gaussian samples of the first ``size`` PCA coefficients with their training
      variances, back through the basis.

    Returns spectrograms [shape=(count, bins, frames)] by name. ``rng`` is drawn from in this order
    (the clips, then the coefficients), so a caller's later draws are the same as before.
    """
    training_latents = np.asarray(training_latents, dtype=np.float32)
    size = training_latents.shape[1]
    spread = latent.latent_spread(training_latents)
    picked = training_latents[rng.choice(len(training_latents), count)]
    noisy = latent.add_noise(picked, spread, noise_strength, rng=noise_seed)
    coefficients = rng.standard_normal((count, size)) * np.sqrt(basis.explained_variance[:size])
    return {
        "ae_noise": autoencoder.decode_spectrograms(latent.pad_latents(noisy, autoencoder.latent_dim)),
        "pca_gaussian": basis.inverse(coefficients, keep=size),
    }


def judge_classes(dataset) -> tuple[list[int], list[str]]:
    """The stage-3 judge's classes on a dataset: (pitch classes, family classes).

    On the notes: the MIDI pitches and every instrument family. On a dataset without note
    labels: the 12 pitch classes (each clip's dominant one, measured from the audio) and the
    dataset's labels in the family head's place.
    """
    if dataset.has_note_labels:
        return sorted(dataset.config.pitches), list(FAMILIES)
    return list(range(12)), list(dataset.labels)


def judge_targets(
    dataset: ClipDataset,
    waveforms: np.ndarray,
    rows: Sequence[dict],
    pitches: Sequence[int],
    families: Sequence[str],
    *,
    tuning: float | None = None,
) -> dict[str, np.ndarray]:
    """What the stage-3 judge learns of clips [shape=(n, samples)] and their manifest ``rows``: {"pitch": index
    among ``pitches``, "family": index among ``families``} [shape=(n,)] each (see :func:`judge_classes`).

    On the notes the pitch is the row's MIDI pitch; on a dataset without note labels it is the clip's
    dominant pitch class, measured from the audio with ``tuning`` (None: estimated from these clips
    together, :func:`lib.data.analysis.dominant_pitch_class`), and the row's label stands in for the family.
    """
    if dataset.has_note_labels:
        pitch = class_indices([row["pitch"] for row in rows], pitches)
    else:
        pitch = analysis.dominant_pitch_class(waveforms, sample_rate=dataset.config.sample_rate, tuning=tuning)
    return {"pitch": np.asarray(pitch, np.int64), "family": class_indices([row["label"] for row in rows], families)}


def judge_training_data(
    dataset: ClipDataset,
    waveforms: np.ndarray,
    spectrograms: np.ndarray,
    targets: dict[str, np.ndarray],
    *,
    representation: SpectrogramRepresentation,
    pitches: Sequence[int],
    families: Sequence[str],
) -> tuple[np.ndarray, dict[str, np.ndarray]] | StreamedData:
    """What the stage-3 judge trains on: the held training clips' ``spectrograms`` [shape=(n, bins, frames)]
    and ``targets`` (:func:`judge_targets`) when the dataset holds its training split whole; when it holds a
    sample (a large collection), every training clip, read from the shards a block at a time with its
    spectrogram and targets made as training reaches it (:class:`lib.data.stream.ClipRows`), so the judge
    learns from the whole collection while memory holds a few blocks. Its epochs then shrink with the
    collection (:meth:`lib.models.training.TrainingConfig.epochs_for`). A measured pitch class is then
    measured in every block with the tuning of the held clips' ``waveforms`` [shape=(n, samples)], so a
    clip's label does not depend on the block it is read in."""
    if "train" not in dataset.sampled_splits():
        return spectrograms, targets
    values, shape = int(np.prod(representation.shape)), tuple(representation.shape)
    tuning = (
        None if dataset.has_note_labels else analysis.chroma_tuning(waveforms, sample_rate=dataset.config.sample_rate)
    )

    def columns(waveforms: np.ndarray, rows: list[dict]) -> np.ndarray:  # [shape=(n, 2)]: pitch, family
        made = judge_targets(dataset, waveforms, rows, pitches, families, tuning=tuning)
        return np.stack([made["pitch"], made["family"]], axis=1)

    def batch_map(batch):  # rows [shape=(batch, values + 2)] -> (spectrograms, {"pitch", "family"})
        return keras.ops.reshape(batch[:, :values], (-1, *shape)), {
            "pitch": keras.ops.cast(batch[:, values], "int32"),
            "family": keras.ops.cast(batch[:, values + 1], "int32"),
        }

    source = stream.ClipRows(dataset, "train", representation, columns)
    return StreamedData(source, targets=None, batch_map=batch_map, block_rows=JUDGE_BLOCK_CLIPS)


def nearest_distances(
    features: np.ndarray, reference: np.ndarray, *, chunk: int = 1024, block_elements: int = 2**22
) -> np.ndarray:
    """Euclidean distance from each row of ``features`` [shape=(n, d)] to its nearest row of ``reference``.

    Rows of ``features`` go ``chunk`` at a time, fewer when the reference is long, so that a block of
    distances holds at most ``block_elements`` numbers (32 MB) whatever the reference's size.
    """
    features, reference = np.asarray(features, np.float64), np.asarray(reference, np.float64)
    reference_norms = np.sum(reference**2, axis=1)
    chunk = max(1, min(chunk, block_elements // max(len(reference), 1)))
    distances = []
    for start in range(0, len(features), chunk):
        block = features[start : start + chunk]
        squared = np.sum(block**2, axis=1)[:, None] + reference_norms[None, :] - 2 * block @ reference.T
        distances.append(np.sqrt(np.maximum(squared.min(axis=1), 0.0)))
    return np.concatenate(distances) if distances else np.zeros(0)


def judge_in_passes(
    classifier: keras.Model,
    representation: SpectrogramRepresentation,
    dataset: ClipDataset,
    split: str,
    *,
    chunk_clips: int = 1024,
) -> judge.Judgement:
    """The judge's verdict on every clip of ``split`` (the whole split, not a held sample), ``chunk_clips``
    at a time: memory holds one chunk's spectrograms and every clip's features (``width`` numbers each)."""
    indices = dataset.indices(split)
    parts = [
        judge.judge(classifier, representation.forward(dataset.clips(indices[start : start + chunk_clips])))
        for start in range(0, len(indices), chunk_clips)
    ]
    if not parts:
        raise ValueError(f"split {split!r} has no clips to judge")
    return judge.Judgement(
        *(np.concatenate([getattr(part, field) for part in parts]) for field in judge.Judgement.__dataclass_fields__)
    )


def score_generated(reference: GenerationReference, verdict: judge.Judgement, *, against: str = "test") -> dict:
    """Figures of one set of judged clips against the real ones.

    ``frechet_distance`` and ``ndb_over_k`` compare with the real ``against`` split's features
    (bins come from the training features); ``family_shares`` is the share of clips the judge
    puts in each family; ``nearest_train_distance`` is the median distance in feature space from
    each clip to its nearest real training clip.
    """
    target = {"test": reference.test_features, "train": reference.train_features}[against]
    family_counts = np.bincount(verdict.family, minlength=len(reference.families)) / max(len(verdict.family), 1)
    return {
        "frechet_distance": judge.frechet_distance(verdict.features, target),
        "ndb_over_k": reference.bins.compare(verdict.features).ndb_over_k,
        "family_shares": {family: float(share) for family, share in zip(reference.families, family_counts)},
        "nearest_train_distance": float(np.median(nearest_distances(verdict.features, reference.train_features))),
        "pitch_entropy": judge.entropy_bits(verdict.pitch, len(reference.pitches)),
        "family_entropy": judge.entropy_bits(verdict.family, len(reference.families)),
    }


def family_shares_within(shares: dict[str, float], real_shares: dict[str, float], *, factor: float = 2.0) -> bool:
    """True when every family's share lies within ``factor`` of its real share (both ways)."""
    return all(real / factor <= shares.get(family, 0.0) <= real * factor for family, real in real_shares.items())


def cents_from_pitch(f0_hz: np.ndarray, midi_pitch: np.ndarray) -> np.ndarray:
    """Signed distance in cents of frequencies [shape=(n,)] from MIDI pitches [shape=(n,)] (NaN stays NaN)."""
    return 1200 * np.log2(np.asarray(f0_hz, np.float64) / librosa.midi_to_hz(np.asarray(midi_pitch, np.float64)))


def pitch_agreement(f0_hz: np.ndarray, midi_pitch: np.ndarray, *, tolerance_cents: float = 50.0) -> dict:
    """How many clips sound at the given pitches.

    Returns ``within`` (share of *voiced* clips within ``tolerance_cents``), ``voiced`` (share of
    clips with an f0 at all) and ``median_abs_cents`` over the voiced ones.
    """
    cents = cents_from_pitch(f0_hz, midi_pitch)
    voiced = np.isfinite(cents)
    if not voiced.any():
        return {"within": 0.0, "voiced": 0.0, "median_abs_cents": float("nan")}
    return {
        "within": float(np.mean(np.abs(cents[voiced]) <= tolerance_cents)),
        "voiced": float(np.mean(voiced)),
        "median_abs_cents": float(np.median(np.abs(cents[voiced]))),
    }


def measure_pitch(waveforms: np.ndarray, midi_pitch: np.ndarray, *, sample_rate: int, tolerance_cents: float = 50.0):
    """:func:`pitch_agreement` of waveforms [shape=(n, samples)] measured with librosa.pyin."""
    f0 = analysis.median_f0_hz(waveforms, sample_rate=sample_rate, resolution=PITCH_RESOLUTION)
    return pitch_agreement(f0, midi_pitch, tolerance_cents=tolerance_cents)


@dataclass
class AudioDescription:
    """What can be measured of a set of clips: f0, loudness, and the judge's classes."""

    f0_hz: np.ndarray  # median pyin f0 per clip, NaN when unvoiced [shape=(n,)]
    rms_db: np.ndarray  # level in dBFS [shape=(n,)]
    pitch_class: np.ndarray  # the judge's pitch class index [shape=(n,)]
    family: np.ndarray  # the judge's family index [shape=(n,)]


def describe_audio(reference: GenerationReference, waveforms: np.ndarray, *, sample_rate: int) -> AudioDescription:
    """Measure waveforms [shape=(n, clip_samples)]: pyin f0, RMS and the judge's verdict."""
    verdict = reference.judge_audio(waveforms)
    return AudioDescription(
        analysis.median_f0_hz(waveforms, sample_rate=sample_rate, resolution=PITCH_RESOLUTION),
        analysis.rms_db(waveforms),
        verdict.pitch,
        verdict.family,
    )


def edit_effects(
    before: AudioDescription,
    after: AudioDescription,
    *,
    requested_pitch: np.ndarray,
    requested_family: np.ndarray,
    tolerance_cents: float = 50.0,
    loudness_tolerance_db: float = 3.0,
) -> dict:
    """What an edit did to each clip, measured on the decoded audio before and after it.

    ``requested_pitch`` (MIDI) and ``requested_family`` (judge family indices), one per clip, say
    where the edit should land; for an edit that should leave pitch or family alone, pass the
    clip's own. Returns the share of voiced clips within ``tolerance_cents`` of the requested
    pitch (``within_50_cents`` for the default), the median f0 shift in semitones, the share the
    judge puts in the requested family, and the loudness change (median, and the share within
    ``loudness_tolerance_db``).
    """
    agreement = pitch_agreement(after.f0_hz, requested_pitch, tolerance_cents=tolerance_cents)
    with np.errstate(all="ignore"):
        shift = analysis.semitones(after.f0_hz / before.f0_hz)
    loudness = after.rms_db - before.rms_db
    return {
        f"within_{tolerance_cents:g}_cents": agreement["within"],
        "voiced": agreement["voiced"],
        "pitch_shift_semitones_median": float(np.nanmedian(shift)) if np.isfinite(shift).any() else float("nan"),
        "family_share": float(np.mean(after.family == np.asarray(requested_family))),
        "rms_change_db": float(np.median(loudness)),
        f"rms_within_{loudness_tolerance_db:g}_db_share": float(np.mean(np.abs(loudness) <= loudness_tolerance_db)),
    }


def choose_by_frechet(
    candidates: Mapping[object, Callable[[int], np.ndarray]],
    reference: GenerationReference,
    *,
    count: int,
    memorisation_distance: float,
) -> tuple[object, dict[object, dict]]:
    """Pick the generator whose clips lie closest (Fréchet distance) to ``reference``'s real clips.

    ``candidates`` maps a name to a function that returns ``count`` waveforms. ``reference``
    should hold a split the final figures do not use (the validation clips), so the choice does
    not peek at the test set. A candidate whose median nearest-training-clip distance falls
    below ``memorisation_distance`` (what real unseen clips score) is copying, and is not chosen;
    when every candidate does, the one that copies least is kept, with a warning.

    Returns (the chosen name, {name: score_generated figures}).
    """
    scores = {name: score_generated(reference, reference.judge_audio(make(count))) for name, make in candidates.items()}
    allowed = [name for name, score in scores.items() if score["nearest_train_distance"] >= memorisation_distance]
    if not allowed:
        logger.warning(  # a log line, not a Python warning: notebooks show it as output, not stderr
            "every candidate lies closer to the training clips than real unseen clips (%.3f); "
            "keeping the one that copies least",
            memorisation_distance,
        )
        return max(scores, key=lambda name: scores[name]["nearest_train_distance"]), scores
    return min(allowed, key=lambda name: scores[name]["frechet_distance"]), scores


SAMPLE_BITS = 16  # bits per stored number: PCM samples and (float16) latents alike


def bitrate_kbps(numbers_per_clip: float, *, sample_rate: int, clip_samples: int) -> float:
    """Kilobits per second of audio when each clip is stored as ``numbers_per_clip`` 16-bit numbers."""
    return numbers_per_clip * SAMPLE_BITS * sample_rate / clip_samples / 1000


def result_row(
    method: str,
    latent_dim: int | None,
    kbps: float,
    reference: np.ndarray,
    estimate: np.ndarray,
    *,
    sample_rate: int,
) -> dict:
    """One row of a compression table: method, size, compression against 16-bit PCM, and every distance."""
    return {
        "method": method,
        "latent_dim": latent_dim,
        "compression_ratio": SAMPLE_BITS * sample_rate / 1000 / kbps,
        "bitrate_kbps": kbps,
        **metrics.summarise(reference, estimate, sample_rate=sample_rate),
    }


def rate_distortion_sweep(
    codec,
    basis: SpectralBasis,
    waveforms: np.ndarray,
    spectrograms: np.ndarray,
    sizes: Sequence[int],
    *,
    refine_steps: int = 0,
    refined_pca: bool = False,
) -> tuple[list[dict], dict[tuple[str, int], np.ndarray]]:
    """Autoencoder (first ``size`` latent numbers) and PCA (``size`` components) at every size.

    ``codec`` is a :class:`lib.models.codec.LatentCodec`; ``waveforms`` [shape=(n, clip_samples)] and their
    ``spectrograms`` are the clips to compress. A codec with a linear path codes each clip with the
    residual share that serves it best (``LatentCodec.encode_choosing``), and its bitrate counts the
    ``CHOICE_BITS`` that name the share; ``refine_steps`` > 0 refines each clip's latent on its log-mel
    distance (:mod:`lib.models.refine`). Returns (rows as :func:`result_row` makes them, with, on the
    autoencoder's: ``pca_coded_share``, the share of clips coded as PCA; ``refined_share``, of clips
    whose refined latent was kept; ``chosen_magnitude_db`` and ``coded_magnitude_db``, the log-mel
    distance on magnitudes before and after the refinement; and the decoded audio keyed by (method, size)).
    ``refined_pca`` (with ``refine_steps``) adds "pca_refined" rows: PCA's coefficients given the same
    refinement (``LatentCodec.refine_pca``), the baseline for what the search alone gives.
    """
    config = codec.representation.config
    rows, audio = [], {}
    for size in sizes:
        kbps = {"pca": bitrate_kbps(size, sample_rate=config.sample_rate, clip_samples=config.clip_samples)}
        kbps["autoencoder"], extra = kbps["pca"], {}
        if codec.has_linear_path:
            coded = codec.code_clips(spectrograms, size=size, refine_steps=refine_steps)
            latents, choices = coded.latents, coded.choices
            numbers = size + CHOICE_BITS / SAMPLE_BITS
            kbps["autoencoder"] = bitrate_kbps(
                numbers, sample_rate=config.sample_rate, clip_samples=config.clip_samples
            )
            extra = {
                "pca_coded_share": float(np.mean(choices == 0)) if len(choices) else float("nan"),
                "refined_share": coded.refined_share,
                "chosen_magnitude_db": float(np.mean(coded.chosen_db)),
                "coded_magnitude_db": float(np.mean(coded.coded_db)),
            }
        else:
            latents, choices = codec.encode_spectrograms(spectrograms, size=size), None
        audio["autoencoder", size] = codec.decode_audio(latents, size=size, choices=choices)
        audio["pca", size] = codec.representation.inverse(basis.reconstruct(spectrograms, size))
        methods = ["autoencoder", "pca"]
        if refine_steps > 0 and codec.has_linear_path and refined_pca:
            kbps["pca_refined"] = kbps["pca"]
            pca_latents = codec.refine_pca(spectrograms, size=size, refine_steps=refine_steps)
            audio["pca_refined", size] = codec.decode_audio(pca_latents, size=size, choices=np.zeros(len(pca_latents)))
            methods.append("pca_refined")
        for method in methods:
            row = result_row(method, size, kbps[method], waveforms, audio[method, size], sample_rate=config.sample_rate)
            rows.append(row | extra if method == "autoencoder" else row)
    return rows, audio


def with_pca_same_size(rows):
    """Add ``pca_same_size_db`` to a results table (pandas): PCA's log-mel distance at each row's latent size.

    Autoencoder and PCA rows get the PCA figure of their size; rows without a size (codecs,
    oracle) get NaN. An empty table gains the empty column.
    """
    rows = rows.copy()
    pca = rows[rows["method"] == "pca"].set_index("latent_dim")["log_mel_distance_db"]
    sizes = rows["latent_dim"]
    rows["pca_same_size_db"] = [
        float(pca[size]) if size is not None and not np.isnan(size) and size in pca.index else np.nan for size in sizes
    ]
    return rows


def convergence(validation_losses: Sequence[float]) -> dict:
    """Whether a validation curve had flattened when training stopped.

    Compares the best loss before the last ``CONVERGENCE_WINDOW`` of the epochs with the best
    over all of them: a relative gain under ``CONVERGENCE_TOLERANCE`` in that last stretch
    counts as converged. Returns the best loss, the window length in epochs, the gain, the verdict.
    """
    losses = np.asarray(validation_losses, dtype=np.float64)
    if len(losses) < 2:
        return {
            "best": float(losses.min()) if len(losses) else None,
            "window_epochs": 0,
            "last_window_gain": None,
            "converged": False,
        }
    window = max(1, int(round(CONVERGENCE_WINDOW * len(losses))))
    before, best = losses[:-window].min(), losses.min()
    gain = float((before - best) / before)
    return {
        "best": float(best),
        "window_epochs": window,
        "last_window_gain": gain,
        "converged": gain < CONVERGENCE_TOLERANCE,
    }


def attribute_effect(
    codec, latents: np.ndarray, edit: np.ndarray | latent.LatentMap, *, sample_rate: int
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Decode latents [shape=(n, latent_dim)] before and after an edit (an attribute vector
    [shape=(latent_dim,)] added, or a :class:`lib.models.latent.LatentMap` applied), and measure.

    Returns (figures, audio before, audio after): the median f0 shift in semitones (pyin), the
    share of clips shifted within one semitone of an octave, and the mean changes of RMS (dB)
    and spectral centroid (Hz).
    """
    before = codec.decode_audio(latents)
    after = codec.decode_audio(latent.apply_edit(latents, edit))
    shift = analysis.semitones(
        analysis.median_f0_hz(after, sample_rate=sample_rate) / analysis.median_f0_hz(before, sample_rate=sample_rate)
    )
    figures = {
        "clips": len(latents),
        "f0_shift_semitones_median": float(np.nanmedian(shift)),
        "f0_shift_within_1_semitone_of_12_share": float(np.nanmean(np.abs(shift - 12) <= 1)),
        "rms_change_db_mean": float(np.mean(analysis.rms_db(after) - analysis.rms_db(before))),
        "centroid_change_hz_mean": float(
            np.mean(
                analysis.spectral_centroid_hz(after, sample_rate=sample_rate)
                - analysis.spectral_centroid_hz(before, sample_rate=sample_rate)
            )
        ),
    }
    return figures, before, after


def edits_against_targets(
    codec,
    source_latents: np.ndarray,
    source_waveforms: np.ndarray,
    target_waveforms: np.ndarray,
    edits: dict[str, np.ndarray | latent.LatentMap],
    *,
    sample_rate: int,
) -> dict:
    """How near each edit of the sources lands to the real targets, e.g. notes and the same notes an octave up.

    Latents [shape=(n, latent_dim)] and waveforms [each shape=(n, samples)] are pairs. Returns the mean
    log-mel distance (dB) to the targets of the sources themselves (``source_clip_db``: no edit), of the
    targets' own reconstructions (``target_reconstruction_db``: the best the codec allows) and of each
    edit decoded (``<name>_db``), with the number of ``pairs``.
    """
    if not len(source_latents) or not len(source_latents) == len(source_waveforms) == len(target_waveforms):
        raise ValueError(
            f"need as many targets as sources, at least one: {len(source_latents)} latents, "
            f"{len(source_waveforms)} sources, {len(target_waveforms)} targets"
        )

    def distance(clips: np.ndarray) -> float:
        return float(np.mean(metrics.log_mel_distance_db(target_waveforms, clips, sample_rate=sample_rate)))

    figures = {
        "pairs": len(source_latents),
        "source_clip_db": distance(source_waveforms),
        "target_reconstruction_db": distance(codec.decode_audio(codec.encode_audio(target_waveforms))),
    }
    for name, edit in edits.items():
        figures[f"{name}_db"] = distance(codec.decode_audio(latent.apply_edit(source_latents, edit)))
    return figures


def class_indices(names: Sequence[str] | np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Each name's position among a judge's ``classes`` [shape=(n,)], e.g. requested families as judge labels."""
    return np.array([list(classes).index(name) for name in names])
