"""Priors fitted after training: a Gaussian mixture on the latents the encoder actually uses.

A VAE's samples are only as good as the match between the prior it samples and the
*aggregate posterior* (where the encoder puts real clips). On the notes the main factor,
which instrument, is categorical, so the aggregate posterior is a set of clusters and a
single N(0, I) puts mass between them. Fitting a Gaussian mixture to the training latents
after training ("ex-post density estimation", Ghosh et al., 2020, *From Variational to
Deterministic Autoencoders*) samples where the clusters are. The same recipe applies to a
plain autoencoder's latents, which makes it the baseline a VAE has to beat.

How many components is a choice made by measurement on held-out clips (see
``lib.measure.evaluation.choose_by_frechet``), with a guard against copying the training set: a
component per training clip would otherwise win. Parameters are saved as ``.npy`` arrays,
never pickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture

from lib.core.fileio import load_json, load_npy, save_json, save_npy


@dataclass
class MixturePrior:
    """A Gaussian mixture over latent vectors.

    ``weights`` [shape=(k,)] sum to 1; ``means`` [shape=(k, latent_dim)];
    ``covariances`` [shape=(k, latent_dim, latent_dim)], symmetric positive definite.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, dtype=np.float64)
        self.means = np.asarray(self.means, dtype=np.float64)
        self.covariances = np.asarray(self.covariances, dtype=np.float64)
        k, d = self.means.shape
        if self.weights.shape != (k,) or self.covariances.shape != (k, d, d):
            raise ValueError(
                f"inconsistent shapes: weights {self.weights.shape}, means {self.means.shape}, "
                f"covariances {self.covariances.shape}"
            )
        if np.any(self.weights < 0) or not np.isclose(self.weights.sum(), 1.0):
            raise ValueError(f"weights must be non-negative and sum to 1, got sum {self.weights.sum()}")
        self.cholesky = np.linalg.cholesky(self.covariances)  # raises for a covariance that is not positive definite

    @property
    def components(self) -> int:
        """Number of mixture components."""
        return int(len(self.weights))

    @property
    def latent_dim(self) -> int:
        """Numbers per latent vector."""
        return int(self.means.shape[1])

    @classmethod
    def fit(cls, latents: np.ndarray, components: int, *, seed: int = 0, regularisation: float = 1e-4) -> MixturePrior:
        """Fit ``components`` full-covariance Gaussians to latents [shape=(n, latent_dim)] (EM, k-means start)."""
        latents = np.asarray(latents, dtype=np.float64)
        if latents.ndim != 2 or not 1 <= components <= len(latents):
            raise ValueError(f"need 1..n components for latents of shape (n, d), got {components} for {latents.shape}")
        mixture = GaussianMixture(
            components, covariance_type="full", reg_covar=regularisation, n_init=1, random_state=seed, max_iter=200
        ).fit(latents)
        return cls(mixture.weights_, mixture.means_, mixture.covariances_)

    def sample(self, count: int, *, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
        """Draw ``count`` latents [shape=(count, latent_dim)]; ``temperature`` scales each component's spread."""
        if count < 0 or temperature < 0:
            raise ValueError(f"count and temperature must be >= 0, got {count} and {temperature}")
        rng = np.random.default_rng(seed)
        chosen = rng.choice(self.components, size=count, p=self.weights)
        noise = rng.standard_normal((count, self.latent_dim))
        draws = self.means[chosen] + temperature * np.einsum("nij,nj->ni", self.cholesky[chosen], noise)
        return draws.astype(np.float32)

    def log_likelihood(self, latents: np.ndarray) -> np.ndarray:
        """Log density (nats) of each latent [shape=(n, latent_dim)] -> [shape=(n,)]."""
        latents = np.asarray(latents, dtype=np.float64)
        if latents.ndim != 2 or latents.shape[1] != self.latent_dim:
            raise ValueError(f"expected latents of shape (n, {self.latent_dim}), got {latents.shape}")
        per_component = []
        for weight, mean, factor in zip(self.weights, self.means, self.cholesky):
            solved = np.linalg.solve(factor, (latents - mean).T)  # L^-1 (x - mu), [shape=(d, n)]
            log_determinant = 2 * np.log(np.diag(factor)).sum()
            per_component.append(
                np.log(weight)
                - 0.5 * (np.sum(solved**2, axis=0) + log_determinant + self.latent_dim * np.log(2 * np.pi))
            )
        return logsumexp(np.stack(per_component), axis=0)

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``weights.npy``, ``means.npy``, ``covariances.npy`` and ``prior.json`` into ``folder``."""
        folder = Path(folder)
        for name in ("weights", "means", "covariances"):
            save_npy(folder / f"{name}.npy", getattr(self, name), overwrite=overwrite)
        save_json(
            folder / "prior.json", {"components": self.components, "latent_dim": self.latent_dim}, overwrite=overwrite
        )
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> MixturePrior:
        """Read a prior written by :meth:`save` (plain ``.npy``, no pickle)."""
        folder = Path(folder)
        load_json(folder / "prior.json")  # fails clearly when the folder holds no prior
        return cls(*(load_npy(folder / f"{name}.npy") for name in ("weights", "means", "covariances")))


def _symmetric_power(matrix: np.ndarray, power: float) -> np.ndarray:
    """``matrix ** power`` for a symmetric positive definite matrix [shape=(d, d)], by its eigenvectors."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.maximum(values, 1e-12) ** power) @ vectors.T


@dataclass
class LabelGaussians:
    """One full-covariance Gaussian per label over latents: where an encoder puts each label's clips.

    ``names`` [labels]; ``means`` [shape=(labels, latent_dim + c)]; ``covariances`` [shape=(labels,
    latent_dim + c, latent_dim + c)]; the last ``c`` numbers are covariates (e.g. a clip's measured
    loudness, brightness and onset rate, standardised) when the Gaussians were fitted with them, and
    ``latent_dim`` says where the latent ends. Sampling a label's Gaussian draws latents where that
    label's training clips lie (an ex-post prior per label, as :class:`MixturePrior` is one for the
    whole set), where a conditional model's N(0, I) assumes every label fills the same space; with
    covariates, the latent is drawn given them (Gaussian conditioning), so that it agrees with the
    attributes a request asks for. :meth:`transport` moves latents of one label to another by the
    optimal-transport map between their Gaussians: the map that moves them least, so a latent keeps
    its place within its label's cloud (as whitening and colouring does in image style transfer).
    """

    names: tuple[str, ...]
    means: np.ndarray
    covariances: np.ndarray
    latent_dim: int

    @classmethod
    def fit(
        cls,
        latents: np.ndarray,
        labels: np.ndarray,
        names: tuple[str, ...] | list[str],
        *,
        covariates: np.ndarray | None = None,
        regularisation: float = 1e-4,
    ) -> LabelGaussians:
        """Mean and covariance (plus ``regularisation`` on the diagonal) of each label's latents [shape=(n, d)],
        joined by their ``covariates`` [shape=(n, c)] when given; a label with fewer than two latents gets the
        Gaussian of all of them."""
        latents, labels = np.asarray(latents, dtype=np.float64), np.asarray(labels)
        if latents.ndim != 2 or len(latents) != len(labels):
            raise ValueError(f"need latents of shape (n, d) and n labels, got {latents.shape} and {len(labels)}")
        joint = latents
        if covariates is not None:
            covariates = np.asarray(covariates, dtype=np.float64)
            if covariates.ndim != 2 or len(covariates) != len(latents):
                raise ValueError(f"need covariates of shape ({len(latents)}, c), got {covariates.shape}")
            joint = np.concatenate([latents, covariates], axis=1)
        means, covariances = [], []
        if len(joint) < 2:
            raise ValueError(f"a Gaussian needs at least 2 latents, got {len(joint)}")
        for name in names:
            members = joint[labels == name]
            if len(members) < 2:  # too few to fit (a label with one training clip): every label's clips together
                members = joint
            means.append(members.mean(axis=0))
            covariances.append(np.cov(members, rowvar=False) + regularisation * np.eye(joint.shape[1]))
        return cls(tuple(names), np.stack(means), np.stack(covariances), int(latents.shape[1]))

    def _conditional(self, name: str) -> tuple[int, np.ndarray | None, np.ndarray]:
        """Label ``name``'s index, the gain [shape=(d, c)] that maps covariates (less their mean) to the latent's
        mean (None without covariates), and the latent's covariance given the covariates [shape=(d, d)] (the
        same for every covariate value)."""
        if name not in self.names:
            raise ValueError(f"no Gaussian for label {name!r}; known: {list(self.names)}")
        index, d = self.names.index(name), self.latent_dim
        covariance = self.covariances[index]
        if covariance.shape[0] == d:
            return index, None, covariance
        gain = np.linalg.solve(covariance[d:, d:], covariance[d:, :d]).T
        return index, gain, covariance[:d, :d] - gain @ covariance[d:, :d]

    def _given(self, name: str, covariates: np.ndarray | None, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Label ``name``'s latent means [shape=(count, d)] given ``covariates`` [shape=(count, c)], and the
        latent covariance given them [shape=(d, d)]."""
        index, gain, covariance = self._conditional(name)
        mean, d = self.means[index], self.latent_dim
        if gain is None:
            if covariates is not None:
                raise ValueError("these Gaussians were fitted without covariates")
            return np.tile(mean, (count, 1)), covariance
        if covariates is None or np.shape(covariates) != (count, mean.shape[0] - d):
            raise ValueError(f"need covariates of shape ({count}, {mean.shape[0] - d}), got {np.shape(covariates)}")
        return mean[:d] + (np.asarray(covariates, dtype=np.float64) - mean[d:]) @ gain.T, covariance

    def sample(
        self,
        name: str,
        count: int,
        *,
        seed: int = 0,
        covariates: np.ndarray | None = None,
        temperature: float = 1.0,
    ) -> np.ndarray:
        """``count`` latents [shape=(count, latent_dim)] drawn from label ``name``'s Gaussian (given ``covariates``
        [shape=(count, c)] when the Gaussians hold them), its spread scaled by ``temperature`` (below 1: the
        truncation trick, more typical and less varied draws; 0: the mean)."""
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        means, covariance = self._given(name, covariates, count)
        noise = np.random.default_rng(seed).standard_normal((count, self.latent_dim))
        return (means + temperature * noise @ np.linalg.cholesky(covariance).T).astype(np.float32)

    def sample_labels(self, labels: list[str], *, seed: int = 0, covariates: np.ndarray | None = None) -> np.ndarray:
        """One latent per entry of ``labels`` [shape=(n, latent_dim)], each drawn from its label's Gaussian (given
        its row of ``covariates`` [shape=(n, c)] when the Gaussians hold them)."""
        labels = [str(label) for label in labels]
        unknown = sorted(set(labels) - set(self.names))
        if unknown:
            raise ValueError(f"no Gaussian for label(s) {unknown}; known: {list(self.names)}")
        drawn = np.zeros((len(labels), self.latent_dim), dtype=np.float32)
        for index, name in enumerate(self.names):
            positions = [position for position, label in enumerate(labels) if label == name]
            if positions:
                given = None if covariates is None else np.asarray(covariates)[positions]
                drawn[positions] = self.sample(name, len(positions), seed=seed + index, covariates=given)
        return drawn

    def transport_map(self, source: str, target: str) -> np.ndarray:
        """The matrix ``A`` of the optimal-transport map ``z -> mean_t + A (z - mean_s)`` [shape=(d, d)] from
        label ``source``'s latent Gaussian to ``target``'s (given the covariates, when they are held):
        ``A = S^-1/2 (S^1/2 T S^1/2)^1/2 S^-1/2``."""
        first, second = self._conditional(source)[2], self._conditional(target)[2]
        root, inverse_root = _symmetric_power(first, 0.5), _symmetric_power(first, -0.5)
        return inverse_root @ _symmetric_power(root @ second @ root, 0.5) @ inverse_root

    def transport(
        self, latents: np.ndarray, sources: list[str], targets: list[str], *, covariates: np.ndarray | None = None
    ) -> np.ndarray:
        """Latents [shape=(n, d)] of labels ``sources`` moved to labels ``targets`` (one pair per latent), given each
        latent's row of ``covariates`` [shape=(n, c)] when the Gaussians hold them (a label swap keeps them)."""
        latents = np.asarray(latents, dtype=np.float64)
        if latents.ndim != 2 or not len(latents) == len(sources) == len(targets):
            raise ValueError(
                f"need one source and target label per latent, got {latents.shape}, {len(sources)}, {len(targets)}"
            )
        moved = np.empty_like(latents)
        for pair in dict.fromkeys(zip(sources, targets, strict=True)):  # each pair's map once, for all its latents
            rows = [index for index, key in enumerate(zip(sources, targets)) if key == pair]
            given = None if covariates is None else np.asarray(covariates)[rows]
            source_means = self._given(pair[0], given, len(rows))[0]
            target_means = self._given(pair[1], given, len(rows))[0]
            moved[rows] = target_means + (latents[rows] - source_means) @ self.transport_map(*pair).T
        return moved.astype(np.float32)
