"""The coordinates every model works in: PCA of flattened training spectrograms.

:class:`SpectralBasis` is the linear baseline (keep the first ``k`` components) and, past it, the
space the autoencoders, VAEs and the whole-recording codec read and write. Saved as ``.npy``
arrays and JSON (no pickle).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from lib.core.fileio import load_json, load_npy, save_json, save_npy

# Up to this many spectrograms the basis is exact: the n x n Gram matrix (float64) takes n^2 x 8 bytes
# (0.5 GB at 8,192) and its eigendecomposition seconds; beyond, randomized PCA keeps memory and time bounded.
EXACT_MAX_SPECTROGRAMS = 8192


@dataclass
class SpectralBasis:
    """PCA of flattened training spectrograms: the linear baseline and the models' coordinates.

    ``components`` [shape=(size, frequency_bins * frames)] are orthonormal rows sorted by
    explained variance; ``mean`` [shape=(frequency_bins * frames,)]; ``explained_variance``
    [shape=(size,)]; ``shape`` is the (frequency_bins, frames) of one spectrogram.
    """

    components: np.ndarray
    mean: np.ndarray
    explained_variance: np.ndarray
    shape: tuple[int, int]

    @property
    def size(self) -> int:
        """Number of components."""
        return int(self.components.shape[0])

    @classmethod
    def fit(cls, spectrograms: np.ndarray, size: int, *, seed: int = 0) -> SpectralBasis:
        """Fit ``size`` components to spectrograms [shape=(n, frequency_bins, frames)].

        Exact when there are at most :data:`EXACT_MAX_SPECTROGRAMS` of them (the eigenvectors of
        the n x n Gram matrix: every component the data hold, with no randomness, in seconds); a
        larger set, or one whose variance ends before ``size`` components, takes randomized PCA with
        ``seed``.
        """
        spectrograms = np.asarray(spectrograms, dtype=np.float32)
        if spectrograms.ndim != 3:
            raise ValueError(f"expected spectrograms of shape (n, frequency_bins, frames), got {spectrograms.shape}")
        if not 1 <= size <= min(spectrograms.shape[0], spectrograms.shape[1] * spectrograms.shape[2]):
            raise ValueError(f"size {size} must lie in 1..min(n, features) for {spectrograms.shape[0]} spectrograms")
        flat = spectrograms.reshape(len(spectrograms), -1)
        fitted = _exact_pca(flat, size) if len(flat) <= EXACT_MAX_SPECTROGRAMS else None
        if fitted is None:
            pca = PCA(size, svd_solver="randomized", random_state=seed).fit(flat)
            fitted = pca.mean_, pca.components_, pca.explained_variance_
        mean, components, variance = fitted
        return cls(
            components.astype(np.float32),
            mean.astype(np.float32),
            variance.astype(np.float32),
            (int(spectrograms.shape[1]), int(spectrograms.shape[2])),
        )

    def fingerprint(self) -> str:
        """Short hash of the basis's numbers: models trained in another basis must not be reused."""
        digest = hashlib.sha256()
        for array in (self.components, self.mean, self.explained_variance):
            digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
        return digest.hexdigest()[:16]

    def transform(self, spectrograms: np.ndarray) -> np.ndarray:
        """Spectrograms [shape=(n, frequency_bins, frames)] to coefficients [shape=(n, size)]."""
        spectrograms = np.asarray(spectrograms, dtype=np.float32)
        if spectrograms.shape[1:] != self.shape:
            raise ValueError(f"expected spectrograms of shape (n, {self.shape}), got {spectrograms.shape}")
        return (spectrograms.reshape(len(spectrograms), -1) - self.mean) @ self.components.T

    def inverse(self, coefficients: np.ndarray, *, keep: int | None = None) -> np.ndarray:
        """Coefficients [shape=(n, size)] to spectrograms in [0, 1], using the first ``keep`` only."""
        coefficients = np.asarray(coefficients, dtype=np.float32)
        keep = self.size if keep is None else keep
        if not 1 <= keep <= self.size:
            raise ValueError(f"keep must lie in 1..{self.size}, got {keep}")
        flat = coefficients[:, :keep] @ self.components[:keep] + self.mean
        return np.clip(flat, 0.0, 1.0).reshape(len(coefficients), *self.shape)

    def reconstruct(self, spectrograms: np.ndarray, keep: int) -> np.ndarray:
        """The PCA baseline: project onto the first ``keep`` components and back."""
        return self.inverse(self.transform(spectrograms)[:, :keep], keep=keep)

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Store as ``.npy`` arrays plus a JSON description (no pickle)."""
        folder = Path(folder)
        save_npy(folder / "components.npy", self.components, overwrite=overwrite)
        save_npy(folder / "mean.npy", self.mean, overwrite=overwrite)
        save_npy(folder / "explained_variance.npy", self.explained_variance, overwrite=overwrite)
        save_json(folder / "basis.json", {"size": self.size, "shape": list(self.shape)}, overwrite=overwrite)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SpectralBasis:
        """Read a basis written by ``save``."""
        folder = Path(folder)
        info = load_json(folder / "basis.json")
        return cls(
            load_npy(folder / "components.npy"),
            load_npy(folder / "mean.npy"),
            load_npy(folder / "explained_variance.npy"),
            tuple(info["shape"]),
        )


def _exact_pca(flat: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Mean [shape=(features,)], the first ``size`` principal axes [shape=(size, features)] and their
    variances [shape=(size,)] of rows [shape=(n, features)], from the eigenvectors of the centred Gram
    matrix (n x n, float64); None when fewer than ``size`` axes carry variance. Each axis's sign makes
    its largest entry positive, as scikit-learn's PCA does."""
    mean = flat.mean(axis=0, dtype=np.float64).astype(np.float32)
    centred = flat - mean
    eigenvalues, eigenvectors = np.linalg.eigh((centred @ centred.T).astype(np.float64))
    order = np.argsort(eigenvalues)[::-1][:size]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    if len(eigenvalues) < size or eigenvalues[-1] <= 1e-9 * max(eigenvalues[0], 1e-30):
        return None
    components = (eigenvectors.T.astype(np.float32) @ centred) / np.sqrt(eigenvalues).astype(np.float32)[:, None]
    largest = np.argmax(np.abs(components), axis=1)
    components *= np.sign(components[np.arange(size), largest])[:, None]
    return mean, components, eigenvalues / (len(flat) - 1)
