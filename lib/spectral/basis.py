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
        """Fit ``size`` components to spectrograms [shape=(n, frequency_bins, frames)]."""
        spectrograms = np.asarray(spectrograms, dtype=np.float32)
        if spectrograms.ndim != 3:
            raise ValueError(f"expected spectrograms of shape (n, frequency_bins, frames), got {spectrograms.shape}")
        if not 1 <= size <= min(spectrograms.shape[0], spectrograms.shape[1] * spectrograms.shape[2]):
            raise ValueError(f"size {size} must lie in 1..min(n, features) for {spectrograms.shape[0]} spectrograms")
        pca = PCA(size, svd_solver="randomized", random_state=seed).fit(spectrograms.reshape(len(spectrograms), -1))
        return cls(
            pca.components_.astype(np.float32),
            pca.mean_.astype(np.float32),
            pca.explained_variance_.astype(np.float32),
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
