"""Generation metrics against known cases, and the classifier's shape."""

from __future__ import annotations

import numpy as np
import pytest

from lib import judge


def test_frechet_distance_known_cases():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((5000, 3))
    assert judge.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)
    # 1-D Gaussians: (m1 - m2)^2 + (s1 - s2)^2.
    first, second = rng.normal(0.0, 1.0, (20000, 1)), rng.normal(3.0, 2.0, (20000, 1))
    assert judge.frechet_distance(first, second) == pytest.approx(9.0 + 1.0, rel=0.03)
    # Shifting every dimension by 1 adds d to the distance.
    assert judge.frechet_distance(features, features + 1.0) == pytest.approx(3.0, abs=1e-6)
    with pytest.raises(ValueError, match="equal d"):
        judge.frechet_distance(features, features[:, :2])


def test_ndb_identical_versus_shifted():
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((4000, 2))
    bins = judge.NDBBins(reference, bins=10)
    same = bins.compare(rng.standard_normal((2000, 2)))
    shifted = bins.compare(rng.standard_normal((2000, 2)) + 1.5)
    assert same.ndb_over_k <= 0.2
    assert shifted.ndb_over_k >= 0.6
    assert same.sample_shares.sum() == pytest.approx(1.0)


def test_entropy_bits():
    assert judge.entropy_bits(np.array([0, 1, 2, 3]), 4) == pytest.approx(2.0)
    assert judge.entropy_bits(np.array([2, 2, 2]), 4) == pytest.approx(0.0)


def test_classifier_outputs_and_features():
    model = judge.build_classifier(512, 64, pitch_classes=5, family_classes=3, width=16)
    spectrograms = np.random.default_rng(2).random((4, 512, 64)).astype(np.float32)
    verdict = judge.judge(model, spectrograms)
    assert verdict.features.shape == (4, 16)
    assert verdict.pitch.shape == (4,) and verdict.pitch.max() < 5 and verdict.family.max() < 3
