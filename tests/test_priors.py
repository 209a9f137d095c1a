"""The ex-post mixture prior: sampling statistics, density, fitting, plain-array storage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lib.models.priors import MixturePrior


def _two_clusters(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    first = rng.normal([-6.0, 0.0], 0.5, (int(count * 0.3), 2))
    second = rng.normal([6.0, 2.0], [1.0, 0.25], (count - len(first), 2))
    return np.concatenate([first, second])


def test_sampling_reproduces_weights_means_and_covariances():
    covariance = np.array([[2.0, 0.9], [0.9, 1.0]])
    prior = MixturePrior(
        np.array([0.25, 0.75]), np.array([[-10.0, 0.0], [10.0, 5.0]]), np.stack([covariance, np.eye(2) * 0.1])
    )
    draws = prior.sample(40_000, seed=1)
    first = draws[draws[:, 0] < 0]
    assert len(first) / len(draws) == pytest.approx(0.25, abs=0.01)
    assert first.mean(axis=0) == pytest.approx([-10.0, 0.0], abs=0.05)
    assert np.cov(first, rowvar=False) == pytest.approx(covariance, abs=0.06)  # correlation kept, not only the diagonal
    assert np.array_equal(prior.sample(3, temperature=0.0, seed=2)[:, 0] ** 2, np.full(3, 100.0))


def test_log_likelihood_matches_scipy():
    covariance = np.array([[1.5, -0.4], [-0.4, 0.7]])
    prior = MixturePrior(np.array([1.0]), np.array([[1.0, -1.0]]), covariance[None])
    points = np.random.default_rng(3).standard_normal((10, 2))
    expected = stats.multivariate_normal([1.0, -1.0], covariance).logpdf(points)
    assert prior.log_likelihood(points) == pytest.approx(expected, rel=1e-9)
    two = MixturePrior(np.array([0.5, 0.5]), np.array([[1.0, -1.0], [1.0, -1.0]]), np.stack([covariance] * 2))
    assert two.log_likelihood(points) == pytest.approx(expected, rel=1e-9)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="sum to 1"):
        MixturePrior(np.array([0.5, 0.6]), np.zeros((2, 2)), np.stack([np.eye(2)] * 2))
    with pytest.raises(ValueError, match="inconsistent"):
        MixturePrior(np.array([1.0]), np.zeros((1, 2)), np.eye(3)[None])
    with pytest.raises(np.linalg.LinAlgError):
        MixturePrior(np.array([1.0]), np.zeros((1, 2)), -np.eye(2)[None])


def test_fit_finds_the_clusters_and_scores_them_higher():
    prior = MixturePrior.fit(_two_clusters(600, 4), 2, seed=0)
    assert sorted(prior.weights.round(1).tolist()) == [0.3, 0.7]
    assert sorted(prior.means[:, 0].round(0).tolist()) == [-6.0, 6.0]
    held_out = _two_clusters(200, 5)
    single = MixturePrior.fit(_two_clusters(600, 4), 1, seed=0)
    assert prior.log_likelihood(held_out).mean() > single.log_likelihood(held_out).mean() + 1.0


def test_save_and_load_without_pickle(tmp_path):
    prior = MixturePrior.fit(_two_clusters(300, 6), 2, seed=0)
    loaded = MixturePrior.load(prior.save(tmp_path / "prior"))
    assert np.array_equal(loaded.means, prior.means) and np.array_equal(loaded.covariances, prior.covariances)
    assert np.array_equal(loaded.sample(5, seed=7), prior.sample(5, seed=7))
    with pytest.raises(FileExistsError):
        prior.save(tmp_path / "prior")
