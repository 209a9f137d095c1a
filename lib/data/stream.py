"""Collections past memory: a split's basis coefficients on disk, built in passes and read back in blocks.

A hundred hours of music is 360,000 one-second clips: 47 GB of spectrograms, but 1.5 GB as the 1,024
basis coefficients per clip the models read. So a large collection is never stacked in memory:

* :func:`fit_sampled_basis` fits the PCA basis on a bounded random sample of the training clips (its
  size a parameter), held as float16 and fitted in blocks: its memory is the sample's, whatever the
  collection's size, and small beside a stack of float32 spectrograms;
* :func:`build_coefficient_cache` passes over a split in chunks (clips, spectrograms, coefficients) and
  writes a ``.npy`` file of shape (clips, size), atomically; the pass's memory is one chunk's;
* :class:`CoefficientFile` reads row ranges of such a file with plain reads (no memory map, so
  that pages read do not stay counted as the process's memory), for
  :class:`lib.models.training.StreamedBatches`, which ``fit`` reads through ``tf.data``;
* :class:`ClipRows` computes a model's rows from the clips as training reaches them, for a model that
  reads whole spectrograms (stage 3's judge), whose cache would be as large as the spectrograms.

May import: :mod:`lib.core`, :mod:`lib.spectral`, :mod:`lib.data.clips`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lib.core.fileio import load_json, save_json, settings_hash
from lib.data.clips import ClipDataset, sample_indices
from lib.spectral.basis import SpectralBasis
from lib.spectral.representation import SpectrogramRepresentation

CACHE_DTYPE = np.dtype("<f4")
CHUNK_CLIPS = 512  # clips whose spectrograms are computed at once in a pass


def fit_sampled_basis(
    dataset: ClipDataset,
    split: str,
    representation: SpectrogramRepresentation,
    size: int,
    *,
    sample_clips: int,
    seed: int,
) -> tuple[SpectralBasis, int]:
    """A PCA basis of ``size`` components fitted on at most ``sample_clips`` clips of ``split``, drawn at
    random (seeded); returns it and the number of clips it saw.

    The sample's spectrograms are held as float16 (half of float32; their values lie in [0, 1], so the
    rounding is below 5e-4) and fitted by :meth:`SpectralBasis.fit_in_blocks`, whose working memory does
    not grow with the sample: 4,096 clips take about 0.3 GB and a few 0.14 GB matrices.
    """
    indices = dataset.indices(split)
    picked = indices[sample_indices(len(indices), sample_clips, seed)]
    spectrograms = None
    for start in range(0, len(picked), CHUNK_CLIPS):  # the sample's spectrograms, without the STFT's copies
        chunk = representation.forward(dataset.clips(picked[start : start + CHUNK_CLIPS]))
        if spectrograms is None:
            spectrograms = np.empty((len(picked), *chunk.shape[1:]), dtype=np.float16)
        spectrograms[start : start + len(chunk)] = chunk
    return SpectralBasis.fit_in_blocks(spectrograms, min(size, len(picked)), seed=seed), len(picked)


def build_coefficient_cache(
    dataset: ClipDataset,
    split: str,
    representation: SpectrogramRepresentation,
    basis: SpectralBasis,
    path: str | Path,
    *,
    chunk_clips: int = CHUNK_CLIPS,
    extra: np.ndarray | None = None,
    keep: Callable[[list[dict]], np.ndarray] | None = None,
    columns: Callable[[np.ndarray, list[dict]], np.ndarray] | None = None,
    reuse: str | None = None,
) -> Path:
    """Write the basis coefficients of every clip of ``split`` [shape=(clips, basis.size), float32] to
    ``path`` (``.npy``), one chunk of ``chunk_clips`` clips at a time, in the split's order, followed by
    the rows of ``extra`` [shape=(k, width)] if given (e.g. augmented copies' coefficients).

    ``keep`` (manifest rows -> bool mask) leaves out the clips it rejects; ``columns`` (a chunk's
    waveforms [shape=(n, samples)] and rows -> [shape=(n, c)]) appends numbers to each clip's coefficients,
    e.g. a conditional model's condition vector, so a row is ``basis.size + c`` wide.

    The file appears only when whole (written beside it, then renamed); an existing file is replaced,
    unless ``reuse`` (a description of ``keep`` and ``columns``, e.g. a condition space's settings) is given
    and the file was built from the same dataset, split, basis, extra rows and description (recorded
    beside it, ``<path>.json``): then it is returned as it is, without a pass over the split.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    indices = dataset.indices(split)
    settings_path = path.with_name(f"{path.name}.json")
    settings = None
    if reuse is not None:
        extra_bytes = b"" if extra is None else np.ascontiguousarray(extra, dtype=CACHE_DTYPE).tobytes()
        settings = {
            "dataset": dataset.fingerprint(),
            "split": split,
            "manifest": settings_hash([dataset.manifest[i] for i in indices]),  # the very clips
            "basis": basis.fingerprint(),
            "extra": hashlib.sha256(extra_bytes).hexdigest()[:16],
            "rows": reuse,
        }
        if path.exists() and settings_path.exists() and load_json(settings_path) == settings:
            CoefficientFile(path)  # refuses a torn file
            return path
    if keep is not None and len(indices):
        indices = indices[np.asarray(keep([dataset.manifest[i] for i in indices]), dtype=bool)]
    if not len(indices):
        raise ValueError(f"split {split!r} has no clips" + (" that are kept" if keep is not None else ""))
    if chunk_clips <= 0:
        raise ValueError(f"chunk_clips must be positive, got {chunk_clips}")

    def chunk_rows(chunk: np.ndarray) -> np.ndarray:  # [shape=(len(chunk), width)]
        waveforms = dataset.clips(chunk)
        coefficients = basis.transform(representation.forward(waveforms))
        if columns is None:
            return np.ascontiguousarray(coefficients, dtype=CACHE_DTYPE)
        appended = np.asarray(columns(waveforms, [dataset.manifest[i] for i in chunk]), dtype=CACHE_DTYPE)
        return np.ascontiguousarray(np.concatenate([coefficients, appended], axis=1), dtype=CACHE_DTYPE)

    first = chunk_rows(indices[:chunk_clips])
    width = first.shape[1]
    extra = np.zeros((0, width), dtype=CACHE_DTYPE) if extra is None else np.asarray(extra, dtype=CACHE_DTYPE)
    if extra.ndim != 2 or extra.shape[1] != width:
        raise ValueError(f"extra rows must have shape (k, {width}), got {extra.shape}")
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as handle:
        header = {"descr": CACHE_DTYPE.str, "fortran_order": False, "shape": (len(indices) + len(extra), width)}
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(first.tobytes())
        for start in range(chunk_clips, len(indices), chunk_clips):
            handle.write(chunk_rows(indices[start : start + chunk_clips]).tobytes())
        handle.write(np.ascontiguousarray(extra).tobytes())
        handle.flush()
        os.fsync(handle.fileno())
    settings_path.unlink(missing_ok=True)  # no stale description while the file is replaced
    os.replace(partial, path)
    if settings is not None:
        save_json(settings_path, settings, overwrite=True, announce=False)
    return path


def training_coefficients(
    dataset: ClipDataset,
    split: str,
    held: np.ndarray,
    extra: np.ndarray,
    *,
    basis: SpectralBasis,
    representation: SpectrogramRepresentation,
    cache_path: str | Path,
) -> np.ndarray | CoefficientFile:
    """The coefficients a stage trains on: the split's, then ``extra`` rows [shape=(k, basis.size)].

    When the dataset holds ``split`` whole, ``held`` [shape=(clips, basis.size)] is every clip's, and the
    result is the two stacked in memory. When it holds a sample of a larger split (see
    :meth:`lib.data.clips.ClipDataset.limit_splits`), every clip of the split is passed over once into a
    cache at ``cache_path`` with ``extra`` after them (:func:`build_coefficient_cache`), and the result
    is a :class:`CoefficientFile` that training reads in blocks: the model learns from the whole
    collection while memory holds one chunk.
    """
    if split not in dataset.sampled_splits():
        return np.concatenate([held, extra]) if len(extra) else held
    build_coefficient_cache(dataset, split, representation, basis, cache_path, extra=extra, reuse="coefficients")
    return CoefficientFile(cache_path)


class CoefficientFile:
    """Row ranges of a ``.npy`` file of float32 rows [shape=(count, size)], read on demand."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with self.path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran_order, dtype = read_header(handle)
            self.offset = handle.tell()
        if fortran_order or dtype != CACHE_DTYPE or len(shape) != 2:
            raise ValueError(f"{self.path}: expected C-ordered float32 rows, got {dtype} {shape}")
        self.count, self.size = int(shape[0]), int(shape[1])
        expected = self.offset + self.count * self.size * CACHE_DTYPE.itemsize
        if self.path.stat().st_size != expected:
            raise ValueError(f"{self.path}: {self.path.stat().st_size} bytes, expected {expected} (incomplete?)")

    def __len__(self) -> int:
        return self.count

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start`` to ``stop`` [shape=(stop - start, size)], copied into memory."""
        start, stop = max(0, start), min(stop, self.count)
        if stop <= start:
            return np.zeros((0, self.size), dtype=np.float32)
        with self.path.open("rb") as handle:
            handle.seek(self.offset + start * self.size * CACHE_DTYPE.itemsize)
            values = np.fromfile(handle, dtype=CACHE_DTYPE, count=(stop - start) * self.size)
        return values.reshape(stop - start, self.size).astype(np.float32, copy=False)

    def column_std(self, *, block_rows: int = 4096) -> np.ndarray:
        """Each column's standard deviation over every row [shape=(size,)], in one pass (float64 sums)."""
        total = np.zeros(self.size)
        squares = np.zeros(self.size)
        for start in range(0, self.count, block_rows):
            block = self.rows(start, start + block_rows).astype(np.float64)
            total += block.sum(axis=0)
            squares += np.square(block).sum(axis=0)
        mean = total / self.count
        return np.sqrt(np.maximum(squares / self.count - np.square(mean), 0.0)).astype(np.float32)


class ClipRows:
    """Every clip of a split as rows made when they are read: the clip's normalised spectrogram, flattened
    (``bins * frames`` numbers), then the numbers ``columns`` gives it (e.g. its labels).

    The source of a :class:`lib.models.training.StreamedData` for a model on spectrograms: nothing is
    written (a spectrogram is 32,768 numbers, 128 KB; a collection's would not fit on most disks), each
    block of clips is read from the shards and transformed when training reaches it. ``columns`` maps a
    block's waveforms [shape=(n, samples)] and manifest rows to [shape=(n, c)].
    """

    def __init__(
        self,
        dataset: ClipDataset,
        split: str,
        representation: SpectrogramRepresentation,
        columns: Callable[[np.ndarray, list[dict]], np.ndarray],
    ) -> None:
        self.dataset, self.representation, self.columns = dataset, representation, columns
        self.indices = dataset.indices(split)
        if not len(self.indices):
            raise ValueError(f"split {split!r} has no clips to stream")

    def __len__(self) -> int:
        return len(self.indices)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows of clips ``start`` to ``stop`` of the split [shape=(stop - start, bins * frames + c)]."""
        chunk = self.indices[max(0, start) : stop]
        waveforms = self.dataset.clips(chunk)
        spectrograms = self.representation.forward(waveforms).reshape(len(chunk), -1)
        appended = np.asarray(self.columns(waveforms, [self.dataset.manifest[i] for i in chunk]), dtype=np.float32)
        return np.concatenate([spectrograms, appended.reshape(len(chunk), -1)], axis=1).astype(np.float32, copy=False)
