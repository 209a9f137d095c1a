"""Training under tf.distribute: the strategy choice, and two workers on 127.0.0.1 that stay in step."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lib.models import distribute

ROOT = Path(__file__).resolve().parents[1]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for handle in sockets:
        handle.bind(("127.0.0.1", 0))
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


def test_strategy_choice(monkeypatch):
    monkeypatch.delenv(distribute.ENVIRONMENT_VARIABLE, raising=False)
    assert distribute.strategy_name() == "default"
    monkeypatch.setenv(distribute.ENVIRONMENT_VARIABLE, "mirrored")
    assert distribute.strategy_name() == "mirrored"
    monkeypatch.setenv(distribute.ENVIRONMENT_VARIABLE, "tpu-pod")
    with pytest.raises(ValueError, match="tpu-pod"):
        distribute.strategy_name()
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.make_strategy("multi-worker")
    assert distribute.describe(distribute.make_strategy("default"))["replicas"] == 1


def test_two_workers_train_in_step(tmp_path):
    """Two processes under MultiWorkerMirroredStrategy end with identical weights, and the loss fell."""
    ports = ",".join(str(port) for port in free_ports(2))
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.multi_worker", str(index), ports, str(tmp_path)],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(2)
    ]
    try:
        outputs = [worker.communicate(timeout=240)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
    first, second = (np.load(tmp_path / f"worker_{index}.npz") for index in range(2))
    assert int(first["replicas"]) == 2 and int(second["replicas"]) == 2
    names = sorted(name for name in first.files if name.startswith("weight_"))
    assert names and names == sorted(name for name in second.files if name.startswith("weight_"))
    for name in names:
        np.testing.assert_array_equal(first[name], second[name])
    np.testing.assert_array_equal(first["loss"], second["loss"])  # the same global mean on both
    assert first["loss"][-1] < 0.7 * first["loss"][0]
    assert first["val_loss"][-1] < first["val_loss"][0]
    np.testing.assert_allclose(first["predictions"], second["predictions"], rtol=1e-5, atol=1e-6)
