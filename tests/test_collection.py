"""A folder of the user's audio: what a real disk holds, streamed preparation, resumption, memory."""

from __future__ import annotations

import gc
import logging
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lib.core import paths
from lib.core.errors import AudioInputError, NotReadyError
from lib.data import audio, collection, decoding
from tests.conftest import SAMPLE_RATE, harmonic_tone

SMALL = collection.CollectionConfig(shard_clips=8)


@pytest.fixture(autouse=True)
def decode_in_this_process(monkeypatch):
    """Files are decoded here unless a test asks for the engine: monkeypatched readers and memory probes
    see the decoding (lib.data.decoding is the same code on the engine's workers)."""
    monkeypatch.setenv("LML_PREPARE_ENGINE", "local")


def write_tone(path: Path, *, seconds: float = 3.0, rate: int = SAMPLE_RATE, frequency: float = 220.0, **kwargs):
    """A steady harmonic tone written with soundfile; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    time = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * sum(np.sin(2 * np.pi * frequency * k * time) / k for k in range(1, 4))
    soundfile.write(path, tone.astype(np.float32), rate, **kwargs)
    return path


def labelled_folder(root: Path, *, files_per_label: int = 4) -> Path:
    """Two label folders of steady tones at several rates and formats, one nested deeper."""
    formats = [(".wav", 44_100), (".flac", 22_050), (".ogg", 16_000), (".wav", 8_000)]
    for label, frequency in (("low", 110.0), ("high", 440.0)):
        for index in range(files_per_label):
            extension, rate = formats[index % len(formats)]
            folder = root / label / ("live" if index == 0 else "")
            write_tone(folder / f"{label}{index}{extension}", rate=rate, frequency=frequency * (1 + index / 10))
    return root


def prepare(source: Path, tmp_path: Path, config=SMALL, **kwargs) -> collection.PreparationReport:
    return collection.prepare_collection(source, tmp_path / "prepared", config, progress=False, **kwargs)


# --- what a user's disk holds: one line per bad file, the rest goes on -----------------------------


def test_truncated_wav_is_caught_by_its_header(tmp_path):
    path = write_tone(tmp_path / "cut.wav")
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])
    assert audio.wav_declared_frames(path) == 3 * SAMPLE_RATE
    with pytest.raises(AudioInputError, match=r"truncated: the header declares 48000 frames but only \d+ are present"):
        audio.load_audio(path, sample_rate=SAMPLE_RATE)


def test_float_samples_beyond_full_scale_are_scaled_with_a_warning(tmp_path, caplog):
    path = tmp_path / "hot.wav"
    soundfile.write(path, 400 * harmonic_tone(), SAMPLE_RATE, subtype="FLOAT")
    with caplog.at_level(logging.WARNING):
        waveform = audio.load_audio(path, sample_rate=SAMPLE_RATE)
    assert np.max(np.abs(waveform)) <= 1.0
    assert "outside [-1, 1]" in caplog.text and "hot.wav" in caplog.text


def test_dc_only_file_is_refused_and_dc_offset_is_removed(tmp_path):
    dc_only = tmp_path / "dc.wav"
    soundfile.write(dc_only, np.full(SAMPLE_RATE, 0.25, dtype=np.float32), SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioInputError, match=r"only a DC offset \(\+0.25\)"):
        audio.load_audio(dc_only, sample_rate=SAMPLE_RATE)
    offset = tmp_path / "offset.wav"
    soundfile.write(offset, harmonic_tone(seconds=2.0) + 0.3, SAMPLE_RATE, subtype="FLOAT")
    stream = audio.AudioStream(offset, sample_rate=SAMPLE_RATE)
    cleaned = np.concatenate(list(stream))
    stream.finish()
    assert abs(float(np.mean(cleaned[SAMPLE_RATE // 2 :]))) < 0.01  # the offset is gone after the blocker settles
    assert any("DC offset of +0.3" in note for note in stream.notes())


def test_broken_link_unreadable_file_and_unsupported_format_are_named(tmp_path, monkeypatch):
    link = tmp_path / "gone.wav"
    os.symlink(tmp_path / "deleted.wav", link)
    with pytest.raises(AudioInputError, match="broken symbolic link"):
        audio.check_file(link)
    m4a = tmp_path / "phone.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    with pytest.raises(AudioInputError, match=r"format not supported .* convert it with ffmpeg"):
        audio.check_file(m4a)
    locked = write_tone(tmp_path / "locked.wav")
    real_open = Path.open

    def refuse(self, *args, **kwargs):  # root can read anything, so the refusal is simulated
        if self.name == "locked.wav":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(AudioInputError, match="permission denied") as caught:
        audio.check_file(locked)
    assert "locked.wav" in str(caught.value)


def test_folder_reports_every_bad_file_in_one_line_and_a_summary(tmp_path, caplog):
    source = labelled_folder(tmp_path / "music")
    write_tone(tmp_path / "music" / "low" / "cut.wav")
    cut = tmp_path / "music" / "low" / "cut.wav"
    cut.write_bytes(cut.read_bytes()[:5000])
    (tmp_path / "music" / "high" / "phone.m4a").write_bytes(b"m4a")
    (tmp_path / "music" / "high" / "liner.txt").write_text("not audio")
    os.symlink(tmp_path / "nowhere.flac", tmp_path / "music" / "high" / "gone.flac")
    soundfile.write(tmp_path / "music" / "low" / "dc.wav", np.full(20_000, 0.2), SAMPLE_RATE)
    with caplog.at_level(logging.WARNING):
        report = prepare(source, tmp_path)
    assert sorted(report.skipped) == ["high/gone.flac", "high/liner.txt", "high/phone.m4a", "low/cut.wav", "low/dc.wav"]
    for name in report.skipped:
        assert sum(name in line for line in caplog.text.splitlines()) == 1
    assert "skipped 5 bad file(s)" in report.summary() and "1 truncated" in report.summary()
    assert report.skipped_kinds == {  # named where each error is raised, not read back from its message
        "high/gone.flac": "broken symbolic link",
        "high/liner.txt": "not an audio file extension",
        "high/phone.m4a": "format not supported",
        "low/cut.wav": "truncated",
        "low/dc.wav": "only a DC offset",
    }
    assert set(report.skipped_kinds.values()) <= set(collection.PROBLEM_KINDS)
    assert report.files_prepared == 8


def test_a_failing_resampler_or_memory_error_in_one_file_does_not_stop_the_folder(tmp_path, monkeypatch):
    source = labelled_folder(tmp_path / "music")
    real_resample = audio.AudioStream._resample

    def flaky(self, resampler, mono, *, last):
        if "high1" in self.name:
            raise MemoryError
        if "low1" in self.name and resampler is not None:
            return real_resample(self, _Broken(), mono, last=last)
        return real_resample(self, resampler, mono, last=last)

    monkeypatch.setattr(audio.AudioStream, "_resample", flaky)
    report = prepare(source, tmp_path)
    assert report.skipped == {
        "high/high1.flac": "ran out of memory while decoding it",
        "low/low1.flac": "resampling from 22050 Hz to 16000 Hz failed (soxr refused)",
    }
    assert report.skipped_kinds == {"high/high1.flac": "memory", "low/low1.flac": "resampling"}
    dataset = collection.load_collection(tmp_path / "prepared")
    assert not {"high/high1.flac", "low/low1.flac"} & {row["file"] for row in dataset.manifest}


class _Broken:
    def resample_chunk(self, *args, **kwargs):
        raise RuntimeError("soxr refused")


def test_a_long_recording_is_decoded_in_blocks(tmp_path):
    path = tmp_path / "long.wav"
    rate, seconds = 8_000, 600  # ten minutes: 38 MB as float32, 77 MB resampled to 16 kHz
    with soundfile.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as handle:
        for minute in range(seconds // 60):
            handle.write(0.2 * np.sin(np.arange(60 * rate) * (0.05 + minute / 1000)))
    tracemalloc.start()
    stream = audio.AudioStream(path, sample_rate=SAMPLE_RATE, block_seconds=10.0)
    total = sum(block.size for block in stream)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stream.finish()
    assert abs(total - seconds * SAMPLE_RATE) < SAMPLE_RATE
    assert peak < 8 * 2**20, f"decoding held {peak / 2**20:.1f} MiB at once"


# --- labels, splits, the manifest ------------------------------------------------------------------


def test_labels_come_from_the_first_level_and_splits_are_by_file(tmp_path):
    source = labelled_folder(tmp_path / "music", files_per_label=6)
    prepare(source, tmp_path)
    dataset = collection.load_collection(tmp_path / "prepared")
    assert dataset.labels == ("high", "low")
    assert {row["label"] for row in dataset.manifest if row["file"].startswith("low/live/")} == {"low"}
    split_of_file = {}
    for row in dataset.manifest:
        assert split_of_file.setdefault(row["file"], row["split"]) == row["split"], "a file in two splits"
    for label in dataset.labels:
        assert {split for name, split in split_of_file.items() if name.startswith(label)} == {"train", "valid", "test"}
    waveforms, rows = dataset.split("train")
    assert waveforms.shape == (len(rows), SAMPLE_RATE) and waveforms.dtype == np.float32
    assert dataset.split("heldout")[0].shape == (0, SAMPLE_RATE)
    levels = 20 * np.log10(np.sqrt(np.mean(np.square(waveforms), axis=1)))
    assert np.allclose(levels, SMALL.target_rms_db, atol=1.0)  # steady tones: each file brought to -20 dBFS


def test_a_label_with_too_few_files_to_split_is_left_out_of_label_splits(tmp_path):
    source = labelled_folder(tmp_path / "music", files_per_label=6)
    for index in range(2):  # a third label of two files: both go to train, none to test
        write_tone(source / "rare" / f"take{index}.wav", frequency=330.0)
    prepare(source, tmp_path)
    dataset = collection.load_collection(tmp_path / "prepared")
    assert dataset.labels == ("high", "low", "rare")
    labels, waveforms, rows = dataset.label_splits()
    assert labels == ("high", "low")
    assert {row["label"] for row in rows["train"]} == {"high", "low"} and len(waveforms["train"]) == len(rows["train"])
    every_train = dataset.split("train")[1]
    assert len(rows["train"]) == sum(row["label"] != "rare" for row in every_train) < len(every_train)
    assert dataset.label_splits(required=("train",))[0] == ("high", "low", "rare")


def test_flat_folder_has_one_label_and_too_few_files_are_refused(tmp_path):
    for index in range(3):
        write_tone(tmp_path / "flat" / f"take{index}.wav")
    prepare(tmp_path / "flat", tmp_path)
    assert collection.load_collection(tmp_path / "prepared").labels == ("flat",)
    write_tone(tmp_path / "pair" / "a.wav")
    write_tone(tmp_path / "pair" / "b.wav")
    with pytest.raises(AudioInputError, match="cannot split 2 usable file"):
        collection.prepare_collection(tmp_path / "pair", tmp_path / "other", SMALL, progress=False)


def test_silent_passages_are_dropped_and_clips_follow_the_hop(tmp_path):
    tone = 0.3 * np.sin(np.arange(2 * SAMPLE_RATE) * 0.1)
    for index in range(3):
        path = tmp_path / "music" / f"take{index}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, np.concatenate([tone, np.zeros(2 * SAMPLE_RATE), tone]), SAMPLE_RATE)
    config = collection.CollectionConfig(shard_clips=8, hop_seconds=0.5)
    collection.prepare_collection(tmp_path / "music", tmp_path / "prepared", config, progress=False)
    rows = collection.load_collection(tmp_path / "prepared").manifest
    starts = sorted({row["start_seconds"] for row in rows})
    assert starts == [0.0, 0.5, 1.0, 1.5, 3.5, 4.0, 4.5, 5.0]  # clips at 2.0, 2.5, 3.0 hold only silence
    cutter = decoding.ClipCutter(4, 3)
    clips = [start for block in np.split(np.arange(20.0), 5) for _, start in cutter.push(block)]
    assert clips == [0, 3, 6, 9, 12, 15]


# --- resumption, caching, memory -------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["beam", "local"])
def test_an_interrupted_preparation_resumes_and_matches_an_uninterrupted_one(tmp_path, monkeypatch, engine):
    monkeypatch.setenv("LML_PREPARE_ENGINE", engine)
    source = labelled_folder(tmp_path / "music", files_per_label=5)
    whole = collection.prepare_collection(source, tmp_path / "whole", SMALL, progress=False)
    real_add = collection._add_file
    calls = []

    def interrupt(task, *args):
        calls.append(task)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_add(task, *args)

    monkeypatch.setattr(collection, "_add_file", interrupt)
    with pytest.raises(KeyboardInterrupt):
        collection.prepare_collection(source, tmp_path / "resumed", SMALL, progress=False)
    monkeypatch.setattr(collection, "_add_file", real_add)
    resumed = collection.prepare_collection(source, tmp_path / "resumed", SMALL, progress=False)
    assert resumed.files_reused >= 1 and resumed.files_reused + resumed.files_prepared == whole.files_prepared
    first, second = (collection.load_collection(tmp_path / name) for name in ("whole", "resumed"))
    assert [(r["file"], r["start_seconds"], r["split"]) for r in first.manifest] == [
        (r["file"], r["start_seconds"], r["split"]) for r in second.manifest
    ]
    assert np.array_equal(first.split("train")[0], second.split("train")[0])


def test_an_unchanged_folder_is_not_prepared_again_and_new_files_are_added(tmp_path):
    source = labelled_folder(tmp_path / "music")
    first = prepare(source, tmp_path)
    assert prepare(source, tmp_path).up_to_date
    write_tone(source / "low" / "new.flac", frequency=123.0)
    again = prepare(source, tmp_path)
    assert (again.files_reused, again.files_prepared) == (first.files_prepared, 1)
    assert "low/new.flac" in {row["file"] for row in collection.load_collection(tmp_path / "prepared").manifest}


def test_peak_memory_stays_flat_when_the_collection_doubles(tmp_path):
    """A few hundred short files in several formats and rates, some broken: doubling them must not
    raise the peak of Python-visible memory (numpy included) by more than a few MiB."""

    def collection_of(folder: Path, count: int) -> Path:
        formats = [(".wav", 44_100, {}), (".flac", 22_050, {}), (".ogg", 16_000, {}), (".wav", 48_000, {})]
        for index in range(count):
            extension, rate, options = formats[index % len(formats)]
            write_tone(
                folder / f"g{index % 3}" / f"f{index:04d}{extension}", rate=rate, frequency=100 + index, **options
            )
            if index % 25 == 0:
                (folder / f"g{index % 3}" / f"broken{index}.wav").write_bytes(b"RIFF\x00\x00")
        return folder

    def peak_of(count: int) -> float:
        source = collection_of(tmp_path / f"c{count}", count)
        config = collection.CollectionConfig(shard_clips=64)
        gc.collect()  # garbage of earlier tests stays out of the peak
        tracemalloc.start()
        report = collection.prepare_collection(source, tmp_path / f"p{count}", config, progress=False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert report.clips == 3 * count and len(report.skipped) == (count + 24) // 25
        return peak / 2**20

    peak_of(12)  # first use: caches and one-time allocations (librosa's filters, soxr) stay out of the comparison
    small, large = peak_of(150), peak_of(300)
    # Holding the clips would add 3 clips x 64 KiB per file: 28 MiB for the extra 150 files. Within one
    # run of the whole suite the peak has moved by up to 8 MiB between sizes for reasons of the allocator's.
    assert large - small < 12, f"peak grew from {small:.1f} MiB to {large:.1f} MiB"


def test_dataset_paths_keep_every_dataset_apart(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.DATASET_ENV_VAR, "notes")
    assert paths.outputs_dir(smoke=False) == paths.PROJ_ROOT / "outputs"
    monkeypatch.setenv(paths.DATASET_ENV_VAR, str(tmp_path / "My Music"))
    slug = paths.dataset_slug()
    assert slug.startswith("My_Music-") and len(slug) == len("My_Music-") + 8
    assert paths.outputs_dir(smoke=False) == paths.PROJ_ROOT / "outputs" / "datasets" / slug
    assert paths.outputs_dir(smoke=True) == paths.PROJ_ROOT / "outputs" / "smoke" / "datasets" / slug
    assert paths.data_dir() == paths.PROJ_ROOT / "data" / "folders" / slug
    assert paths.dataset_slug(str(tmp_path / "other" / "My Music")) != slug


def test_clip_length_is_a_property_of_the_dataset(monkeypatch, tmp_path):
    from lib.data.dataset import clip_config, load_dataset

    monkeypatch.setenv(paths.DATASET_ENV_VAR, str(tmp_path / "My Music"))
    one_second = paths.dataset_slug()
    monkeypatch.setenv(paths.CLIP_SECONDS_ENV_VAR, "4")
    assert paths.dataset_slug() == one_second + "-4s"  # phrases are another dataset: nothing is overwritten
    assert paths.data_dir() == paths.PROJ_ROOT / "data" / "folders" / (one_second + "-4s")
    config = clip_config()
    assert (config.clip_seconds, config.hop_seconds, config.clip_samples) == (4.0, 2.0, 64_000)
    monkeypatch.setenv(paths.DATASET_ENV_VAR, "genres")
    assert paths.dataset_slug() == "genres-4s" and paths.data_dir(smoke=False) == paths.PROJ_ROOT / "data" / "genres-4s"
    assert paths.outputs_dir(smoke=False, dataset="notes") == paths.PROJ_ROOT / "outputs"
    monkeypatch.setenv(paths.CLIP_SECONDS_ENV_VAR, "")
    assert (clip_config().clip_seconds, clip_config().hop_seconds) == (1.0, 1.0)
    for text, message in (("four", "not a number"), ("60", "outside")):
        monkeypatch.setenv(paths.CLIP_SECONDS_ENV_VAR, text)
        with pytest.raises(ValueError, match=message):
            paths.clip_seconds_choice()
    monkeypatch.setenv(paths.DATASET_ENV_VAR, "notes")
    monkeypatch.setenv(paths.CLIP_SECONDS_ENV_VAR, "4")
    with pytest.raises(ValueError, match="one-second notes"):
        load_dataset(build=False)


def test_what_is_not_made_yet_is_not_bad_input(tmp_path):
    with pytest.raises(NotReadyError, match="make data DATASET=<folder>") as caught:
        collection.load_collection(tmp_path)
    assert not isinstance(caught.value, AudioInputError)
