"""What every dataset of the lab is: clips in four splits, with labels and measured attributes.

The notes (:class:`lib.data.dataset.NoteDataset`), a prepared folder of the user's music and the genre
collections' clips and phrases (:class:`lib.data.collection.FolderDataset`, which the genre
collections are) all derive from :class:`ClipDataset`, so a stage asks any of them the same
questions: which clips are in a split (:meth:`ClipDataset.split`), what each clip is called
(``label`` in every manifest row; :attr:`ClipDataset.labels`), what the audio of each clip
measures (:meth:`ClipDataset.attributes`: loudness, brightness, onset rate) and how clips
become spectrograms (``representation``). A split larger than its limit (hours of
music) is held in memory as a seeded random sample (:meth:`ClipDataset.limit_splits`), so that a stage's
memory stays flat in the collection's size. The clip length is the dataset's
(``config.clip_seconds``). What only the notes have (pitch, velocity, instrument family) is
announced by ``has_note_labels``, so a stage can say what it cannot measure elsewhere.

Imports: NumPy, :mod:`lib.core.fileio` (the hash) and :mod:`lib.data.analysis` (the attributes), nothing
above the data layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from lib.core.fileio import settings_hash
from lib.data.analysis import measure_attributes

SPLITS: tuple[str, ...] = ("train", "valid", "test", "heldout")


def sample_indices(count: int, sample_size: int, seed: int | list[int]) -> np.ndarray:
    """``min(sample_size, count)`` positions in ``range(count)``, drawn without replacement, sorted."""
    if count <= 0 or sample_size <= 0:
        raise ValueError(f"need a positive count and sample size, got {count} and {sample_size}")
    if sample_size >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, sample_size, replace=False))


class ClipDataset:
    """Clips with a manifest (one row per clip: ``index``, ``split``, ``label``, …), split by row.

    Subclasses are dataclasses with ``manifest`` (list of dicts), ``config`` (with
    ``sample_rate``, ``clip_samples``, ``clip_seconds`` and ``fingerprint()``),
    ``representation`` and ``folder``, and implement :meth:`clips`, :attr:`labels` and
    :meth:`describe`.
    """

    kind: ClassVar[str] = ""
    has_note_labels: ClassVar[bool] = False  # pitch, velocity and instrument family on every row
    manifest: list[dict]
    folder: Path
    split_limits: dict[str, int] | None = None  # clips of a split held in memory at most; see limit_splits
    split_seed: int = 0  # draws the sample of a split larger than its limit

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels the rows carry, in the dataset's order."""
        raise NotImplementedError

    def clips(self, indices: np.ndarray) -> np.ndarray:
        """Waveforms [shape=(len(indices), clip_samples)] of manifest rows."""
        raise NotImplementedError

    def describe(self, row: dict) -> str:
        """A clip in words."""
        raise NotImplementedError

    def title(self, row: dict) -> str:
        """A clip in a few words, for a figure's title (its description unless a dataset has shorter)."""
        return self.describe(row)

    def indices(self, split: str) -> np.ndarray:
        """Row indices of one split."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return np.array([row["index"] for row in self.manifest if row["split"] == split], dtype=np.int64)

    def limit_splits(self, limits: dict[str, int | None], *, seed: int = 0) -> dict[str, dict[str, int]]:
        """Hold at most ``limits[split]`` clips of a split in memory from now on: :meth:`split` (and what
        reads through it) returns a random sample of a larger split, drawn with ``seed`` and kept in
        manifest order (a split not named, or named with None, is whole). Returns the splits that are
        sampled (see :meth:`sampled_splits`)."""
        for split, clips in limits.items():
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
            if clips is not None and clips <= 0:
                raise ValueError(f"the limit of {split!r} must be a positive number of clips or None, got {clips}")
        self.split_limits = {split: clips for split, clips in limits.items() if clips is not None}
        self.split_seed = seed
        return self.sampled_splits()

    def sampled_splits(self) -> dict[str, dict[str, int]]:
        """The splits :meth:`split` samples under the current limits: {split: {"clips": held, "of": in the split}}."""
        limits = self.split_limits or {}
        return {
            split: {"clips": limits[split], "of": count}
            for split, count in self.counts().items()
            if split in limits and count > limits[split]
        }

    def fingerprint(self) -> str:
        """What a model trained on this dataset saw, as a short hash: the dataset's settings
        (``config.fingerprint()``, unchanged when every split is whole) and, when a split is held as a
        sample, which sample, so that a model trained on a sample is not reused for another."""
        sampled = self.sampled_splits()
        if not sampled:
            return self.config.fingerprint()
        return settings_hash({"data": self.config.fingerprint(), "sampled": sampled, "seed": self.split_seed})

    def sampling_summary(self) -> str:
        """What of the collection a stage holds in memory, in words (for a notebook's output)."""
        sampled = self.sampled_splits()
        if not sampled:
            return "every clip of every split is held in memory"
        held = ", ".join(f"{part['clips']:,} of {part['of']:,} {split} clips" for split, part in sampled.items())
        return f"held in memory as a seeded sample: {held}"

    def split_indices(self, split: str) -> np.ndarray:
        """Row indices of one split as :meth:`split` holds it: every row, or the seeded sample of a split
        larger than its limit (in manifest order)."""
        indices = self.indices(split)
        limit = (self.split_limits or {}).get(split)
        if limit is None or len(indices) <= limit:
            return indices
        return indices[sample_indices(len(indices), limit, [self.split_seed, SPLITS.index(split)])]

    def split(self, split: str) -> tuple[np.ndarray, list[dict]]:
        """Waveforms [shape=(n, clip_samples)] and manifest rows of one split (an empty split gives
        an array of shape (0, clip_samples)); a split larger than its limit (:meth:`limit_splits`) is sampled."""
        indices = self.split_indices(split)
        if not len(indices):
            return np.zeros((0, self.config.clip_samples), dtype=np.float32), []
        return self.clips(indices), [self.manifest[i] for i in indices]

    def label_splits(
        self, splits: tuple[str, ...] = ("train", "valid", "test"), *, required: tuple[str, ...] = ("train", "test")
    ) -> tuple[tuple[str, ...], dict[str, np.ndarray], dict[str, list[dict]]]:
        """The labels that every ``required`` split has clips of, and the waveforms [shape=(n, clip_samples)]
        and rows of each of ``splits`` restricted to them: (labels, waveforms by split, rows by split).

        A label whose files all went to one split (a folder's label with fewer than three files) can be
        neither learned and measured nor moved to; its clips are left out of every split.
        """
        waveforms, rows = {}, {}
        for split in splits:
            waveforms[split], rows[split] = self.split(split)
        labels = tuple(
            label for label in self.labels if all(any(row["label"] == label for row in rows[s]) for s in required)
        )
        for split in splits:
            keep = np.array([row["label"] in labels for row in rows[split]], dtype=bool)
            waveforms[split] = waveforms[split][keep]
            rows[split] = [row for row, kept in zip(rows[split], keep) if kept]
        return labels, waveforms, rows

    def counts(self) -> dict[str, int]:
        """Number of clips per split."""
        return {split: len(self.indices(split)) for split in SPLITS}

    def attributes(self, split: str) -> np.ndarray:
        """What the audio of each clip of a split measures [shape=(n, len(lib.data.analysis.ATTRIBUTES))] (see
        :func:`lib.data.analysis.measure_attributes`: loudness in dBFS, brightness in octaves, onsets per second)."""
        waveforms, _ = self.split(split)
        return measure_attributes(waveforms, sample_rate=self.config.sample_rate)
