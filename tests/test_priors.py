"""The ex-post priors: the mixture (sampling, density, fitting, plain-array storage) and the per-label Gaussians."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lib.models.priors import LabelGaussians, MixturePrior


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


def _two_labels(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    first = rng.multivariate_normal([0.0, 0.0, 0.0], np.diag([1.0, 0.25, 4.0]), size=4000)
    second = rng.multivariate_normal([3.0, -1.0, 0.5], [[2.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 0.5]], size=4000)
    return np.concatenate([first, second]), np.array(["a"] * 4000 + ["b"] * 4000)


def test_label_gaussians_sample_where_each_label_lies():
    latents, labels = _two_labels(np.random.default_rng(0))
    gaussians = LabelGaussians.fit(latents, labels, ("a", "b"))
    drawn = gaussians.sample("b", 20000, seed=1)
    np.testing.assert_allclose(drawn.mean(axis=0), [3.0, -1.0, 0.5], atol=0.08)
    np.testing.assert_allclose(np.cov(drawn, rowvar=False), gaussians.covariances[1], atol=0.1)
    cooler = gaussians.sample("b", 20000, seed=1, temperature=0.5)  # the same draws, half as far from the mean
    np.testing.assert_allclose(cooler - gaussians.means[1], 0.5 * (drawn - gaussians.means[1]), atol=1e-5)
    np.testing.assert_allclose(
        gaussians.sample("b", 3, temperature=0.0), np.tile(gaussians.means[1], (3, 1)), atol=1e-6
    )
    with pytest.raises(ValueError, match="temperature"):
        gaussians.sample("b", 3, temperature=-1.0)
    pooled = LabelGaussians.fit(latents, labels, ("a", "missing"))  # too few latents: the Gaussian of them all
    np.testing.assert_allclose(pooled.means[1], latents.mean(axis=0))
    with pytest.raises(ValueError, match="at least 2"):
        LabelGaussians.fit(latents[:1], labels[:1], ("a",))


def test_label_gaussians_transport_moves_one_cloud_onto_the_other_and_keeps_order():
    latents, labels = _two_labels(np.random.default_rng(0))
    gaussians = LabelGaussians.fit(latents, labels, ("a", "b"))
    sources = latents[labels == "a"]
    moved = gaussians.transport(sources, ["a"] * len(sources), ["b"] * len(sources))
    np.testing.assert_allclose(moved.mean(axis=0), gaussians.means[1], atol=1e-3)
    np.testing.assert_allclose(np.cov(moved, rowvar=False), gaussians.covariances[1], atol=1e-3)
    matrix = gaussians.transport_map("a", "b")
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-9)  # the optimal map is a symmetric positive definite one
    assert np.all(np.linalg.eigvalsh(matrix) > 0)
    np.testing.assert_allclose(gaussians.transport_map("a", "a"), np.eye(3), atol=1e-9)
    np.testing.assert_allclose(gaussians.transport(sources[:5], ["a"] * 5, ["a"] * 5), sources[:5], atol=1e-5)


def test_label_gaussians_draw_each_request_from_its_label():
    latents, labels = _two_labels(np.random.default_rng(0))
    gaussians = LabelGaussians.fit(latents, labels, ("a", "b"))
    drawn = gaussians.sample_labels(["b", "a"] * 3000, seed=2)
    np.testing.assert_allclose(drawn[0::2].mean(axis=0), gaussians.means[1], atol=0.1)
    np.testing.assert_allclose(drawn[1::2].mean(axis=0), gaussians.means[0], atol=0.1)
    with pytest.raises(ValueError, match="no Gaussian"):
        gaussians.sample_labels(["c"])


def test_label_gaussians_draw_latents_that_agree_with_the_covariates_asked_for():
    rng = np.random.default_rng(3)
    covariates = rng.standard_normal((6000, 1))  # e.g. a standardised loudness
    latents = np.concatenate(
        [2.0 * covariates + 0.1 * rng.standard_normal((6000, 1)), rng.standard_normal((6000, 1))], 1
    )
    labels = np.array(["a", "b"] * 3000)
    latents[labels == "b", 1] += 5.0
    gaussians = LabelGaussians.fit(latents, labels, ("a", "b"), covariates=covariates)
    asked = np.full((4000, 1), 1.5)
    drawn = gaussians.sample("b", 4000, seed=1, covariates=asked)
    np.testing.assert_allclose(drawn.mean(axis=0), [3.0, 5.0], atol=0.06)  # 2 x 1.5, and label b's offset
    assert drawn[:, 0].std() < 0.15  # the covariate pins the first number down
    with pytest.raises(ValueError, match="covariates of shape"):
        gaussians.sample("b", 3, seed=1)
    sources, source_covariates = latents[labels == "a"][:4], covariates[labels == "a"][:4]
    moved = gaussians.transport(sources, ["a"] * 4, ["b"] * 4, covariates=source_covariates)
    np.testing.assert_allclose(moved[:, 1] - sources[:, 1], 5.0, atol=0.2)  # moved by the labels' difference
    np.testing.assert_allclose(moved[:, 0], sources[:, 0], atol=0.2)  # what the covariate says stays
