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
