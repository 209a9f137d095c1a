"""Every path the project uses, derived from the package's own location.

Nothing depends on the working folder: notebooks, tests and scripts import these
constants instead of building paths of their own. Two switches choose the folders:

* ``LML_SMOKE=1`` (smoke mode) keeps its data and outputs apart, so that a quick test run
  never replaces the results of a full run;
* ``LML_DATASET`` names the dataset every stage runs on: ``notes`` (the default, rendered
  from the shipped SoundFont), ``genres`` (music21's scores rendered with it) or a folder of
  the user's audio. The notes keep the top of ``outputs/``; every other dataset gets
  ``outputs/datasets/<name>/`` with the same layout, so a run on one dataset never replaces
  another's results.
* ``LML_CLIP_SECONDS`` (``make run-all CLIP_SECONDS=4``) sets the clip length of the genre
  collections and of a folder (default 1 s; the notes are one-second notes). Another length
  is another dataset: its data and outputs get a ``-<seconds>s`` suffix.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

PROJ_ROOT = Path(__file__).resolve().parents[2]  # lib/core/paths.py
SMOKE_ENV_VAR = "LML_SMOKE"  # set to 1 to shrink data and epochs (tests, CI)
DATASET_ENV_VAR = "LML_DATASET"  # a shipped dataset's name or a folder of audio
DEFAULT_DATASET = "notes"
SHIPPED_DATASETS = ("notes", "genres")
CLIP_SECONDS_ENV_VAR = "LML_CLIP_SECONDS"  # clip length of the genres and of a folder, in seconds
DEFAULT_CLIP_SECONDS = 1.0
CLIP_SECONDS_RANGE = (0.5, 10.0)  # shorter holds too few frames to measure; longer outgrows the models
# Clips of a split a stage holds in memory at most (a larger split, hours of music, is a seeded sample):
# the training split, and each of the others (valid, test, heldout). Above every shipped dataset's splits.
SPLIT_CLIPS_ENV_VARS = {"train": "LML_TRAIN_CLIPS", "evaluation": "LML_EVALUATION_CLIPS"}
DEFAULT_SPLIT_CLIPS = {"train": 3000, "evaluation": 600}


def shown(path: str | Path) -> str:
    """A path as log lines and notebooks show it: relative to the repository when inside it,
    ``~/…`` when inside the home folder, a shipped dataset's name as it is."""
    if str(path) in SHIPPED_DATASETS:
        return str(path)
    path = Path(os.path.abspath(Path(path).expanduser()))  # not resolve(): a link is shown, not its target
    for root, prefix in ((PROJ_ROOT, ""), (Path.home().resolve(), "~/")):
        try:
            return prefix + str(path.relative_to(root))
        except ValueError:
            continue
    return str(path)


def smoke_mode() -> bool:
    """Return True when the smoke switch ``LML_SMOKE`` is set to a true value."""
    return os.environ.get(SMOKE_ENV_VAR, "0").strip().lower() in {"1", "true", "yes", "on"}


def dataset_choice() -> str:
    """The dataset named by ``LML_DATASET``: a shipped name or a folder path (default ``notes``)."""
    return os.environ.get(DATASET_ENV_VAR, "").strip() or DEFAULT_DATASET


def clip_seconds_choice() -> float:
    """The clip length named by ``LML_CLIP_SECONDS`` (default 1 s).

    Raises
    ------
    ValueError
        If it is not a number within ``CLIP_SECONDS_RANGE``, or the chosen dataset is the notes.
    """
    text = os.environ.get(CLIP_SECONDS_ENV_VAR, "").strip()
    if not text:
        return DEFAULT_CLIP_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"CLIP_SECONDS={text!r} is not a number of seconds") from None
    low, high = CLIP_SECONDS_RANGE
    if not low <= seconds <= high:
        raise ValueError(f"CLIP_SECONDS={text} lies outside {low:g}..{high:g} s")
    if seconds != DEFAULT_CLIP_SECONDS and dataset_choice() == DEFAULT_DATASET:
        raise ValueError(
            "the notes are one-second notes: CLIP_SECONDS applies to DATASET=genres and to a folder of audio"
        )
    return seconds


def split_clips_choice() -> dict[str, int | None]:
    """The clips of each split held in memory at most, from ``LML_TRAIN_CLIPS`` (the training split) and
    ``LML_EVALUATION_CLIPS`` (each of valid, test and heldout); ``all`` means no limit.

    Raises
    ------
    ValueError
        If a value is neither a positive whole number nor ``all``.
    """
    chosen = {}
    for role, variable in SPLIT_CLIPS_ENV_VARS.items():
        text = os.environ.get(variable, "").strip()
        if not text:
            chosen[role] = DEFAULT_SPLIT_CLIPS[role]
        elif text.lower() == "all":
            chosen[role] = None
        elif text.isdigit() and int(text) > 0:
            chosen[role] = int(text)
        else:
            raise ValueError(f"{variable}={text!r}: expected a positive number of clips or 'all'")
    return split_limits(chosen["train"], chosen["evaluation"])


def split_limits(train: int | None, evaluation: int | None) -> dict[str, int | None]:
    """Limits by split (see :meth:`lib.data.clips.ClipDataset.limit_splits`): ``train`` for the training
    split, ``evaluation`` for each of valid, test and heldout (None: no limit)."""
    return {"train": train, **{split: evaluation for split in ("valid", "test", "heldout")}}


def dataset_slug(dataset: str | None = None) -> str:
    """Short folder-safe name of a dataset: ``notes``, or ``<folder name>-<hash of its path>``.

    The hash of the folder's absolute path keeps two folders that share a name apart. The chosen
    dataset at another clip length than 1 s (``LML_CLIP_SECONDS``) gets a ``-<seconds>s`` suffix.
    """
    chosen = dataset is None or dataset == dataset_choice()
    dataset = dataset_choice() if dataset is None else dataset
    seconds = clip_seconds_choice() if chosen else DEFAULT_CLIP_SECONDS
    suffix = "" if seconds == DEFAULT_CLIP_SECONDS else f"-{seconds:g}s"
    if dataset in SHIPPED_DATASETS:
        return dataset + suffix
    folder = Path(dataset).expanduser().resolve()
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.name).strip("._") or "folder"
    return f"{stem[:40]}-{hashlib.sha256(str(folder).encode()).hexdigest()[:8]}{suffix}"


def data_dir(smoke: bool | None = None, dataset: str | None = None) -> Path:
    """Folder of a prepared dataset.

    The notes: ``data/default`` or ``data/smoke``; the genres: ``data/genres`` or
    ``data/smoke-genres``; a folder of audio: ``data/folders/<slug>`` (smoke mode reads the same
    prepared clips; it shrinks the training, not the folder).
    """
    smoke = smoke_mode() if smoke is None else smoke
    slug = dataset_slug(dataset)
    if slug == DEFAULT_DATASET:
        return PROJ_ROOT / "data" / ("smoke" if smoke else "default")
    if (dataset_choice() if dataset is None else dataset) in SHIPPED_DATASETS:
        return PROJ_ROOT / "data" / (f"smoke-{slug}" if smoke else slug)
    return PROJ_ROOT / "data" / "folders" / slug


def outputs_dir(smoke: bool | None = None, dataset: str | None = None) -> Path:
    """Root of generated outputs: ``outputs`` (``outputs/smoke``) for the notes,
    ``outputs/datasets/<slug>`` (``outputs/smoke/datasets/<slug>``) for any other dataset."""
    smoke = smoke_mode() if smoke is None else smoke
    root = PROJ_ROOT / "outputs" / "smoke" if smoke else PROJ_ROOT / "outputs"
    slug = dataset_slug(dataset)
    return root if slug == DEFAULT_DATASET else root / "datasets" / slug


def metrics_path(notebook_name: str, smoke: bool | None = None, dataset: str | None = None) -> Path:
    """Path of ``<outputs>/metrics/<notebook_name>.json`` (of ``dataset``, default the chosen one)."""
    return outputs_dir(smoke, dataset) / "metrics" / f"{notebook_name}.json"


def models_dir(smoke: bool | None = None) -> Path:
    """Folder of saved ``.keras`` models and training checkpoints."""
    return outputs_dir(smoke) / "models"


def audio_dir(notebook_name: str, smoke: bool | None = None) -> Path:
    """Folder of WAV files written by one notebook."""
    return outputs_dir(smoke) / "audio" / notebook_name


def figures_dir(smoke: bool | None = None) -> Path:
    """Folder of PNG figures written by the notebooks."""
    return outputs_dir(smoke) / "figures"
