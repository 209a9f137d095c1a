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

    @classmethod
    def fit_in_blocks(
        cls, spectrograms: np.ndarray, size: int, *, seed: int = 0, block_rows: int = 512, power_iterations: int = 4
    ) -> SpectralBasis:
        """Fit ``size`` components to spectrograms [shape=(n, frequency_bins, frames)], any float dtype
        (float16 halves what a large sample holds), by randomized SVD (Halko et al. 2011, the algorithm of
        scikit-learn's ``svd_solver="randomized"``: ``size + 10`` random directions, ``power_iterations``
        LU-normalised power iterations, signs as scikit-learn's) with every product taken ``block_rows``
        spectrograms at a time, in float32.

        Memory past the spectrograms themselves is a few (features, size + 10) float32 matrices and one
        block, so it does not grow with ``n`` as a centred float32 copy of the stack would.
        """
        import scipy.linalg

        if spectrograms.ndim != 3:
            raise ValueError(f"expected spectrograms of shape (n, frequency_bins, frames), got {spectrograms.shape}")
        count, features = len(spectrograms), spectrograms.shape[1] * spectrograms.shape[2]
        if not 1 <= size <= min(count, features):
            raise ValueError(f"size {size} must lie in 1..min(n, features) for {count} spectrograms")
        flat = spectrograms.reshape(count, features)
        mean = sum(
            flat[start : start + block_rows].sum(axis=0, dtype=np.float64) for start in range(0, count, block_rows)
        )
        mean = (mean / count).astype(np.float32)

        def blocks():  # (start, centred block [shape=(rows, features), float32])
            for start in range(0, count, block_rows):
                yield start, flat[start : start + block_rows].astype(np.float32) - mean

        def times(right: np.ndarray) -> np.ndarray:  # centred stack @ right [shape=(count, k)]
            product = np.empty((count, right.shape[1]), dtype=np.float32)
            for start, block in blocks():
                product[start : start + len(block)] = block @ right
            return product

        def transposed_times(left: np.ndarray) -> np.ndarray:  # centred stack.T @ left [shape=(features, k)]
            product = np.zeros((features, left.shape[1]), dtype=np.float32)
            for start, block in blocks():
                product += block.T @ left[start : start + len(block)]
            return product

        rank = min(size + 10, count, features)
        directions = np.random.default_rng(seed).standard_normal((features, rank), dtype=np.float32)
        for _ in range(power_iterations):
            directions = scipy.linalg.lu(times(directions), permute_l=True, check_finite=False)[0]
            directions = scipy.linalg.lu(transposed_times(directions), permute_l=True, check_finite=False)[0]
        directions = np.linalg.qr(times(directions))[
            0
        ]  # an orthonormal basis of the stack's range [shape=(count, rank)]
        _, singular, rows = scipy.linalg.svd(transposed_times(directions).T, full_matrices=False, check_finite=False)
        rows = rows[:size]
        rows *= np.sign(rows[np.arange(size), np.argmax(np.abs(rows), axis=1)])[:, np.newaxis]
        return cls(
            np.ascontiguousarray(rows, dtype=np.float32),
            mean,
            (np.square(singular[:size].astype(np.float64)) / max(count - 1, 1)).astype(np.float32),
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
