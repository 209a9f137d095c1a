"""Training from disk (lib.data.stream, lib.models.training.StreamedBatches): the cache holds what the
in-memory path computes, every row is seen once per epoch in a seeded order, a model learns from it,
and peak memory stays flat when the collection doubles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from lib.data import analysis, collection, stream
from lib.lab.bench import peak_memory
from lib.models.training import StreamedBatches, StreamedData, TrainingConfig, fit_or_load
from lib.spectral.basis import SpectralBasis


def tone_folder(root: Path, files: int, seconds: float = 12.0) -> Path:
    """``files`` recordings of changing tones over three labels, 16 kHz."""
    rate = 16_000
    for index in range(files):
        time = np.arange(int(seconds * rate)) / rate
        pitch = 110 * 2 ** ((index % 24) / 12)
        tone = 0.3 * np.sin(2 * np.pi * pitch * time * (1 + 0.05 * np.sin(2 * np.pi * 0.3 * time)))
        path = root / f"label{index % 3}" / f"take{index:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, tone.astype(np.float32), rate)
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> collection.FolderDataset:
    root = tmp_path_factory.mktemp("stream")
    source = tone_folder(root / "music", 12, seconds=4.0)
    collection.prepare_collection(source, root / "prepared", progress=False, engine="local")
    return collection.load_collection(root / "prepared")


def test_the_cache_holds_the_in_memory_coefficients(prepared, tmp_path):
    representation = prepared.representation
    spectrograms = representation.forward(prepared.split("train")[0])
    whole = SpectralBasis.fit(spectrograms, 16, seed=3)
    basis, seen = stream.fit_sampled_basis(prepared, "train", representation, 16, sample_clips=10_000, seed=3)
    assert seen == len(spectrograms)
    error, whole_error = (np.mean(np.square(b.reconstruct(spectrograms, 16) - spectrograms)) for b in (basis, whole))
    assert abs(error / whole_error - 1) < 0.01  # a sample as big as the split fits the split (float16 costs <1 %)
    assert np.allclose(basis.explained_variance, whole.explained_variance, rtol=0.01)
    path = stream.build_coefficient_cache(
        prepared, "train", representation, basis, tmp_path / "train.npy", chunk_clips=7
    )
    cached = stream.CoefficientFile(path)
    assert (len(cached), cached.size) == (len(spectrograms), 16)
    assert np.allclose(cached.rows(0, len(cached)), basis.transform(spectrograms), atol=1e-4)
    assert np.allclose(np.load(path, allow_pickle=False), cached.rows(0, len(cached)))
    assert np.allclose(cached.rows(5, 9), cached.rows(0, len(cached))[5:9]) and len(cached.rows(9, 5)) == 0
    assert np.allclose(cached.column_std(block_rows=5), cached.rows(0, len(cached)).std(axis=0), atol=1e-5)
    sampled, seen = stream.fit_sampled_basis(prepared, "train", representation, 8, sample_clips=20, seed=3)
    assert seen == 20 and sampled.size == 8


def test_a_torn_cache_is_refused(tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, np.ones((10, 4), dtype=np.float32))
    assert len(stream.CoefficientFile(path)) == 10
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size - 8)
    with pytest.raises(ValueError, match="incomplete"):
        stream.CoefficientFile(path)


def test_every_row_once_per_epoch_in_an_order_set_by_seed_and_epoch(tmp_path):
    rows = np.arange(1000 * 3, dtype=np.float32).reshape(1000, 3)
    np.save(tmp_path / "rows.npy", rows)
    data = StreamedData(stream.CoefficientFile(tmp_path / "rows.npy"), targets=lambda batch: 2 * batch)

    def epoch(batches: StreamedBatches, number: int) -> list[np.ndarray]:
        batches.set_epoch(number)
        return [(inputs.numpy(), targets.numpy()) for inputs, targets in batches.dataset]

    batches = StreamedBatches(data, batch_size=64, seed=7, block_rows=100, shuffle_blocks=3)
    first = epoch(batches, 0)
    assert len(first) == 16 and all(len(inputs) == 64 for inputs, _ in first[:-1])
    seen = np.concatenate([inputs for inputs, _ in first])
    assert np.array_equal(np.sort(seen[:, 0]), rows[:, 0])  # each row once
    assert all(np.array_equal(targets, 2 * inputs) for inputs, targets in first)
    again = epoch(StreamedBatches(data, batch_size=64, seed=7, block_rows=100, shuffle_blocks=3), 0)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))  # a resumed run sees the same batches
    assert not np.array_equal(first[0][0], epoch(batches, 1)[0][0])


def test_an_autoencoder_learns_from_the_stream(tmp_path):
    from lib.models.autoencoder import AutoencoderConfig, build_autoencoder

    rng = np.random.default_rng(0)
    rows = (rng.standard_normal((600, 4)) @ rng.standard_normal((4, 32))).astype(np.float32)
    np.save(tmp_path / "train.npy", rows)
    source = stream.CoefficientFile(tmp_path / "train.npy")
    config = AutoencoderConfig(basis_size=32, latent_dim=8, hidden_width=64, hidden_layers=1, nested_sizes=(8,))
    result = fit_or_load(
        lambda: build_autoencoder(config, rows.std(axis=0)),
        StreamedData(source),
        (rows[:64], rows[:64]),
        run_folder=tmp_path / "run",
        config=TrainingConfig(epochs=6, batch_size=32, learning_rate=3e-3),
        settings={"test": "stream"},
        verbose=2,
    )
    assert result.history["loss"][-1] < 0.5 * result.history["loss"][0]


def test_peak_memory_of_streamed_training_stays_flat_when_the_collection_doubles(tmp_path):
    """Each size in a fresh process: a basis fitted on a fixed sample, the coefficients cached on disk,
    one epoch read back. Twice the clips (which in memory would be ~80 MiB more spectrograms) must not
    raise the peak by more than a small margin. One process's peak varies by some 50 MiB from run to run
    (TensorFlow's and the allocator's pools), nearly all of it upwards, so each size is measured three
    times and its lowest peak compared."""

    def peak_of(files: int) -> dict:
        source = tone_folder(tmp_path / f"music{files}", files, seconds=30.0)
        destination = tmp_path / f"prepared{files}"
        collection.prepare_collection(source, destination, progress=False, engine="local")
        runs = [peak_memory("streamed_training", str(destination), "64", "256", "1") for _ in range(3)]
        return min(runs, key=lambda run: run["peak_mib"])

    small, large = peak_of(24), peak_of(48)
    assert large["clips"] >= 1.8 * small["clips"] and small["basis_clips"] == large["basis_clips"] == 256
    assert large["peak_mib"] - small["peak_mib"] < 40, (small, large)


def test_a_large_training_set_gets_fewer_epochs(tmp_path):
    config = TrainingConfig(epochs=40)
    assert config.epochs_for(8655) == config.epochs_for(10_000) == 40  # every shipped dataset: all epochs
    assert config.epochs_for(39_115) == 11  # the 4.5-hour folder of 39,115 spectrograms: 40 * 10,000 / 39,115
    assert config.epochs_for(10**8) == 1
    warm = TrainingConfig(epochs=100, warmup_epochs=20)
    assert warm.warmup_for(8655) == 20 and warm.epochs_for(8655) == 100  # a small set: the whole warm-up
    # A large set: the warm-up shortens in the epochs' ratio (20 * 10,000 / 143,732 -> 2), and completes.
    assert warm.warmup_for(143_732) == 2 and warm.epochs_for(143_732) == 7
    assert warm.warmup_for(10**8) == 1 and warm.epochs_for(10**8) == 2
    assert TrainingConfig(epochs=5).warmup_for(10**6) == 0
    with pytest.raises(ValueError, match="full_epochs_up_to"):
        TrainingConfig(full_epochs_up_to=0)
    from lib.models.autoencoder import AutoencoderConfig, build_autoencoder

    rows = np.random.default_rng(1).standard_normal((40, 16)).astype(np.float32)
    result = fit_or_load(
        lambda: build_autoencoder(AutoencoderConfig.for_basis(16, 4), rows.std(axis=0)),
        (rows, rows),
        (rows[:8], rows[:8]),
        run_folder=tmp_path / "run",
        config=TrainingConfig(epochs=6, patience=10, full_epochs_up_to=15),
        settings={"test": "budget"},
        verbose=2,
    )
    assert len(result.history["loss"]) == 3  # 6 * 15 / 40 = 2.25: three epochs


def test_a_split_past_its_limit_is_held_as_a_seeded_sample(prepared):
    prepared = collection.load_collection(prepared.folder)  # its own copy: the limits are the instance's
    whole_waveforms, whole_rows = prepared.split("train")
    assert prepared.limit_splits({"train": 10_000}) == {}  # under the limit: every clip
    assert prepared.sampling_summary() == "every clip of every split is held in memory"
    sampled = prepared.limit_splits({"train": 7, "test": None}, seed=1)
    assert sampled == {"train": {"clips": 7, "of": len(whole_rows)}}
    assert "7 of" in prepared.sampling_summary()
    waveforms, rows = prepared.split("train")
    assert len(rows) == 7 and len(waveforms) == 7
    positions = [row["index"] for row in rows]
    assert positions == sorted(positions) and {row["split"] for row in rows} == {"train"}  # manifest order
    by_index = {row["index"]: k for k, row in enumerate(whole_rows)}
    assert np.array_equal(waveforms, whole_waveforms[[by_index[i] for i in positions]])  # the same clips' audio
    assert [row["index"] for row in prepared.split("train")[1]] == positions  # the same sample each time
    assert len(prepared.split("test")[1]) == prepared.counts()["test"]  # a split without a limit is whole
    prepared.limit_splits({"train": 7}, seed=2)
    assert [row["index"] for row in prepared.split("train")[1]] != positions  # another seed, another sample
    assert prepared.counts()["train"] == len(whole_rows)  # counts stay the collection's
    for bad in ({"train": 0}, {"training": 5}):
        with pytest.raises(ValueError):
            prepared.limit_splits(bad)
    prepared.limit_splits({})
    assert len(prepared.split("train")[1]) == len(whole_rows)


def test_every_dataset_loads_with_the_chosen_limits(monkeypatch, tmp_path):
    from lib.data import dataset as datasets

    source = tone_folder(tmp_path / "music", 9, seconds=3.0)
    monkeypatch.setenv("LML_EVALUATION_CLIPS", "2")
    monkeypatch.setenv("LML_TRAIN_CLIPS", "all")
    loaded = datasets.load_dataset(tmp_path / "prepared", dataset=str(source))
    assert loaded.split_limits == {"valid": 2, "test": 2, "heldout": 2}
    assert len(loaded.split("test")[1]) == 2 and len(loaded.split("train")[1]) == loaded.counts()["train"]


def test_the_limits_come_from_the_environment(monkeypatch):
    from lib.core.paths import split_clips_choice

    monkeypatch.delenv("LML_TRAIN_CLIPS", raising=False)
    monkeypatch.delenv("LML_EVALUATION_CLIPS", raising=False)
    assert split_clips_choice() == {"train": 3000, "valid": 600, "test": 600, "heldout": 600}
    monkeypatch.setenv("LML_TRAIN_CLIPS", "all")
    monkeypatch.setenv("LML_EVALUATION_CLIPS", "250")
    assert split_clips_choice() == {"train": None, "valid": 250, "test": 250, "heldout": 250}
    for bad in ("0", "-3", "many", "2.5"):
        monkeypatch.setenv("LML_TRAIN_CLIPS", bad)
        with pytest.raises(ValueError, match="LML_TRAIN_CLIPS"):
            split_clips_choice()


def test_a_sampled_training_split_is_streamed_whole_with_its_extra_rows(prepared, tmp_path):
    from lib.models.training import coefficient_pairs

    dataset = collection.load_collection(prepared.folder)
    representation = dataset.representation
    waveforms, _ = dataset.split("train")
    basis = SpectralBasis.fit(representation.forward(waveforms), 8, seed=0)
    every = basis.transform(representation.forward(waveforms))  # the whole split, as held without a limit
    extra = np.arange(3 * 8, dtype=np.float32).reshape(3, 8)
    kept = stream.training_coefficients(
        dataset, "train", every, extra, basis=basis, representation=representation, cache_path=tmp_path / "c.npy"
    )
    assert isinstance(kept, np.ndarray) and np.array_equal(kept, np.concatenate([every, extra]))
    assert not (tmp_path / "c.npy").exists()  # a split held whole needs no cache

    dataset.limit_splits({"train": 5})
    held = basis.transform(representation.forward(dataset.split("train")[0]))
    streamed = stream.training_coefficients(
        dataset, "train", held, extra, basis=basis, representation=representation, cache_path=tmp_path / "c.npy"
    )
    assert isinstance(streamed, stream.CoefficientFile) and len(streamed) == len(every) + 3  # every clip, not 5
    assert np.allclose(streamed.rows(0, len(every)), every, atol=1e-4)
    assert np.array_equal(streamed.rows(len(every), len(every) + 3), extra)

    weighting = np.eye(8, dtype=np.float32) * 2
    inputs, targets = coefficient_pairs(held, weighting)
    assert inputs is held and np.array_equal(targets, held * 2)
    data = coefficient_pairs(streamed, weighting)
    assert np.array_equal(data.targets(extra), extra * 2) and len(data) == len(streamed)
    assert coefficient_pairs(streamed, None).targets == "inputs"
    with pytest.raises(ValueError, match="extra rows"):
        stream.build_coefficient_cache(dataset, "train", representation, basis, tmp_path / "d.npy", extra=extra[:, :3])


def test_a_basis_fitted_in_blocks_is_scikit_learns_basis():
    rng = np.random.default_rng(0)
    low_rank = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 6 * 4)) + 0.01 * rng.normal(size=(300, 24))
    spectrograms = low_rank.reshape(300, 6, 4).astype(np.float32)
    whole = SpectralBasis.fit(spectrograms, 5)
    for stack in (spectrograms, spectrograms.astype(np.float16)):  # float16 holds half, and costs little
        blocked = SpectralBasis.fit_in_blocks(stack, 5, block_rows=64)
        assert np.allclose(blocked.mean, whole.mean, atol=1e-3)
        assert np.allclose(blocked.explained_variance, whole.explained_variance, rtol=1e-2)
        assert np.allclose(blocked.components, whole.components, atol=1e-2)  # the same signs too
    with pytest.raises(ValueError, match="size 6 must lie"):
        SpectralBasis.fit_in_blocks(spectrograms[:5], 6)
    with pytest.raises(ValueError, match="expected spectrograms"):
        SpectralBasis.fit_in_blocks(spectrograms.reshape(300, 24), 5)


def test_distribution_figures_compare_with_every_clip_of_a_sampled_split(prepared):
    import keras

    from lib.measure import evaluation
    from lib.models import judge

    prepared = collection.load_collection(prepared.folder)  # its own copy: the limits are the instance's
    representation = prepared.representation
    keras.utils.set_random_seed(0)
    classifier = judge.build_classifier(*representation.shape, 12, len(prepared.labels), width=8)
    prepared.limit_splits({"train": 7, "test": 3}, seed=1)
    held = {split: prepared.split(split) for split in ("train", "test")}
    spectrograms = {split: representation.forward(waveforms) for split, (waveforms, _) in held.items()}
    build = {"families": prepared.labels, "pitches": range(12), "ndb_bins": 2}
    test_labels = [row["label"] for row in held["test"][1]]
    reference = evaluation.GenerationReference.build(
        classifier, representation, spectrograms["train"], spectrograms["test"], test_labels, **build, dataset=prepared
    )
    counts = prepared.counts()
    assert reference.judged_clips() == {"train": counts["train"], "test": counts["test"]} and counts["train"] > 7
    assert len(reference.train.features) == 7 and len(reference.test.features) == 3  # the held clips, as before
    whole = evaluation.judge_in_passes(classifier, representation, prepared, "train", chunk_clips=5)  # in passes
    assert np.allclose(whole.features, reference.every_train.features, atol=1e-5)
    position = {index: k for k, index in enumerate(prepared.indices("train"))}
    held_positions = [position[row["index"]] for row in held["train"][1]]
    assert np.allclose(whole.features[held_positions], reference.train.features, atol=1e-5)  # the same clips' verdicts
    again = evaluation.GenerationReference.build(
        classifier,
        representation,
        spectrograms["train"],
        spectrograms["test"],
        test_labels,
        **build,
        dataset=prepared,
        judged={"train": reference.every_train},
    )
    assert again.every_train is reference.every_train  # given verdicts are not judged again
    copy = evaluation.score_generated(reference, whole)  # the whole training split scores as its own copy
    assert copy["nearest_train_distance"] == pytest.approx(0.0, abs=1e-3)
    prepared.limit_splits({})
    unsampled = evaluation.GenerationReference.build(
        classifier, representation, spectrograms["train"], spectrograms["test"], test_labels, **build, dataset=prepared
    )
    assert unsampled.every_train is None and unsampled.judged_clips() == {"train": 7, "test": 3}


def test_a_conditional_vae_streams_every_known_clip_with_its_conditions(prepared, tmp_path):
    from lib.models import conditional, training

    prepared = collection.load_collection(prepared.folder)  # its own copy: the limits are the instance's
    representation = prepared.representation
    waveforms, rows = prepared.split("train")
    spectrograms = representation.forward(waveforms)
    basis = SpectralBasis.fit(spectrograms, 6)
    attributes = analysis.measure_attributes(waveforms, sample_rate=prepared.config.sample_rate)
    space = conditional.LabelConditionSpace.fit(["label0", "label1"], attributes[:2])  # label2 is unknown
    known = space.known(rows)
    assert known.tolist() == [row["label"] != "label2" for row in rows]
    conditions = space.conditions_of(waveforms[known], [r for r, k in zip(rows, known) if k], sample_rate=16_000)
    held = conditional.model_inputs(basis.transform(spectrograms[known]), conditions)
    assert (
        training.conditioned_inputs(
            prepared, held, space, basis=basis, representation=representation, cache_path=tmp_path / "rows.npy"
        )
        is held
    )  # a whole split: the arrays
    prepared.limit_splits({"train": 4}, seed=0)
    streamed = training.conditioned_inputs(
        prepared, held, space, basis=basis, representation=representation, cache_path=tmp_path / "rows.npy"
    )
    assert training.input_count(streamed) == int(known.sum()) > 4  # every known clip, not the sample
    cached = streamed.source.rows(0, len(streamed))
    assert np.allclose(cached[:, :6], held["coefficients"], atol=1e-4)
    assert np.allclose(cached[:, 6:], conditions, atol=1e-5)
    batches = StreamedBatches(streamed, batch_size=4, seed=0)
    first = next(iter(batches.dataset))
    assert set(first) == {"coefficients", "conditions"} and first["conditions"].shape == (4, space.size)
    with pytest.raises(ValueError, match="cannot hold"):
        training.streamed_conditioned(streamed.source, 6 + space.size)
    prepared.limit_splits({})


def test_a_cache_built_from_the_same_clips_and_basis_is_reused(prepared, tmp_path, monkeypatch):
    representation = prepared.representation
    basis = SpectralBasis.fit(representation.forward(prepared.split("train")[0]), 4)
    other = SpectralBasis.fit(representation.forward(prepared.split("valid")[0]), 4)
    path = tmp_path / "train.npy"
    stream.build_coefficient_cache(prepared, "train", representation, basis, path, reuse="coefficients")
    first = stream.CoefficientFile(path).rows(0, 3)
    passes, read = [], prepared.clips
    monkeypatch.setattr(prepared, "clips", lambda indices: passes.append(len(indices)) or read(indices))
    stream.build_coefficient_cache(prepared, "train", representation, basis, path, reuse="coefficients")
    assert passes == []  # the same clips, basis and rows: reused without a pass over the split
    stream.build_coefficient_cache(prepared, "train", representation, other, path, reuse="coefficients")
    assert sum(passes) == prepared.counts()["train"]  # another basis: a new pass
    assert not np.allclose(stream.CoefficientFile(path).rows(0, 3), first)
    stream.build_coefficient_cache(prepared, "train", representation, other, path, reuse="other rows")
    assert sum(passes) == 2 * prepared.counts()["train"]  # other rows described: a new pass too


def test_the_judge_learns_from_every_clip_of_a_sampled_split(prepared, tmp_path):
    from lib.measure import evaluation
    from lib.models import judge

    prepared = collection.load_collection(prepared.folder)  # its own copy: the limits are the instance's
    representation = prepared.representation
    pitches, families = evaluation.judge_classes(prepared)
    waveforms, rows = prepared.split("train")
    spectrograms = representation.forward(waveforms)
    targets = evaluation.judge_targets(prepared, waveforms, rows, pitches, families)
    classes = {"pitches": pitches, "families": families}
    whole = evaluation.judge_training_data(
        prepared, waveforms, spectrograms, targets, representation=representation, **classes
    )
    assert whole[0] is spectrograms and whole[1] is targets  # a whole split: the held arrays
    tuning = analysis.chroma_tuning(waveforms, sample_rate=16_000)  # what the clips together give, stated
    assert np.array_equal(
        evaluation.judge_targets(prepared, waveforms, rows, pitches, families, tuning=tuning)["pitch"], targets["pitch"]
    )
    prepared.limit_splits({"train": 4}, seed=0)
    held, held_rows = prepared.split("train")
    held_targets = evaluation.judge_targets(prepared, held, held_rows, pitches, families)
    streamed = evaluation.judge_training_data(
        prepared, held, representation.forward(held), held_targets, representation=representation, **classes
    )
    sample_tuning = analysis.chroma_tuning(held, sample_rate=16_000)  # every block is labelled with the sample's
    targets = evaluation.judge_targets(prepared, waveforms, rows, pitches, families, tuning=sample_tuning)
    assert isinstance(streamed, StreamedData) and len(streamed) == len(rows) > 4  # every clip, not the sample
    batches = StreamedBatches(streamed, batch_size=5, seed=0, block_rows=3, shuffle_blocks=2)
    seen = [(inputs.numpy(), labels["pitch"].numpy(), labels["family"].numpy()) for inputs, labels in batches.dataset]
    inputs = np.concatenate([part[0] for part in seen])
    assert inputs.shape == (len(rows), *representation.shape) and len(seen[0][0]) == 5
    order = [int(np.argmin(np.abs(spectrograms - one).sum(axis=(1, 2)))) for one in inputs]  # each clip once
    assert sorted(order) == list(range(len(rows)))
    assert np.allclose(inputs, spectrograms[order], atol=1e-6)
    assert np.array_equal(np.concatenate([part[1] for part in seen]), targets["pitch"][order])
    assert np.array_equal(np.concatenate([part[2] for part in seen]), targets["family"][order])
    result = fit_or_load(  # the judge trains from the stream
        lambda: judge.build_classifier(*representation.shape, len(pitches), len(families), width=8),
        streamed,
        (representation.forward(held), held_targets),
        run_folder=tmp_path / "judge",
        config=TrainingConfig(epochs=2, batch_size=8, seed=0),
        settings={},
        loss={"pitch": "sparse_categorical_crossentropy", "family": "sparse_categorical_crossentropy"},
    )
    assert len(result.history["loss"]) == 2 and np.isfinite(result.history["loss"]).all()
    prepared.limit_splits({})


def test_the_label_judge_hears_every_real_clip_of_a_sampled_split(prepared, tmp_path, monkeypatch):
    from lib.measure import label_judge
    from lib.models import training

    prepared = collection.load_collection(prepared.folder)  # its own copy: the limits are the instance's
    labels = prepared.labels
    whole, whole_rows = prepared.split("train")
    width = label_judge.descriptor_size(prepared.config.clip_samples)
    assert label_judge.unheld_descriptors(prepared, "train", labels)[0].shape == (0, width)
    prepared.limit_splits({"train": 4}, seed=0)
    held, held_rows = prepared.split("train")
    descriptors, indices = label_judge.unheld_descriptors(prepared, "train", labels, per_held=None, block_clips=3)
    rest = [i for i, row in enumerate(whole_rows) if row["index"] not in {r["index"] for r in held_rows}]
    assert len(descriptors) == len(rest) == len(whole_rows) - 4 > 4  # every clip the sample left out, once
    bounded, bounded_indices = label_judge.unheld_descriptors(prepared, "train", labels, per_held=1, block_clips=3)
    again = label_judge.unheld_descriptors(prepared, "train", labels, per_held=1, seed=0)[0]
    matches = [int(np.argmin(np.abs(descriptors - row).sum(axis=1))) for row in bounded]
    assert len(bounded) == 4 and np.allclose(bounded, again)  # one per held clip, the same for the same seed
    assert matches == sorted(set(matches)) and np.allclose(bounded, descriptors[matches], atol=1e-4)  # of the rest
    assert bounded_indices.tolist() == indices[matches].tolist()
    other = label_judge.unheld_descriptors(prepared, "train", labels, per_held=1, seed=1)[0]
    assert not np.allclose(other, bounded)  # another seed, another sample
    assert np.allclose(descriptors, label_judge.clip_descriptors(whole[rest], sample_rate=16_000), atol=1e-4)
    assert [labels[i] for i in indices] == [whole_rows[i]["label"] for i in rest]
    assert label_judge.unheld_descriptors(prepared, "train", labels[:1])[1].tolist() == [
        0 for i in rest if whole_rows[i]["label"] == labels[0]
    ]  # clips of labels the judge does not name are left out
    seen = []
    original_fit = training.fit_or_load
    monkeypatch.setattr(label_judge, "fit_or_load", lambda *a, **k: seen.append(a[1]) or original_fit(*a, **k))
    splits = {"train": held, "valid": held[:2], "test": held[2:]}
    names = {"train": [r["label"] for r in held_rows], "valid": [r["label"] for r in held_rows[:2]]}
    names["test"] = [r["label"] for r in held_rows[2:]]
    heard = label_judge.train_on_splits(
        splits, names, labels, reconstruct=lambda split: splits[split] * 0.9, test_files=names["test"],
        sample_rate=16_000, run_folder=tmp_path / "judge", settings={}, epochs=2, width=8,
        more_training=(descriptors, indices),
    )  # fmt: skip
    (inputs, targets) = seen[0]
    copies = round(len(whole_rows) / 4)  # the held clips' reconstructions, repeated to about the real clips' count
    assert len(inputs) == len(targets) == len(whole_rows) + 4 * copies
    assert np.allclose(inputs[4 : len(whole_rows)], descriptors)  # every real clip: the held ones, then the rest
    assert heard.unheld_training_clips == len(rest) and heard.record()["unheld_training_clips"] == len(rest)
    prepared.limit_splits({})


def test_a_trained_models_recordings_come_per_split_from_one_read_of_the_manifest(prepared, tmp_path, monkeypatch):
    from lib.models import recording

    source = prepared.folder.parent / "music"
    trained = recording.TrainedModel("autoencoder", str(source), tmp_path, prepared.folder, source)
    reads = []
    original = collection.load_collection
    monkeypatch.setattr(collection, "load_collection", lambda *a, **k: reads.append(a) or original(*a, **k))
    every, counts = trained.sampled_files({"train": None, "test": None})
    assert len(reads) == 1 and set(every) == set(counts) == {"train", "test"}
    for split in every:
        names = sorted({row["file"] for row in prepared.manifest if row["split"] == split})
        assert [str(path.relative_to(source)) for path, _ in every[split]] == names and counts[split] == len(names)
        assert all(label == path.parent.name for path, label in every[split])  # each file with its folder's label
    one, counts = trained.sampled_files({"train": 1e-6}, seed=3)  # a budget shorter than any file: one file
    assert len(one["train"]) == 1 and counts["train"] == len(every["train"]) > 1
    assert one["train"] == trained.files("train", hours=1e-6, seed=3)
    assert trained.sampled_files({"train": 1.0})[0]["train"] == every["train"]  # 1 h holds every 4 s file
