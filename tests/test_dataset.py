"""The rendered note dataset: labels, splits and determinism (on the small smoke configuration)."""

from __future__ import annotations

import numpy as np
import pytest

from lib.core.fileio import load_json
from lib.data import collection
from lib.data import dataset as note_dataset
from lib.data.analysis import ATTRIBUTES
from lib.data.clips import SPLITS, ClipDataset
from lib.data.synth import NoteRenderer
from tests.music_folder import write_music_folder


@pytest.fixture(scope="module")
def smoke_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smoke_data")
    note_dataset.build_dataset(note_dataset.smoke_config(), folder)
    return folder


def test_splits_are_disjoint_and_programs_held_out():
    config = note_dataset.smoke_config()
    rows = note_dataset.assign_splits(config)
    keys = [(row["program"], row["pitch"], row["velocity"]) for row in rows]
    assert len(keys) == len(set(keys))  # each clip once, hence in one split
    for row in rows:
        assert (row["split"] == "heldout") == (row["program"] in config.heldout_programs)
    splits = {row["split"] for row in rows}
    assert splits == {"train", "valid", "test", "heldout"}
    assert note_dataset.assign_splits(config) == rows  # deterministic


def test_render_is_deterministic_and_labelled():
    renderer = NoteRenderer(sample_rate=16_000)
    first = renderer.render(0, 60, 100, clip_samples=16_000, note_samples=12_000)
    renderer.render(73, 72, 50, clip_samples=16_000, note_samples=12_000)
    again = renderer.render(0, 60, 100, clip_samples=16_000, note_samples=12_000)
    assert np.array_equal(first, again)  # nothing leaks from the note in between
    assert np.max(np.abs(first)) > 0.01
    assert np.max(np.abs(first[-400:])) < np.max(np.abs(first[:4000]))  # released by the end


def test_build_writes_a_consistent_dataset(smoke_folder, monkeypatch):
    monkeypatch.setenv("LML_SMOKE", "1")
    loaded = note_dataset.load_dataset(smoke_folder, build=False)
    info = load_json(smoke_folder / "dataset.json")
    assert info["fingerprint"] == note_dataset.smoke_config().fingerprint()
    assert loaded.waveforms.shape == (len(loaded.manifest), 16_000)
    assert sum(loaded.counts().values()) == len(loaded.manifest)
    assert all(row["family"] == note_dataset.program_family(row["program"]) for row in loaded.manifest)
    assert 0.0 < loaded.representation.config.peak_db < 60.0


def test_up_to_date_dataset_is_not_rebuilt(smoke_folder):
    before = (smoke_folder / "waveforms.npy").stat().st_mtime_ns
    note_dataset.build_dataset(note_dataset.smoke_config(), smoke_folder)
    assert (smoke_folder / "waveforms.npy").stat().st_mtime_ns == before


def test_the_notes_and_a_folder_answer_the_same_questions(smoke_folder, tmp_path):
    music = write_music_folder(tmp_path / "music", files_per_label=3, seconds=6.0)
    collection.prepare_collection(music, tmp_path / "clips", collection.CollectionConfig(), progress=False)
    notes = note_dataset.load_dataset(smoke_folder, build=False)
    folder = collection.load_collection(tmp_path / "clips")
    for dataset in (notes, folder):
        assert isinstance(dataset, ClipDataset)
        for split in SPLITS:
            waveforms, rows = dataset.split(split)
            assert waveforms.shape == (len(rows), dataset.config.clip_samples)
            assert all(row["label"] in dataset.labels and row["split"] == split for row in rows)
        assert sum(dataset.counts().values()) == len(dataset.manifest)
        attributes = dataset.attributes("train")
        assert attributes.shape == (dataset.counts()["train"], len(ATTRIBUTES)) and np.isfinite(attributes).all()
        assert isinstance(dataset.describe(dataset.manifest[0]), str)
    assert notes.has_note_labels and not folder.has_note_labels
    first = notes.manifest[0]
    assert notes.title(first) == f"{first['name']} {first['pitch']} v{first['velocity']}"
    assert folder.title(folder.manifest[0]) == folder.describe(folder.manifest[0])
    with pytest.raises(ValueError, match="unknown split"):
        folder.split("validation")


def test_a_note_is_found_by_program_pitch_and_velocity():
    rows = [
        {"program": 0, "pitch": 60, "velocity": 100},
        {"program": 0, "pitch": 60, "velocity": 60},
        {"program": 40, "pitch": 60, "velocity": 60},
    ]
    assert note_dataset.find_note(rows, 0, 60) == 0
    assert note_dataset.find_note(rows, 0, 60, 60) == 1
    assert note_dataset.find_note(rows, 40, 60) == 2
    assert note_dataset.find_note(rows, 40, 61) is None
