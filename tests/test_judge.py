"""Generation metrics against known cases, and the classifier's shape."""

from __future__ import annotations

import numpy as np
import pytest

from lib.models import judge


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


def _with_covariance(rng, count: int, mean, covariance) -> np.ndarray:
    """Samples whose sample mean and covariance are exactly ``mean`` and ``covariance``."""
    raw = rng.standard_normal((count, len(mean)))
    raw -= raw.mean(axis=0)
    whitened = raw @ np.linalg.inv(np.linalg.cholesky(np.cov(raw, rowvar=False))).T
    return whitened @ np.linalg.cholesky(covariance).T + mean


def test_frechet_distance_uses_the_full_covariances():
    # A = [[1, r], [r, 1]] and B = [[1, -r], [-r, 1]] commute with A B = (1 - r^2) I, so
    # Tr(A + B - 2 (A B)^(1/2)) = 4 - 4 sqrt(1 - r^2): 1.6 for r = 0.8. A diagonal-only version gives 0.
    rng = np.random.default_rng(3)
    first = _with_covariance(rng, 500, [0.0, 0.0], [[1.0, 0.8], [0.8, 1.0]])
    second = _with_covariance(rng, 700, [1.0, 2.0], [[1.0, -0.8], [-0.8, 1.0]])
    assert judge.frechet_distance(first, second) == pytest.approx(5.0 + 1.6, abs=1e-6)


def test_ndb_counts_the_bins_that_differ():
    # Four tight, far-apart clusters: k-means finds them, so the bins and shares are known. The
    # sample fills them 35 / 35 / 15 / 15 % against 25 % each: with 1600 reference and 400 sample
    # points, a two-proportion z-test flags a 10-point gap (z ~ 4.4) and passes a 0-point one.
    rng = np.random.default_rng(4)
    centres = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    reference = np.concatenate([centre + rng.normal(0, 0.1, (400, 2)) for centre in centres])
    bins = judge.NDBBins(reference, bins=4)
    lopsided = np.concatenate([c + rng.normal(0, 0.1, (n, 2)) for c, n in zip(centres, (140, 140, 60, 60))])
    even = np.concatenate([c + rng.normal(0, 0.1, (100, 2)) for c in centres])
    assert bins.compare(lopsided).different_bins == 4
    assert sorted(bins.compare(lopsided).sample_shares.round(2).tolist()) == [0.15, 0.15, 0.35, 0.35]
    assert bins.compare(even).different_bins == 0
    half = np.concatenate([c + rng.normal(0, 0.1, (n, 2)) for c, n in zip(centres, (110, 90, 100, 100))])
    assert bins.compare(half).different_bins == 0  # 27.5 / 22.5 %: within chance at these counts


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
