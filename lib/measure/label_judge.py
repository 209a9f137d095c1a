"""A judge of labels for any labelled dataset: what a clip's music holds, not its spectrogram's details.

A genre, an artist or an album lives in harmony, rhythm, texture and range more than in any one
spectrogram bin; a classifier on spectrograms (stage 3's) learns the training pieces' keys and
voicings and names the label of about half the unseen genre clips. This judge listens through
**clip descriptors** (:func:`clip_descriptors`: key-independent chroma statistics and interval
profile, how fast the harmony changes, onset statistics and the rhythm's autocorrelation, how
many pitch classes sound at once, the range and movement of a log-mel spectrum) and a small
Keras network on them (:func:`build_label_judge`), with a ``features`` layer where generated
clips are compared with real ones.

It judges *decoded* audio, which is blurrier than real clips; trained on real clips alone it
put fewer than half of the autoencoder's reconstructions of held-out genre phrases in their own
genre (notebook 05). So :func:`train_on_splits` trains it on the real training clips **and
their reconstructions**, each with its clip's label: blur then says nothing about the label.
Its accuracy is reported per clip and per file (:func:`file_vote_accuracy`: the label most of
a file's clips get), on held-out files.

A large collection holds its training split as a sample; :func:`unheld_descriptors` describes the
rest in a pass over the shards (194 numbers a one-second clip, 0.8 KB), so the judge hears real
training clips beyond the sample: all of them up to ``UNHELD_PER_HELD`` times the held count, a seeded
sample of them past it (describing a clip takes about 5 ms on one core here: the 140,732 clips a
50-hour folder leaves out would take 12 minutes, 12,000 take one). Reconstructions stay those of the
held sample (one Griffin-Lim inversion per clip is too slow for a pass over every clip), repeated so
that they keep about half of the judge's examples.

Imports: the models layer (its training loop and the judge's feature layer name),
:mod:`lib.core.parallel` (threads), :mod:`lib.data.clips` (reading a split's clips) and
:mod:`lib.measure.evaluation` (class positions); nothing above.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import keras
import librosa
import numpy as np

from lib.core import parallel
from lib.data.clips import ClipDataset
from lib.measure.evaluation import class_indices
from lib.models.judge import FEATURES_LAYER
from lib.models.training import TrainingConfig, TrainingResult, fit_or_load

FEATURE_HOP = 512  # samples between frames of every descriptor
# Samples whose spectrograms are computed together: 32 one-second clips or 8 four-second phrases. Measured on
# the genre clips against one clip at a time: 1.7-2x faster at 1 s, 1.06x at 4 s; 128 phrases at once: 2.6x slower.
# Chunks go to threads on every core (their FFTs release the GIL): 256 genre phrases in 1.9 s against 2.9 s.
CHUNK_SAMPLES = 512_000
RHYTHM_LAGS = 32  # onset autocorrelation lags at most: 1 s at 16 kHz (a shorter clip has fewer frames, fewer lags)
# Every descriptor but the rhythm's lags: sorted chroma mean and spread (12 + 12), onset statistics (4), 40-band
# log-mel mean, spread and movement (3 x 40), texture (4), chroma intervals (6) and chroma change (5).
FIXED_DESCRIPTORS = 12 + 12 + 4 + 3 * 40 + 4 + 6 + 5
# Unheld training clips described for the judge, at most, per held one: a whole split's rest up to this, a
# seeded sample past it (a 50-hour folder's 3,000 held one-second clips: 12,000 of the 140,732 left out).
UNHELD_PER_HELD = 4


def descriptor_size(samples: int) -> int:
    """Numbers per clip of :func:`clip_descriptors` for clips of ``samples`` samples: 194 for one
    second at 16 kHz, 195 for a longer clip (the rhythm's autocorrelation has one lag per frame after
    the first, up to ``RHYTHM_LAGS``)."""
    frames = 1 + int(samples) // FEATURE_HOP
    return FIXED_DESCRIPTORS + min(RHYTHM_LAGS, max(0, frames - 1))


def clip_descriptors(waveforms: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """What the label judge listens to, per clip [shape=(n, descriptor_size(samples))]: harmony, rhythm, texture, range.

    Key-independent harmony (12 sorted chroma values per frame, their mean and spread; the interval
    profile of the clip's chroma at 1-6 semitones; how alike the chroma is at lags of 1, 2, 4, 8
    and 16 frames), rhythm (onset strength mean, spread, share of frames one and two spreads above
    the mean, and its autocorrelation up to 32 frames, ~1 s at 16 kHz), texture (pitch classes
    sounding at once, spectral flatness) and range (mean, spread and movement of a 40-band log-mel
    spectrum). Frames of 2,048 samples every 512; waveforms [shape=(n, samples)] at ``sample_rate``.
    """
    waveforms = np.asarray(waveforms, np.float32)
    if waveforms.ndim != 2:
        raise ValueError(f"need waveforms of shape (clips, samples), got {waveforms.shape}")
    if not len(waveforms):
        return np.zeros((0, descriptor_size(waveforms.shape[1])), np.float32)
    chunk = max(1, CHUNK_SAMPLES // waveforms.shape[1])  # chunks on every core, in threads: the same numbers
    return np.concatenate(parallel.map_chunks(lambda part: _descriptors(part, sample_rate), waveforms, chunk=chunk))


def _descriptors(clips: np.ndarray, sample_rate: int) -> np.ndarray:
    # One STFT serves every feature. Two steps go clip by clip, as librosa would on one clip:
    # the chroma (its tuning is estimated per clip) and the decibel floor (80 dB under each clip's peak).
    power = np.abs(librosa.stft(clips, n_fft=2048, hop_length=FEATURE_HOP)) ** 2  # (n, 1025, frames)
    chroma = np.stack([librosa.feature.chroma_stft(S=one, sr=sample_rate, hop_length=FEATURE_HOP) for one in power])
    onset_mel = librosa.feature.melspectrogram(S=power, sr=sample_rate, hop_length=FEATURE_HOP)
    onset_db = 10.0 * np.log10(np.maximum(onset_mel, 1e-10))
    onset_db = np.maximum(onset_db, onset_db.max(axis=(1, 2), keepdims=True) - 80.0)
    onset = librosa.onset.onset_strength(S=onset_db, sr=sample_rate, hop_length=FEATURE_HOP)  # (n, frames)
    mel = librosa.feature.melspectrogram(S=power, sr=sample_rate, n_mels=40, hop_length=FEATURE_HOP)
    log_mel = np.log(mel + 1e-6)
    flatness = librosa.feature.spectral_flatness(S=np.sqrt(power), hop_length=FEATURE_HOP)[:, 0]
    rhythm = librosa.autocorrelate(onset - onset.mean(axis=1, keepdims=True), max_size=RHYTHM_LAGS + 1, axis=-1)
    rhythm = rhythm[:, 1:] / (rhythm[:, :1] + 1e-9)
    ranked = np.sort(chroma, axis=1)  # per frame, loudest pitch class last: no key
    unit = chroma / (np.linalg.norm(chroma, axis=1, keepdims=True) + 1e-9)
    profile = chroma.mean(axis=2) / (chroma.mean(axis=2).sum(axis=1, keepdims=True) + 1e-9)
    intervals = [np.sum(profile * np.roll(profile, step, axis=1), axis=1) for step in range(1, 7)]
    change = [np.mean(np.sum(unit[:, :, lag:] * unit[:, :, :-lag], axis=1), axis=1) for lag in (1, 2, 4, 8, 16)]
    sounding = (chroma > 0.5).sum(axis=1)
    mean, spread = onset.mean(axis=1), onset.std(axis=1)
    onset_statistics = [
        mean,
        spread,
        np.mean(onset > (mean + spread)[:, None], axis=1),
        np.mean(onset > (mean + 2 * spread)[:, None], axis=1),
    ]
    texture = [sounding.mean(axis=1), sounding.std(axis=1), flatness.mean(axis=1), np.log(flatness + 1e-9).std(axis=1)]
    return np.concatenate(
        [
            ranked.mean(axis=2),
            ranked.std(axis=2),
            np.stack(onset_statistics, axis=1),
            rhythm,
            log_mel.mean(axis=2),
            log_mel.std(axis=2),
            np.diff(log_mel, axis=2).std(axis=2),
            np.stack(texture, axis=1),
            np.stack(intervals, axis=1),
            np.stack(change, axis=1),
        ],
        axis=1,
    ).astype(np.float32)


def build_label_judge(descriptors: np.ndarray, label_count: int, *, width: int = 128, seed: int = 0) -> keras.Model:
    """A classifier of clip descriptors [shape=(batch, d)] into labels, with a ``features`` layer.

    The inputs are standardised with the training descriptors' mean and spread (a fixed layer);
    dropout on the inputs and the features keeps it from memorising the training files.
    """
    from keras import layers

    descriptors = np.asarray(descriptors, np.float32)
    inputs = keras.Input(shape=(descriptors.shape[1],), name="descriptors")
    scaled = layers.Normalization(
        mean=descriptors.mean(axis=0), variance=descriptors.var(axis=0) + 1e-6, name="standardise"
    )(inputs)
    hidden = layers.Dropout(0.2, seed=seed, name="input_dropout")(scaled)
    features = layers.Dense(width, activation="relu", name=FEATURES_LAYER)(hidden)
    hidden = layers.Dropout(0.5, seed=seed, name="dropout")(features)
    label = layers.Dense(label_count, activation="softmax", name="label")(hidden)
    return keras.Model(inputs, label, name="label_judge")


@dataclass
class LabelJudge:
    """A trained label judge: its network, the labels its outputs stand for, the audio's sample rate."""

    model: keras.Model
    labels: tuple[str, ...]
    sample_rate: int

    @cached_property
    def _features_and_label(self) -> keras.Model:
        # Built once per judge: a new functional model per call retraces predict every time.
        return keras.Model(self.model.inputs, [self.model.get_layer(FEATURES_LAYER).output, self.model.output])

    def judge_descriptors(self, descriptors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Label index [shape=(n,)] and features [shape=(n, width)] for descriptors [shape=(n, d)]."""
        features, probabilities = self._features_and_label.predict(
            np.asarray(descriptors, np.float32), batch_size=512, verbose=0
        )
        return np.argmax(probabilities, axis=1), np.asarray(features, np.float32)

    def judge(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Label index [shape=(n,)] and features [shape=(n, width)] for waveforms [shape=(n, samples)]."""
        return self.judge_descriptors(clip_descriptors(waveforms, sample_rate=self.sample_rate))

    def names(self, waveforms: np.ndarray) -> np.ndarray:
        """The label the judge hears in each waveform [shape=(n,)], as strings."""
        return np.array(self.labels)[self.judge(waveforms)[0]]

    def shares(self, waveforms: np.ndarray) -> dict[str, float]:
        """The share of waveforms [shape=(n, samples)] the judge puts in each label."""
        counts = np.bincount(self.judge(waveforms)[0], minlength=len(self.labels)) / max(len(waveforms), 1)
        return {label: float(share) for label, share in zip(self.labels, counts)}


@dataclass
class HeardSplits:
    """A label judge trained on a dataset's splits, with what it was trained and measured on."""

    judge: LabelJudge
    descriptors: dict[str, np.ndarray]  # of the real clips, per split [shape=(n, descriptor_size)]
    reconstructed: dict[str, np.ndarray]  # of their reconstructions, per split
    result: TrainingResult
    held_out: dict  # :func:`accuracy_figures` on the test split
    unheld_training_clips: int = 0  # real training clips heard beyond the held ones (a sampled split's rest)

    def record(self, **more: object) -> dict:
        """The judge's figures for a metrics record: held-out accuracies, training, and ``more``."""
        return {
            **self.held_out,
            "trained_on": "real training clips and their autoencoder reconstructions",
            "epochs": len(self.result.history.get("loss", [])),
            "seconds": self.result.seconds,
            **({"unheld_training_clips": self.unheld_training_clips} if self.unheld_training_clips else {}),
            **more,
        }


def unheld_descriptors(
    dataset: ClipDataset,
    split: str,
    label_names: Sequence[str],
    *,
    per_held: float | None = UNHELD_PER_HELD,
    seed: int = 0,
    block_clips: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors [shape=(n, descriptor_size(clip samples))] and label indices into ``label_names``
    [shape=(n,)] of the clips of ``split`` that ``dataset`` does not hold in memory (the rest of a
    sampled split; none when the split is whole), read from the shards ``block_clips`` at a time.
    Clips of a label not in ``label_names`` are left out, as the held clips of such labels are.
    At most ``per_held`` times the held clips' count are described: past it, a sample drawn with
    ``seed`` (uniform, so every label keeps its share on average), in the split's order; None: every one."""
    held = set(dataset.split_indices(split).tolist())
    position = {str(name): index for index, name in enumerate(label_names)}
    rest = np.array(
        [i for i in dataset.indices(split) if i not in held and str(dataset.manifest[i]["label"]) in position],
        dtype=np.int64,
    )
    if per_held is not None and len(rest) > per_held * len(held):
        keep = np.random.default_rng(seed).choice(len(rest), int(per_held * len(held)), replace=False)
        rest = rest[np.sort(keep)]
    sample_rate = dataset.config.sample_rate
    blocks = [
        clip_descriptors(dataset.clips(rest[start : start + block_clips]), sample_rate=sample_rate)
        for start in range(0, len(rest), block_clips)
    ]
    empty = np.zeros((0, descriptor_size(dataset.config.clip_samples)), np.float32)
    descriptors = np.concatenate(blocks) if blocks else empty
    return descriptors, np.array([position[str(dataset.manifest[i]["label"])] for i in rest], dtype=np.int64)


def one_label_reason(labels: Sequence[str]) -> str | None:
    """Why the label-level parts (the label judge, its verdicts on requests, transfer between labels)
    cannot run on a dataset whose clips carry ``labels``; None when they carry two or more."""
    names = sorted({str(label) for label in labels})
    if len(names) >= 2:
        return None
    return (
        f"one label ({', '.join(names) or 'none'}): nothing to tell apart or move between; a folder sorted into "
        "sub-folders (genres, artists, albums) gets the label judge, label requests and transfer between labels"
    )


def train_on_splits(
    waveforms: dict[str, np.ndarray],
    labels: dict[str, Sequence[str]],
    label_names: Sequence[str],
    *,
    reconstruct: Callable[[str], np.ndarray],
    test_files: Sequence[str],
    sample_rate: int,
    run_folder: str | Path,
    settings: dict,
    epochs: int = 300,
    width: int = 128,
    seed: int = 0,
    retrain: bool = False,
    more_training: tuple[np.ndarray, np.ndarray] | None = None,
) -> HeardSplits:
    """Describe every split's clips and their reconstructions, train (or reuse) the judge, measure it on "test".

    ``waveforms`` and ``labels`` map "train", "valid" and "test" (at least) to clips [shape=(n, samples)]
    and their labels (each one of ``label_names``); ``reconstruct(split)`` gives the autoencoder's
    reconstructions of that split's clips, in the same order; ``test_files`` names each test clip's file.
    The judge learns from the training clips and their reconstructions and stops on the validation
    clips'; ``settings`` (the data's and the autoencoder's fingerprints) and ``width`` key the cached
    model in ``run_folder``. ``more_training``: descriptors [shape=(m, descriptor_size)] and label indices
    [shape=(m,)] of real training clips not in ``waveforms`` (:func:`unheld_descriptors`); the
    reconstructions are then repeated to about as many examples as the real clips.
    """
    if one_label_reason(label_names):
        raise ValueError(f"a label judge needs at least two labels, got {list(label_names)}")
    descriptors = {split: clip_descriptors(clips, sample_rate=sample_rate) for split, clips in waveforms.items()}
    reconstructed = {split: clip_descriptors(reconstruct(split), sample_rate=sample_rate) for split in waveforms}
    indices = {split: class_indices(list(labels[split]), label_names) for split in waveforms}
    data = {  # real clips and their reconstructions, each with its clip's label
        split: (np.concatenate([descriptors[split], reconstructed[split]]), np.tile(indices[split], 2))
        for split in ("train", "valid")
    }
    unheld = 0 if more_training is None else len(more_training[0])
    if unheld:
        data["train"] = _with_every_clip(descriptors["train"], reconstructed["train"], indices["train"], more_training)
    result = fit_or_load(
        lambda: build_label_judge(data["train"][0], len(label_names), width=width, seed=seed),
        data["train"],
        data["valid"],
        run_folder=run_folder,
        config=TrainingConfig(epochs=epochs, batch_size=64, learning_rate=1e-3, patience=30, seed=seed),
        settings={"width": width, **settings, **({"unheld_training_clips": unheld} if unheld else {})},
        loss="sparse_categorical_crossentropy",
        retrain=retrain,
    )
    judge = LabelJudge(result.model, tuple(label_names), sample_rate)
    held_out = accuracy_figures(judge, descriptors["test"], reconstructed["test"], indices["test"], test_files)
    return HeardSplits(judge, descriptors, reconstructed, result, held_out, unheld)


def _with_every_clip(
    held: np.ndarray, reconstructed: np.ndarray, indices: np.ndarray, more: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The judge's training examples when the held clips [shape=(n, d)] are a sample: every real clip (held
    and ``more``), then the held clips' reconstructions repeated to about the real clips' count."""
    more_descriptors, more_indices = np.asarray(more[0], np.float32), np.asarray(more[1], np.int64)
    if (
        more_descriptors.ndim != 2
        or more_descriptors.shape[1] != held.shape[1]
        or len(more_indices) != len(more_descriptors)
    ):
        raise ValueError(
            f"more_training needs descriptors of shape (m, {held.shape[1]}) and m label indices, got "
            f"{more_descriptors.shape} and {more_indices.shape}"
        )
    copies = max(1, round((len(held) + len(more_descriptors)) / max(len(reconstructed), 1)))
    inputs = np.concatenate([held, more_descriptors, np.tile(reconstructed, (copies, 1))])
    return inputs, np.concatenate([indices, more_indices, np.tile(indices, copies)])


def file_vote_accuracy(predicted: np.ndarray, true: np.ndarray, files: Sequence[str]) -> float:
    """Share of files whose clips' most frequent predicted label [shape=(n,)] is the file's true label.

    Ties go to the lower label index. A file's clips share one true label (the lab's labels are per file).
    """
    predicted, true, files = np.asarray(predicted), np.asarray(true), np.asarray(files)
    if not (len(predicted) == len(true) == len(files)) or not len(files):
        raise ValueError(
            f"need as many predictions, labels and files (at least one): {len(predicted)}, {len(true)}, {len(files)}"
        )
    right = []
    for file in dict.fromkeys(files.tolist()):
        chosen = files == file
        if len(set(true[chosen].tolist())) != 1:
            raise ValueError(f"the clips of {file} carry more than one label")
        right.append(np.bincount(predicted[chosen]).argmax() == true[chosen][0])
    return float(np.mean(right))


def accuracy_figures(
    judge: LabelJudge,
    descriptors: np.ndarray,
    reconstructed: np.ndarray,
    label_indices: np.ndarray,
    files: Sequence[str],
) -> dict:
    """The judge on held-out clips: per clip, per file (majority vote), and on the reconstructions.

    Also per label (labels with held-out clips only): the share of each label's clips, and of their
    reconstructions, that the judge names right. A generator decoded like the reconstructions is
    judged against that second share: it is the judge's own accuracy on decoded audio.
    """
    label_indices = np.asarray(label_indices)
    predicted = judge.judge_descriptors(descriptors)[0]
    predicted_reconstructed = judge.judge_descriptors(reconstructed)[0]
    return {
        "clips": len(predicted),
        "files": len(set(files)),
        "accuracy_clips": float(np.mean(predicted == label_indices)),
        "accuracy_files": file_vote_accuracy(predicted, label_indices, files),
        "accuracy_on_reconstructions": float(np.mean(predicted_reconstructed == label_indices)),
        "accuracy_by_label": accuracy_by_label(predicted, label_indices, judge.labels),
        "accuracy_on_reconstructions_by_label": accuracy_by_label(predicted_reconstructed, label_indices, judge.labels),
        "chance": 1.0 / len(judge.labels),
    }


def accuracy_by_label(predicted: np.ndarray, true: np.ndarray, label_names: Sequence[str]) -> dict[str, float]:
    """Share of each label's clips whose predicted label index [shape=(n,)] is the true one [shape=(n,)],
    keyed by the names in ``label_names``; labels without clips are left out."""
    predicted, true = np.asarray(predicted), np.asarray(true)
    if predicted.shape != true.shape:
        raise ValueError(f"need as many predictions as labels, got {predicted.shape} and {true.shape}")
    return {
        str(name): float(np.mean(predicted[true == index] == index))
        for index, name in enumerate(label_names)
        if np.any(true == index)
    }
