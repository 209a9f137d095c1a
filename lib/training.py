"""Training with the habits users expect: progress, TensorBoard, checkpoints, resume, early stop.

``fit_or_load`` trains a model in a run folder, or loads the finished model when the folder
already holds one trained with the same settings (its *fingerprint*). A run that was
interrupted (killed, Ctrl-C) resumes from its last finished epoch the next time, thanks to
Keras's ``BackupAndRestore``; the epoch history survives in ``history.csv``.

Run folder layout::

    model.keras      the finished model (written atomically, loaded with safe mode on)
    best.keras       the best checkpoint by validation loss, kept while training
    training.json    fingerprint, epochs run, seconds, final losses
    history.csv      one row per epoch, across resumes
    backup/          resume state (removed by Keras when training completes)
    tensorboard/     logs for `tensorboard --logdir outputs/`
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from lib.fileio import load_json, save_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingConfig:
    """How to fit: the same fields make the same fingerprint."""

    epochs: int = 100  # upper bound; early stopping may end sooner
    batch_size: int = 64  # examples per step
    learning_rate: float = 1e-3  # Adam's initial step size
    patience: int = 20  # epochs without validation improvement before stopping
    seed: int = 0  # for weights, shuffling and dropout
    warmup_epochs: int = 0  # epochs (e.g. a KL warm-up) before early stopping and LR decay may act


def fingerprint(*parts: object) -> str:
    """Short hash of JSON-serialisable settings, naming what a saved model was trained with."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class TrainingResult:
    """A trained (or loaded) model with its history."""

    model: keras.Model
    history: dict[str, list[float]]  # per-epoch values, e.g. loss and val_loss
    seconds: float  # wall-clock time of training, summed over resumed runs
    loaded_from_cache: bool


def save_model(model: keras.Model, path: str | Path) -> Path:
    """Save a ``.keras`` file atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.partial.keras")
    model.save(temporary)
    os.replace(temporary, path)
    return path


def load_model(path: str | Path) -> keras.Model:
    """Load a ``.keras`` file with safe mode on (no arbitrary code, no lambdas)."""
    # Importing the modules registers their serialisable classes for safe-mode loading.
    import lib.conditional
    import lib.models
    import lib.vae  # noqa: F401

    return keras.saving.load_model(path, safe_mode=True, compile=False)


def read_history(path: Path) -> dict[str, list[float]]:
    """Per-epoch values from a Keras ``CSVLogger`` file."""
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    keys = [key for key in (rows[0] if rows else {}) if key != "epoch"]
    return {key: [float(row[key]) for row in rows if row.get(key) not in (None, "")] for key in keys}


class _PlateauAfterWarmup(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau that ignores the warm-up epochs, whose losses are not comparable."""

    def __init__(self, warmup_epochs: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.warmup_epochs = warmup_epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.warmup_epochs:
            super().on_epoch_end(epoch, logs)
        elif logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class _Stopwatch(keras.callbacks.Callback):
    """Adds each epoch's seconds to ``training.json``'s running total, so resumed runs count too."""

    def __init__(self, state_path: Path, base: dict) -> None:
        super().__init__()
        self.state_path = state_path
        self.base = base
        self.epoch_started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.base["seconds"] = self.base.get("seconds", 0.0) + time.perf_counter() - self.epoch_started
        self.base["epochs_run"] = epoch + 1
        save_json(self.state_path, self.base, overwrite=True, announce=False)


def fit_or_load(
    build: Callable[[], keras.Model],
    train_data: tuple[np.ndarray, np.ndarray] | np.ndarray,
    valid_data: tuple[np.ndarray, np.ndarray] | np.ndarray,
    *,
    run_folder: str | Path,
    config: TrainingConfig,
    settings: dict,
    loss: str | dict | None = "mse",
    retrain: bool = False,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int = 2,
) -> TrainingResult:
    """Train ``build()`` in ``run_folder``, resuming or reusing earlier work where it matches.

    Parameters
    ----------
    build : callable
        Returns a fresh, uncompiled model (or one whose ``compile`` takes only an optimizer,
        when ``loss`` is None, as the VAE does).
    train_data, valid_data : (inputs, targets) or inputs
        Arrays for ``fit``; a single array means inputs only (the model computes its own loss).
    settings : dict
        Everything else that shapes the model (its config, the data's fingerprint); with
        ``config`` it makes the fingerprint under which the finished model is cached.
    retrain : bool
        Ignore a finished model and train again (the old files are replaced, with a log line).
    """
    run_folder = Path(run_folder)
    model_path, state_path = run_folder / "model.keras", run_folder / "training.json"
    key = fingerprint(settings, vars(config))
    state = load_json(state_path) if state_path.exists() else {}
    if not retrain and state.get("fingerprint") == key and state.get("finished") and model_path.exists():
        logger.info("loading the finished model from %s (same settings)", model_path)
        return TrainingResult(load_model(model_path), read_history(run_folder / "history.csv"), state["seconds"], True)
    if state.get("fingerprint") != key or retrain or state.get("finished"):
        # Different settings (or a requested retrain): earlier resume state must not leak in.
        if run_folder.exists():
            logger.info("starting a fresh run in %s (replacing earlier files)", run_folder)
        for stale in ("backup", "tensorboard", "history.csv", "best.keras", "model.keras"):
            target = run_folder / stale
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        state = {"fingerprint": key, "settings": settings, "training": vars(config), "seconds": 0.0}
    else:
        logger.info("resuming the interrupted run in %s", run_folder)
    state["finished"] = False
    save_json(state_path, state, overwrite=True)

    keras.utils.set_random_seed(config.seed)
    model = build()
    optimizer = keras.optimizers.Adam(config.learning_rate)
    model.compile(optimizer=optimizer, loss=loss) if loss else model.compile(optimizer=optimizer)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_folder / "backup")),
        # Extra callbacks run before the loggers, so values they add to the logs are recorded.
        *(extra_callbacks or []),
        keras.callbacks.ModelCheckpoint(str(run_folder / "best.keras"), monitor="val_loss", save_best_only=True),
        keras.callbacks.EarlyStopping(
            monitor="val_loss",
            patience=config.patience,
            restore_best_weights=True,
            start_from_epoch=config.warmup_epochs,
        ),
        _PlateauAfterWarmup(
            config.warmup_epochs, monitor="val_loss", factor=0.5, patience=max(2, config.patience // 3)
        ),
        keras.callbacks.TensorBoard(str(run_folder / "tensorboard"), write_graph=False),
        keras.callbacks.CSVLogger(str(run_folder / "history.csv"), append=True),
        _Stopwatch(state_path, state),
    ]
    inputs, targets = train_data if isinstance(train_data, tuple) else (train_data, None)
    model.fit(
        inputs,
        targets,
        validation_data=valid_data,
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=callbacks,
        verbose=verbose,
    )
    save_model(model, model_path)
    (run_folder / "best.keras").unlink(missing_ok=True)  # the final model holds the best weights
    state["finished"] = True
    save_json(state_path, state, overwrite=True)
    return TrainingResult(model, read_history(run_folder / "history.csv"), state["seconds"], False)
