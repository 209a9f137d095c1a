"""Preparation on Apache Beam (lib.data.engine) gives what preparation in one process gives: the same
shards, byte for byte, the same journal, manifest and representation; its unfinished work is redone."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lib.data import collection, decoding, engine

CONFIG = collection.CollectionConfig(shard_clips=8, hop_seconds=0.5)


def music_folder(root: Path) -> Path:
    """Three labels of files in several formats, rates and channel counts, with a broken and a short one."""
    formats = [(".wav", 44_100, 1), (".flac", 22_050, 2), (".ogg", 16_000, 1), (".wav", 48_000, 2)]
    for index in range(12):
        extension, rate, channels = formats[index % len(formats)]
        seconds = 2.0 + (index % 3)
        time = np.arange(int(seconds * rate)) / rate
        tone = 0.3 * np.sin(2 * np.pi * (110 + 30 * index) * time) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * time))
        samples = np.stack([tone, 0.5 * tone], axis=1) if channels == 2 else tone
        path = root / f"label{index % 3}" / f"piece{index:02d}{extension}"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, samples.astype(np.float32), rate)
    (root / "label0" / "broken.wav").write_bytes(b"RIFF\x00\x00")
    soundfile.write(root / "label1" / "short.wav", np.zeros(400, dtype=np.float32) + 0.1, 16_000)
    return root


def outputs(folder: Path) -> dict[str, object]:
    """Everything a preparation leaves that a stage reads, for comparison."""
    info = json.loads((folder / "collection.json").read_text())
    info.pop("last_preparation_seconds")
    return {
        "shards": {path.name: path.read_bytes() for path in sorted((folder / "shards").glob("*.npy"))},
        "manifest": (folder / "manifest.csv").read_bytes(),
        "journal": [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()],
        "representation": (folder / "representation.json").read_text(),
        "collection": info,
    }


def test_the_engine_prepares_what_one_process_prepares(tmp_path):
    source = music_folder(tmp_path / "music")
    here = collection.prepare_collection(source, tmp_path / "local", CONFIG, progress=False, engine="local")
    on_beam = collection.prepare_collection(source, tmp_path / "beam", CONFIG, progress=False, engine="beam")
    assert on_beam.engine_seconds > 0 and here.engine_seconds == 0
    assert (on_beam.clips, on_beam.files_prepared, on_beam.skipped) == (here.clips, here.files_prepared, here.skipped)
    assert set(here.skipped) == {"label0/broken.wav", "label1/short.wav"}
    local, beam = outputs(tmp_path / "local"), outputs(tmp_path / "beam")
    assert len(local["shards"]) > 3  # several shards, the last one partial
    assert local == beam
    assert not (tmp_path / "beam" / "work").exists()  # the workers' files go once the shards hold them


def test_unfinished_work_is_redone_and_finished_work_is_reused(tmp_path, monkeypatch):
    source = music_folder(tmp_path / "music")
    files = sorted(path for path in source.rglob("*") if path.is_file())
    names = [path.relative_to(source).as_posix() for path in files]
    tasks = [
        decoding.FileTask(str(path), name, collection.file_identity(path), collection.file_label(Path(name), "music"))
        for path, name in zip(files, names)
    ]
    work = tmp_path / "beam" / "work" / CONFIG.fingerprint()
    for task in tasks:  # an earlier run's workers finished these ...
        decoding.decode_to_work(task, CONFIG, work)
    unfinished = [tasks[1], tasks[4]]
    (work / f"{unfinished[0].work_name()}.json").unlink()  # ... but one stopped before its entry
    with (work / f"{unfinished[1].work_name()}.f32").open("r+b") as handle:  # ... and one lost clips
        handle.truncate(100)
    real = engine.decode_in_subprocess
    sent = []

    def recording(pending, *args, **kwargs):
        sent.extend(task.relative for task in pending)
        return real(pending, *args, **kwargs)

    monkeypatch.setattr(engine, "decode_in_subprocess", recording)
    collection.prepare_collection(source, tmp_path / "beam", CONFIG, progress=False, engine="beam")
    assert sorted(sent) == sorted(task.relative for task in unfinished)
    collection.prepare_collection(source, tmp_path / "local", CONFIG, progress=False, engine="local")
    assert outputs(tmp_path / "local") == outputs(tmp_path / "beam")


def test_a_files_work_goes_as_soon_as_its_journal_line_is_on_disk(tmp_path, monkeypatch):
    source = music_folder(tmp_path / "music")
    files = sorted(path for path in source.rglob("*") if path.is_file())
    work = tmp_path / "prepared" / "work" / CONFIG.fingerprint()
    for path in files:  # the workers finished every file (so no pipeline starts)
        name = path.relative_to(source).as_posix()
        label = collection.file_label(Path(name), "music")
        decoding.decode_to_work(decoding.FileTask(str(path), name, collection.file_identity(path), label), CONFIG, work)
    journal = tmp_path / "prepared" / "journal.jsonl"
    removed = []

    def checked(task, folder):
        lines = [json.loads(line)["file"] for line in journal.read_text().splitlines()]
        assert task.relative in lines and (folder / f"{task.work_name()}.json").exists()  # journaled, not yet gone
        removed.append(task.relative)
        decoding.remove_work(task, folder)
        assert len(list(folder.iterdir())) < 2 * len(files)  # the work folder shrinks as the shards fill

    monkeypatch.setattr(collection, "remove_work", checked)
    collection.prepare_collection(source, tmp_path / "prepared", CONFIG, progress=False, engine="beam")
    assert sorted(removed) == sorted(path.relative_to(source).as_posix() for path in files)  # bad files' too


def test_read_work_refuses_what_is_not_whole(tmp_path):
    path = tmp_path / "tone.wav"
    soundfile.write(path, 0.2 * np.sin(np.arange(40_000) / 5.0).astype(np.float32), 16_000)
    task = decoding.FileTask(str(path), "tone.wav", collection.file_identity(path), "tones")
    assert decoding.read_work(task, CONFIG, tmp_path / "work") is None
    entry = decoding.decode_to_work(task, CONFIG, tmp_path / "work")
    found, clips = decoding.read_work(task, CONFIG, tmp_path / "work")
    relabelled = decoding.FileTask(task.path, task.relative, task.identity, "other")
    assert decoding.read_work(relabelled, CONFIG, tmp_path / "work") is None
    assert found == entry and entry["clips"] == clips.shape[0] == len(entry["start"]) == 4
    assert clips.shape[1] == CONFIG.clip_samples and clips.dtype == np.float32
    kept = []
    assert decoding.decode_file(task, CONFIG, kept.append)["start"] == entry["start"]
    assert np.array_equal(np.stack(kept), clips)
    (tmp_path / "work" / f"{task.work_name()}.json").write_text("{torn")
    assert decoding.read_work(task, CONFIG, tmp_path / "work") is None


def test_options_and_engines_are_checked(tmp_path, monkeypatch):
    arguments = engine.pipeline_arguments(2, ["--runner=FlinkRunner", "--flink_master=host:8081"])
    assert arguments[:2] == ["--runner=DirectRunner", "--direct_num_workers=2"]
    assert arguments[-2:] == ["--runner=FlinkRunner", "--flink_master=host:8081"]  # later options win
    monkeypatch.setenv("LML_BEAM_OPTIONS", "--runner=SparkRunner --spark_master_url='spark://a b:7077'")
    assert engine.pipeline_arguments(1)[-2:] == ["--runner=SparkRunner", "--spark_master_url=spark://a b:7077"]
    with pytest.raises(ValueError, match="unknown preparation engine 'ray'"):
        collection.prepare_collection(tmp_path, tmp_path / "out", CONFIG, progress=False, engine="ray")


def test_a_failed_pipeline_stops_the_preparation_with_its_error(tmp_path, monkeypatch):
    source = music_folder(tmp_path / "music")

    def broken(*args, **kwargs):
        raise OSError("worker lost")

    monkeypatch.setattr(engine, "decode_in_subprocess", broken)
    with pytest.raises(RuntimeError, match="the Beam pipeline failed: worker lost"):
        collection.prepare_collection(source, tmp_path / "beam", CONFIG, progress=False, engine="beam")
    assert not (tmp_path / "beam" / "manifest.csv").exists()


def test_the_pipeline_runs_in_a_process_of_its_own_and_its_failure_is_told(tmp_path):
    path = tmp_path / "tone.wav"
    soundfile.write(path, 0.2 * np.sin(np.arange(40_000) / 5.0).astype(np.float32), 16_000)
    task = decoding.FileTask(str(path), "tone.wav", collection.file_identity(path), "tones")
    seconds = engine.decode_in_subprocess([task, task], CONFIG, tmp_path / "work", workers=1, options=[])
    assert seconds > 0 and decoding.read_work(task, CONFIG, tmp_path / "work") is not None
    with pytest.raises(RuntimeError, match="exit status") as raised:
        engine.decode_in_subprocess([task], CONFIG, tmp_path / "work", options=["--runner=NoSuchRunner"])
    assert "NoSuchRunner" in str(raised.value)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int, seconds: float) -> bool:
    """Whether something accepts connections on ``port`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


def test_the_pipeline_runs_on_a_pool_of_external_workers_as_a_cluster_runs_it(tmp_path):
    """Beam's portable job API with an EXTERNAL environment: the pipeline is sent as a job and its step runs
    in workers a pool on another port starts (`make beam-worker`), as on a Flink or Spark cluster."""
    source = music_folder(tmp_path / "music")
    port = free_port()
    pool_log = (tmp_path / "pool.log").open("w")
    pool = subprocess.Popen(
        engine.worker_pool_command(port), env=engine.worker_pool_environment(), start_new_session=True,
        stdout=pool_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    options = "--runner=PortableRunner --job_endpoint=embed --environment_type=EXTERNAL"
    options += f" --environment_config=localhost:{port}"
    script = (
        "import sys; from lib.data import collection; from tests.test_engine import CONFIG; "
        "collection.prepare_collection(sys.argv[1], sys.argv[2], CONFIG, progress=False, engine='beam')"
    )
    try:
        assert listening(port, 60), "the worker pool did not start"
        job = subprocess.Popen(
            [sys.executable, "-c", script, str(source), str(tmp_path / "cluster")],
            env={**os.environ, "LML_BEAM_OPTIONS": options, "PYTHONPATH": str(Path(__file__).parents[1])},
            start_new_session=True,
        )
        try:
            assert job.wait(timeout=240) == 0
        finally:  # a pipeline whose workers never start waits for ever: stop it with its engine
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
    finally:
        os.killpg(pool.pid, signal.SIGTERM)
        pool.wait(timeout=30)
        pool_log.close()
    assert "Starting worker" in (tmp_path / "pool.log").read_text()  # the pool's workers did the decoding
    collection.prepare_collection(source, tmp_path / "local", CONFIG, progress=False, engine="local")
    assert outputs(tmp_path / "cluster") == outputs(tmp_path / "local")
    with pytest.raises(ValueError, match="1-65535"):
        engine.worker_pool_command(70_000)
    environment = engine.worker_pool_environment({"PATH": "/usr/bin"})
    assert environment["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin"]
