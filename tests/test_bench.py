"""make bench: its figures are measured (a quick run in smoke mode) and its targets follow from them."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from lib.core.paths import PROJ_ROOT, metrics_path
from lib.lab import bench


def test_median_ignores_the_warm_up():
    calls = []

    def work():
        calls.append(1)

    assert bench.median_seconds(work, repeats=3) >= 0.0
    assert len(calls) == 4  # one warm-up, three timed


@pytest.fixture(scope="module")
def quick_record():
    environment = {**os.environ, "LML_SMOKE": "1", "LML_DATASET": "notes", "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(
        [sys.executable, "-m", "lib.lab.bench", "--quick"],
        cwd=PROJ_ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "x real time" in completed.stdout and "bench.json" in completed.stdout
    return json.loads(metrics_path("bench", smoke=True).read_text())


def test_quick_bench_measures_every_figure(quick_record):
    record = quick_record
    assert record["machine"]["cores"] >= 1 and record["machine"]["tensorflow"]
    for speeds in record["realtime"].values():
        assert set(speeds) == {"stft", "encoder", "decoder", "inversion", "end_to_end"}
        assert all(value > 0 for value in speeds.values())
        # No comparison between the timings: each is one noisy measurement here (repeats=1), and
        # on a busy machine the round trip has timed faster than its inversion step alone (CI, 97 vs 93x).
    rows = {(row["implementation"], row["init"], row["iterations"]): row for row in record["griffin_lim_sweep"]}
    assert (
        rows["lib.inversion", "gradient", 16]["log_mel_distance_db"]
        < rows["lib.inversion", "gradient", 4]["log_mel_distance_db"]
    )
    assert (
        rows["lib.inversion", "gradient", 4]["log_mel_distance_db"]
        < rows["lib.inversion", "random", 4]["log_mel_distance_db"]
    )
    assert ("librosa.griffinlim", "random", 32) in rows
    assert all(value > 0 for value in record["training_examples_per_second"].values())
    assert record["peak_memory_mib"]["training"] > record["peak_memory_mib"]["preparation"] > 50


def test_targets_follow_the_figures(quick_record):
    record = copy.deepcopy(quick_record)
    for speeds in record["realtime"].values():
        speeds["end_to_end"] = 150.0
    assert bench.targets(record)["end_to_end_100x_autoencoder"]
    record["realtime"]["vae"]["end_to_end"] = 99.0
    assert not bench.targets(record)["end_to_end_100x_vae"]
    assert bench.targets(record)["oracle_within_0_1_db_of_32_iterations"] is not None
    for row in record["griffin_lim_sweep"]:
        if row["implementation"] == "librosa.griffinlim":
            row["log_mel_distance_db"] = 0.0  # a perfect old-way figure: the default cannot be within 0.1 dB of it
    assert bench.targets(record)["oracle_within_0_1_db_of_32_iterations"] is False
