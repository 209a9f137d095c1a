"""The first step of every numbered notebook, in one place: where its log goes, which dataset and mode
``lib`` works in, and the seeds.

A notebook's imports cell ends with ``rng = start_notebook("03_vae", DATASET, SMOKE, SEED)``, so the
parameters papermill injects (``-p DATASET genres``, ``-p SMOKE True``, ``-p SEED 1``) reach ``lib``, whose
paths follow the ``LML_DATASET`` and ``LML_SMOKE`` environment variables (:mod:`lib.core.paths`).

May import: every other layer (it is the lab's front).
"""

from __future__ import annotations

import logging
import os
import sys

import keras
import numpy as np

from lib.core.paths import DATASET_ENV_VAR, PROJ_ROOT, SMOKE_ENV_VAR
from lib.lab.checks import stage_dataset

NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"


def start_notebook(notebook: str, dataset: str, smoke: bool, seed: int) -> np.random.Generator:
    """Set a notebook's kernel up and return its random generator (``np.random.default_rng(seed)``).

    Args:
        notebook: the notebook's file name without ``.ipynb`` (``"03_vae"``); one whose metadata names a
            dataset of its own (notebook 05: the genre collections) works on that one in the notes' run
            (:func:`lib.lab.checks.stage_dataset`).
        dataset: the ``DATASET`` parameter: ``"notes"``, ``"genres"`` or a folder of audio.
        smoke: the ``SMOKE`` parameter (tiny data and short training, for the tests).
        seed: seeds Python's, NumPy's and TensorFlow's global generators (Keras weights, shuffling).

    Log records of ``lib`` go to the notebook's output (stdout) at INFO; TensorFlow's retracing
    notices stay out of it.
    """
    path = NOTEBOOKS_DIR / f"{notebook}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"start_notebook: no notebook {path.name} in {NOTEBOOKS_DIR}")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    os.environ[DATASET_ENV_VAR] = stage_dataset(path, dataset)
    os.environ[SMOKE_ENV_VAR] = "1" if smoke else "0"
    keras.utils.set_random_seed(seed)
    return np.random.default_rng(seed)
