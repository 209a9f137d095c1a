"""The genre collections as phrases: the clip length that style needs.

A 1 s window of a chorale and of a fiddle tune can hold the same chord on the same organ; what
tells them apart is harmony moving, rhythm and texture over a phrase. At the tempi of these
collections (roughly 60-120 beats per minute) **4 s** holds one to two bars: a cadence, a
rhythmic figure, an imitation entering. Phrases start every 2 s (they overlap by half), and
their spectrograms are 512 x 128 (``SpectrogramConfig.for_clip``). What is measured on them
(descriptors, the genre judge, transfer) is in :mod:`lib.measure.genre_lab`.
"""

from __future__ import annotations

from pathlib import Path

from lib.core.paths import data_dir, smoke_mode
from lib.data import collection, genres

PHRASE_SECONDS = 4.0  # one to two bars at these collections' tempi (see the module docstring)
PHRASE_HOP_SECONDS = 2.0  # phrases overlap by half
SCORES_PER_GENRE = 60  # scores rendered per genre for the phrases (30 s of each)


def phrase_config(
    seconds: float = PHRASE_SECONDS, hop_seconds: float = PHRASE_HOP_SECONDS
) -> collection.CollectionConfig:
    """How the genre audio is cut into phrases (the clip length is a parameter of everything after)."""
    if seconds <= 0 or hop_seconds <= 0:
        raise ValueError(f"phrase length and hop must be positive, got {seconds} and {hop_seconds}")
    return collection.CollectionConfig(clip_seconds=seconds, hop_seconds=hop_seconds)


def genre_config(scores_per_genre: int = SCORES_PER_GENRE) -> genres.GenreConfig:
    """The rendering of the phrases' scores (smoke mode: ``genres.smoke_genre_config``)."""
    return genres.smoke_genre_config() if smoke_mode() else genres.GenreConfig(scores_per_genre=scores_per_genre)


def load_phrases(
    config: collection.CollectionConfig | None = None,
    *,
    scores_per_genre: int = SCORES_PER_GENRE,
    root: Path | None = None,
    build: bool = True,
) -> collection.FolderDataset:
    """The genre collections as phrases: renders the scores and cuts the phrases when needed (cached).

    Under ``data/genres/phrases`` (``data/smoke-genres/phrases`` in smoke mode): ``audio/`` with one
    file per score (twice the scores of the 1 s clips of ``make data DATASET=genres``: a genre judge
    that must generalise to unheard scores needs many) and ``clips/``. Splits are by file, and every
    file is one score, so no piece is in two splits.
    """
    root = root or data_dir(dataset="genres") / "phrases"
    if build:
        genres.build_genre_audio(root / "audio", genre_config(scores_per_genre))
        collection.prepare_collection(root / "audio", root / "clips", config or phrase_config())
    return collection.load_collection(root / "clips")
