"""The label judge: clip descriptors computed in batches as one clip alone, votes per file, a judge that learns."""

from __future__ import annotations

import numpy as np
import pytest

from lib.measure import label_judge
from tests.conftest import SAMPLE_RATE


def struck(frequencies: list[float], onsets: int, *, seconds: float = 1.0, level: float = 0.3) -> np.ndarray:
    """A chord of ``frequencies`` struck ``onsets`` times in ``seconds``, each strike decaying."""
    samples = int(SAMPLE_RATE * seconds)
    time = np.arange(samples) / SAMPLE_RATE
    envelope = np.exp(-12 * (np.arange(samples) % (samples // onsets)) / SAMPLE_RATE)
    chord = sum(np.sin(2 * np.pi * f * time) for f in frequencies) / len(frequencies)
    return (level * envelope * chord).astype(np.float32)


def clips_of(label: str, count: int, rng: np.random.Generator) -> np.ndarray:
    """'busy': many strikes of single notes; 'calm': one strike of a wide chord. Pitches and levels vary."""
    clips = []
    for _ in range(count):
        root = rng.uniform(150, 400)
        level = rng.uniform(0.05, 0.5)
        if label == "busy":
            clips.append(struck([root], int(rng.integers(6, 10)), level=level))
        else:
            clips.append(struck([root, root * 1.26, root * 1.5, root * 2.0], 1, level=level))
    return np.stack(clips)


def test_descriptors_of_a_clip_do_not_depend_on_its_batch_mates():
    rng = np.random.default_rng(0)
    quiet, loud = clips_of("busy", 1, rng) * 0.01, clips_of("calm", 1, rng) * 3
    alone = label_judge.clip_descriptors(quiet, sample_rate=SAMPLE_RATE)
    together = label_judge.clip_descriptors(np.concatenate([loud, quiet]), sample_rate=SAMPLE_RATE)
    assert alone.shape == (1, label_judge.descriptor_size(SAMPLE_RATE)) == (1, 194)
    # the decibel floor and the chroma's tuning are each clip's own, not the batch's
    np.testing.assert_allclose(together[1], alone[0], rtol=1e-3, atol=1e-4)
    assert not np.allclose(together[0], together[1])
    assert label_judge.clip_descriptors(np.zeros((0, SAMPLE_RATE)), sample_rate=SAMPLE_RATE).shape == (0, 194)
    # a longer clip has one more rhythm lag; its empty array is as wide as its descriptors
    phrase = label_judge.clip_descriptors(np.tile(quiet, 4), sample_rate=SAMPLE_RATE)
    assert phrase.shape == (1, label_judge.descriptor_size(4 * SAMPLE_RATE)) == (1, 195)
    assert label_judge.clip_descriptors(np.zeros((0, 4 * SAMPLE_RATE)), sample_rate=SAMPLE_RATE).shape == (0, 195)
    with pytest.raises(ValueError, match="clips, samples"):
        label_judge.clip_descriptors(np.zeros(SAMPLE_RATE), sample_rate=SAMPLE_RATE)


def test_descriptors_worked_in_threads_are_those_of_one_pass_in_order():
    rng = np.random.default_rng(1)
    clips = np.concatenate([clips_of(label, 35, rng) for label in ("busy", "calm")])  # past two 32-clip chunks
    chunk = label_judge.CHUNK_SAMPLES // clips.shape[1]
    one_pass = [label_judge._descriptors(clips[start : start + chunk], SAMPLE_RATE) for start in range(0, 70, chunk)]
    assert np.array_equal(label_judge.clip_descriptors(clips, sample_rate=SAMPLE_RATE), np.concatenate(one_pass))


def test_a_file_is_judged_by_the_label_most_of_its_clips_get():
    predicted = np.array([0, 0, 1, 1, 1, 0, 2, 2])
    true = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    files = ["a", "a", "a", "b", "b", "b", "c", "c"]
    assert label_judge.file_vote_accuracy(predicted, true, files) == 1.0  # a: 2 of 3, b: 2 of 3, c: 2 of 2
    assert label_judge.file_vote_accuracy(1 - np.clip(predicted, 0, 1), true, files) == 0.0
    with pytest.raises(ValueError, match="more than one label"):
        label_judge.file_vote_accuracy(predicted, np.arange(8), files)
    with pytest.raises(ValueError, match="as many"):
        label_judge.file_vote_accuracy(predicted[:3], true, files)


def test_accuracy_by_label_counts_each_labels_clips_and_leaves_out_labels_without_clips():
    predicted = np.array([0, 0, 1, 1, 1, 0])
    true = np.array([0, 1, 1, 1, 0, 0])
    shares = label_judge.accuracy_by_label(predicted, true, ("calm", "busy", "absent"))
    assert shares == {"calm": 2 / 3, "busy": 2 / 3}  # calm: clips 0, 4, 5; busy: clips 1, 2, 3
    assert label_judge.accuracy_by_label(true, true, ("calm", "busy")) == {"calm": 1.0, "busy": 1.0}
    with pytest.raises(ValueError, match="as many"):
        label_judge.accuracy_by_label(predicted[:2], true, ("calm", "busy"))


def test_a_judge_learns_labels_it_can_hear_and_not_labels_it_cannot(tmp_path):
    rng = np.random.default_rng(1)
    labels = ("busy", "calm")
    sizes = {"train": 24, "valid": 8, "test": 10}
    waveforms = {split: np.concatenate([clips_of(label, n, rng) for label in labels]) for split, n in sizes.items()}
    names = {split: np.repeat(labels, n) for split, n in sizes.items()}
    files = [f"file{i // 5}" for i in range(20)]

    def train(label_names, folder):
        return label_judge.train_on_splits(
            waveforms, label_names, labels, reconstruct=lambda split: waveforms[split] * 0.9, test_files=files,
            sample_rate=SAMPLE_RATE, run_folder=tmp_path / folder, settings={"data": "test"}, epochs=60, width=16,
        )  # fmt: skip

    heard = train(names, "heard")
    judge = heard.judge
    assert not heard.result.loaded_from_cache and judge.labels == labels
    assert np.mean(judge.names(waveforms["test"]) == names["test"]) >= 0.9
    assert judge.shares(waveforms["test"][:10])["busy"] >= 0.9
    assert sum(judge.shares(waveforms["test"]).values()) == pytest.approx(1.0)
    assert heard.held_out["files"] == 4 and heard.held_out["accuracy_files"] == 1.0
    # Labels drawn at random say nothing the audio holds: the judge cannot learn them.
    shuffled = {split: rng.permutation(values) if split != "test" else values for split, values in names.items()}
    assert train(shuffled, "shuffled").held_out["accuracy_clips"] < 0.9
    again = train(names, "heard")
    assert again.result.loaded_from_cache and np.array_equal(
        again.judge.names(waveforms["test"]), judge.names(waveforms["test"])
    )
    with pytest.raises(ValueError, match="two labels"):
        label_judge.train_on_splits(
            waveforms, names, ("busy",), reconstruct=lambda split: waveforms[split], test_files=files,
            sample_rate=SAMPLE_RATE, run_folder=tmp_path / "one", settings={},
        )  # fmt: skip


def test_a_judge_trained_on_a_datasets_splits_reports_what_it_heard(tmp_path):
    rng = np.random.default_rng(2)
    labels = ("busy", "calm")
    sizes = {"train": 16, "valid": 4, "test": 6}
    waveforms = {split: np.concatenate([clips_of(label, n, rng) for label in labels]) for split, n in sizes.items()}
    names = {split: [label for label in labels for _ in range(n)] for split, n in sizes.items()}
    asked = []

    def reconstruct(split: str) -> np.ndarray:
        asked.append(split)
        return waveforms[split] * 0.9  # a quieter copy: what an autoencoder would give back

    files = [f"{label}/{i % 2}" for label in labels for i in range(6)]
    heard = label_judge.train_on_splits(
        waveforms, names, labels, reconstruct=reconstruct, test_files=files,
        sample_rate=SAMPLE_RATE, run_folder=tmp_path / "judge", settings={"data": "test"}, epochs=40, width=16,
    )  # fmt: skip
    assert asked == ["train", "valid", "test"] and set(heard.descriptors) == set(heard.reconstructed) == set(sizes)
    assert heard.held_out["clips"] == 12 and heard.held_out["files"] == 4 and heard.held_out["accuracy_clips"] >= 0.9
    by_label = heard.held_out["accuracy_by_label"]
    assert set(by_label) == set(heard.held_out["accuracy_on_reconstructions_by_label"]) == set(labels)
    assert np.isclose(np.mean(list(by_label.values())), heard.held_out["accuracy_clips"])  # 6 test clips per label
    record = heard.record(extra=1)
    assert record["extra"] == 1 and record["epochs"] == len(heard.result.history["loss"]) and "accuracy_files" in record
