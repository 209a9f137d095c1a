"""Shared fixtures: small synthetic signals with known properties."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

pytest_plugins = ("pytester",)  # tests of the test set-up itself (a skip under CI)

SAMPLE_RATE = 16_000


def harmonic_tone(frequency: float = 220.0, seconds: float = 1.0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A decaying tone with a few harmonics, [shape=(seconds * sample_rate,)], peak about 0.5."""
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = sum(np.sin(2 * np.pi * frequency * k * time) / k for k in range(1, 6))
    envelope = np.exp(-2.0 * time) * np.minimum(1.0, time * 200)
    return (0.3 * tone * envelope).astype(np.float32)


def linear_model(inputs: int, outputs: int, kernel: np.ndarray, name: str) -> keras.Model:
    """A model that multiplies by a known matrix [shape=(inputs, outputs)]: its outputs are plain numpy."""
    layer_input = keras.Input((inputs,))
    layer = keras.layers.Dense(outputs, use_bias=False)
    model = keras.Model(layer_input, layer(layer_input), name=name)
    layer.set_weights([np.asarray(kernel, dtype=np.float32)])
    return model


@pytest.fixture
def tone() -> np.ndarray:
    return harmonic_tone()


@pytest.fixture
def noise() -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(SAMPLE_RATE)).astype(np.float32)


def under_ci() -> bool:
    """Is this run CI (``.ci/run`` exports ``CI=true``)? There a skipped test counts as a failure."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI, a test that skips fails instead, with its reason: CI must not pass what it did not run."""
    outcome = yield
    report = outcome.get_result()
    if under_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"
