"""Training with the habits users expect: progress, TensorBoard, checkpoints, resume, early stop.

``fit_or_load`` trains a model in a run folder, or loads the finished model when the folder
already holds one trained with the same settings (its *fingerprint*). A run that was
interrupted (killed, Ctrl-C) resumes the next time from its last backup (Keras's
``BackupAndRestore``, saved at most every ``BACKUP_SECONDS``); the epoch history survives in
``history.csv``.

Run folder layout::

    model.keras      the finished model (written atomically, loaded with safe mode on)
    best.weights.npz the best weights by validation loss, saved with the resume state (and across resumes)
    training.json    fingerprint, epochs run, seconds, final losses
    history.csv      one row per epoch, across resumes
    backup/          resume state (removed by Keras when training completes)
    tensorboard/     logs for `tensorboard --logdir outputs/`
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from lib.core.errors import NotReadyError
from lib.core.fileio import atomic_write_bytes, load_json, load_npy, save_json, save_npy, settings_hash
from lib.core.paths import shown
from lib.data.clips import ClipDataset
from lib.data.stream import CoefficientFile, build_coefficient_cache
from lib.models import distribute
from lib.spectral.basis import SpectralBasis
from lib.spectral.representation import SpectrogramRepresentation

logger = logging.getLogger(__name__)


SCHEDULES = ("plateau", "cosine")
BEST_WEIGHTS = "best.weights.npz"  # a run's best weights so far, beside its resume state
BACKUP_SECONDS = 30.0  # least time between two saves of a run's resume state
COSINE_FLOOR = 0.02  # the cosine schedule's last learning rate, as a share of the first


@dataclass(frozen=True)
class TrainingConfig:
    """How to fit: the same fields make the same fingerprint."""

    epochs: int = 100  # upper bound; early stopping may end sooner
    batch_size: int = 64  # examples per step
    learning_rate: float = 1e-3  # Adam's initial step size
    patience: int = 20  # epochs without validation improvement before stopping
    seed: int = 0  # for weights, shuffling and dropout
    warmup_epochs: int = 0  # epochs (e.g. a KL warm-up) before early stopping and LR decay may act
    schedule: str = "plateau"  # "plateau": halve the rate when validation stalls; "cosine": to 2% over `epochs`
    full_epochs_up_to: int = 10_000  # examples: a larger training set gets fewer epochs (see epochs_for)
    jit_compile: bool = True  # XLA-compile the training step where it pays (see xla_pays)

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.full_epochs_up_to <= 0:
            raise ValueError(f"full_epochs_up_to must be positive, got {self.full_epochs_up_to}")

    def epochs_for(self, examples: int) -> int:
        """The epochs a training set of ``examples`` gets: all ``epochs`` up to ``full_epochs_up_to``
        examples; beyond, as many as see ``epochs * full_epochs_up_to`` examples in all (never fewer
        than the warm-up and one more). A large collection then costs a bounded training time, not
        ``epochs`` passes over all of it; every shipped dataset trains all its epochs."""
        if examples <= self.full_epochs_up_to:
            return self.epochs
        scaled = -(-self.epochs * self.full_epochs_up_to // examples)
        return min(self.epochs, max(scaled, self.warmup_for(examples) + 1, 1))

    def warmup_for(self, examples: int) -> int:
        """The warm-up epochs a training set of ``examples`` gets: ``warmup_epochs`` up to
        ``full_epochs_up_to`` examples; beyond, shortened in the same ratio as the epochs (at least one),
        so that a warm-up sees about as many examples as on a small set, not ``warmup_epochs`` passes
        over all of a large one."""
        if examples <= self.full_epochs_up_to or self.warmup_epochs == 0:
            return self.warmup_epochs
        return max(1, -(-self.warmup_epochs * self.full_epochs_up_to // examples))


def fingerprint(*parts: object) -> str:
    """Short hash of JSON-serialisable settings, naming what a saved model was trained with."""
    return settings_hash(list(parts))


def trained_fingerprint(run_folder: str | Path) -> str:
    """The fingerprint of the finished model in ``run_folder`` (its settings and training config), for a
    model trained on its outputs to name what it depends on. Raises NotReadyError when none finished."""
    state_path = Path(run_folder) / "training.json"
    state = load_json(state_path) if state_path.exists() else {}
    if not state.get("finished"):
        raise NotReadyError("no finished model here: run the notebook that trains it", run_folder)
    return state["fingerprint"]


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
    import lib.models.conditional
    import lib.models.vae  # noqa: F401
    from lib.models.autoencoder import load_keras

    return load_keras(path)


def read_history(path: Path) -> dict[str, list[float]]:
    """Per-epoch values from a Keras ``CSVLogger`` file."""
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    keys = [key for key in (rows[0] if rows else {}) if key != "epoch"]
    return {key: [float(row[key]) for row in rows if row.get(key) not in (None, "")] for key in keys}


class EpochShuffledBatches:
    """Batches of arrays in an order that depends only on the seed and the epoch number.

    Keras shuffles arrays with a random state that restarts when a run resumes, so a run killed
    after epoch 3 would see epoch 0's order again at epoch 4. Here the order of epoch ``e`` is a
    stateless shuffle seeded by ``(seed, e)``: a resumed run sees exactly the batches an
    uninterrupted one would. ``inputs`` is an array or a dict of arrays (a model's named inputs);
    ``targets`` an array, a dict of arrays, or None (the model computes its own loss).
    :meth:`callback` sets the epoch as ``fit`` starts it; ``dataset`` is the ``tf.data``
    pipeline that ``fit`` reads, re-ordered each time it is iterated.
    """

    def __init__(self, inputs, targets, *, batch_size: int, seed: int) -> None:
        import tensorflow as tf

        first = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
        count = len(first)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        data = inputs if targets is None else (inputs, targets)
        tensors = tf.nest.map_structure(tf.constant, data)

        def order(_):
            indices = tf.random.experimental.stateless_shuffle(
                tf.range(count, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), self.epoch])
            )
            return tf.data.Dataset.from_tensor_slices(indices)

        self.dataset = (
            tf.data.Dataset.range(1)
            .flat_map(order)
            .batch(batch_size)
            .map(lambda rows: tf.nest.map_structure(lambda tensor: tf.gather(tensor, rows), tensors))
            .prefetch(2)
            .apply(tf.data.experimental.assert_cardinality(-(-count // batch_size)))
        )
        self.dataset = distribute.shard_by_data(self.dataset)  # each worker's part of every batch

    def set_epoch(self, epoch: int) -> None:
        """Fix the order of the batches of ``epoch`` (read when the dataset is next iterated)."""
        self.epoch.assign(epoch)

    def callback(self) -> keras.callbacks.Callback:
        """A callback that sets the epoch before ``fit`` iterates the dataset for it."""
        return keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: self.set_epoch(epoch))


@dataclass(frozen=True)
class StreamedData:
    """Training data read from disk as it is needed: ``source`` has ``len()`` and ``rows(start, stop)``
    (:class:`lib.data.stream.CoefficientFile`); ``targets`` maps a batch of inputs to its targets (None:
    the inputs are the targets' business of the model, as a VAE's; ``"inputs"``: the inputs themselves);
    ``columns`` names consecutive column ranges by width (e.g. ``{"coefficients": 1024, "conditions": 9}``)
    for a model with named inputs: each batch is then a dict of those parts. ``batch_map`` (with no
    ``targets`` or ``columns``) turns a batch of rows, a tensor, into what ``fit`` takes, e.g. ``(inputs,
    targets)``, inside the ``tf.data`` pipeline. ``block_rows`` rows are read at a time: fewer for wide rows
    (a spectrogram's 32,768 numbers) keep the blocks :class:`StreamedBatches` holds small."""

    source: object
    targets: Callable[[np.ndarray], np.ndarray] | str | None = "inputs"
    columns: dict[str, int] | None = None
    batch_map: Callable | None = None
    block_rows: int = 1024

    def __len__(self) -> int:
        return len(self.source)


def coefficient_pairs(
    source: np.ndarray | object, weighting: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | StreamedData:
    """Training data for :func:`fit_or_load` from coefficients that are their own targets, in the loss's
    coordinates (``targets = inputs @ weighting``; the inputs themselves when ``weighting`` is None):
    (inputs, targets) arrays for an array [shape=(n, size)], a :class:`StreamedData` mapping each batch the
    same way for a source read from disk (:class:`lib.data.stream.CoefficientFile`)."""
    if isinstance(source, np.ndarray):
        return source, source if weighting is None else source @ weighting
    if weighting is None:
        return StreamedData(source, targets="inputs")
    return StreamedData(source, targets=lambda batch: batch @ weighting)


def coefficient_inputs(source: np.ndarray | object) -> np.ndarray | StreamedData:
    """Training data for :func:`fit_or_load` for a model whose loss is its own (a VAE): the array itself,
    or a :class:`StreamedData` without targets for a source read from disk."""
    return source if isinstance(source, np.ndarray) else StreamedData(source, targets=None)


def streamed_conditioned(source: object, basis_size: int) -> StreamedData:
    """Training inputs of a conditional VAE (:class:`lib.models.conditional.ConditionalVAE`) read from
    disk: rows of ``source`` (a :class:`lib.data.stream.CoefficientFile` written with condition columns)
    are a clip's ``basis_size`` coefficients followed by its condition vector, split into the model's two
    named inputs per batch."""
    width = source.rows(0, 1).shape[1]
    if not 0 < basis_size < width:
        raise ValueError(f"rows of {width} numbers cannot hold {basis_size} coefficients and a condition vector")
    return StreamedData(source, targets=None, columns={"coefficients": basis_size, "conditions": width - basis_size})


def conditioned_inputs(
    dataset: ClipDataset,
    held: dict[str, np.ndarray],
    space: object,
    *,
    basis: SpectralBasis,
    representation: SpectrogramRepresentation,
    cache_path: str | Path,
) -> dict[str, np.ndarray] | StreamedData:
    """What a conditional VAE trains on: ``held`` (:func:`lib.models.conditional.model_inputs` of the held
    training clips) when the dataset holds its training split whole; when it holds a sample (a large
    collection), every training clip the space knows, with its coefficients and condition vector
    (measured from its audio), written to ``cache_path`` in one chunked pass and streamed
    (:func:`streamed_conditioned`). ``space`` is a :class:`lib.models.conditional.ConditionSpace` or
    ``LabelConditionSpace`` (their ``known`` and ``conditions_of``)."""
    if "train" not in dataset.sampled_splits():
        return held
    sample_rate = representation.config.sample_rate
    path = build_coefficient_cache(
        dataset,
        "train",
        representation,
        basis,
        cache_path,
        keep=space.known,
        columns=lambda waveforms, rows: space.conditions_of(waveforms, rows, sample_rate=sample_rate),
        reuse=settings_hash(space.to_dict()),
    )
    return streamed_conditioned(CoefficientFile(path), basis.size)


def input_count(inputs: dict[str, np.ndarray] | StreamedData) -> int:
    """Clips in a conditional VAE's training inputs (arrays or streamed)."""
    return len(inputs) if isinstance(inputs, StreamedData) else len(inputs["coefficients"])


class StreamedBatches:
    """Batches of a :class:`StreamedData`, in an order that depends only on the seed and the epoch.

    Each epoch visits blocks of ``block_rows`` consecutive rows (by default the data's) in a shuffled order seeded by
    ``(seed, epoch)``, reads ``shuffle_blocks`` of them at a time, shuffles their rows together and
    cuts batches (the rows left over join the next group's). Each group goes to ``tf.data`` as one stack
    of batches, not batch by batch from Python, and the next group is read while this one trains. Memory
    holds two groups of blocks and the prefetched batches, whatever the data's size; a resumed run sees
    the batches an uninterrupted one would. The interface is :class:`EpochShuffledBatches`'s: ``dataset``
    and :meth:`callback`.
    """

    def __init__(
        self,
        data: StreamedData,
        *,
        batch_size: int,
        seed: int,
        block_rows: int | None = None,
        shuffle_blocks: int = 8,
    ) -> None:
        import tensorflow as tf

        self.epoch = 0
        block_rows = data.block_rows if block_rows is None else block_rows
        count, source = len(data), data.source
        size = source.rows(0, 1).shape[1]
        mapped = None if data.targets in (None, "inputs") else data.targets
        specs = tf.TensorSpec((None, None, size), tf.float32)
        if mapped is not None:
            specs = (specs, tf.TensorSpec((None, None, mapped(source.rows(0, 1)).shape[1]), tf.float32))

        def stacked(rows: np.ndarray):  # batches of equal size [shape=(batches, batch, size)], targets too
            if mapped is None:
                return rows
            return rows, np.asarray(mapped(rows.reshape(-1, size)), dtype=np.float32).reshape(*rows.shape[:2], -1)

        def groups():  # each group of blocks as a stack of whole batches: one hand-over per group, not per batch
            rng = np.random.default_rng([seed, self.epoch])
            starts = rng.permutation(np.arange(0, count, block_rows))
            waiting = np.zeros((0, size), dtype=np.float32)
            for group in range(0, len(starts), shuffle_blocks):
                rows = np.concatenate(
                    [waiting, *(source.rows(s, s + block_rows) for s in starts[group : group + shuffle_blocks])]
                )
                rows = rows[rng.permutation(len(rows))]
                whole = len(rows) - len(rows) % batch_size
                if whole:
                    yield stacked(rows[:whole].reshape(-1, batch_size, size))
                waiting = rows[whole:]
            if len(waiting):  # the epoch's last, smaller batch
                yield stacked(waiting[np.newaxis])

        dataset = tf.data.Dataset.from_generator(groups, output_signature=specs).prefetch(1).unbatch()
        if data.targets == "inputs":
            dataset = dataset.map(lambda batch: (batch, batch))
        if data.batch_map is not None:
            if data.targets is not None or data.columns:
                raise ValueError("batch_map makes a batch's inputs and targets: give no targets or columns with it")
            dataset = dataset.map(data.batch_map)
        if data.columns:
            if data.targets is not None or sum(data.columns.values()) != size:
                raise ValueError(f"columns {data.columns} must cover the {size} numbers of a row, without targets")
            edges = np.cumsum([0, *data.columns.values()])
            parts = {name: (int(edges[k]), int(edges[k + 1])) for k, name in enumerate(data.columns)}
            dataset = dataset.map(lambda batch: {name: batch[:, a:b] for name, (a, b) in parts.items()})
        self.dataset = dataset.prefetch(4).apply(tf.data.experimental.assert_cardinality(-(-count // batch_size)))
        self.dataset = distribute.shard_by_data(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Fix the order of the batches of ``epoch`` (read when the dataset is next iterated)."""
        self.epoch = int(epoch)

    def callback(self) -> keras.callbacks.Callback:
        """A callback that sets the epoch before ``fit`` iterates the dataset for it."""
        return keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: self.set_epoch(epoch))


class _Backup(keras.callbacks.BackupAndRestore):
    """Keras's ``BackupAndRestore`` at most every ``BACKUP_SECONDS``, with the layers' random states.

    Writing weights and optimizer state after every epoch cost about a tenth of an epoch of the
    lab's larger models; an interrupted run now repeats at most ``BACKUP_SECONDS`` of epochs.
    The repeated epochs see the same batches and random numbers (the seed generators' states,
    which ``BackupAndRestore`` does not keep, are saved beside the weights), so a resumed run
    still ends where an uninterrupted one does; :func:`fit_or_load` drops the history rows of the
    epochs after the backup before it resumes. ``before_save`` runs just before each save (the
    best weights go to disk with the state they belong to).
    """

    def __init__(self, backup_folder: Path, before_save: Callable[[], None] | None = None) -> None:
        super().__init__(str(backup_folder))
        self.folder = Path(backup_folder)
        self.before_save = before_save
        self.saved_at = 0.0

    def _states(self) -> list:
        return [v for v in self.model.variables if v.path.endswith("seed_generator_state")]

    def _state_path(self, epochs: int) -> Path:
        return self.folder / f"random_state-{epochs}.npy"

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        path = self._state_path(backed_up_epochs(self.folder.parent))  # the states saved with those weights
        if path.exists():
            saved = load_npy(path)
            states = self._states()
            if len(saved) == len(states):
                for variable, value in zip(states, saved):
                    variable.assign(value)
        self.saved_at = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch, self._last_batch_seen = epoch + 1, 0
        if time.monotonic() - self.saved_at < BACKUP_SECONDS:
            return
        if self.before_save is not None:
            self.before_save()
        # The random states are named by epoch and the older ones removed only once the weights of
        # this epoch are saved: a run killed in between resumes from a matching pair.
        states = [keras.ops.convert_to_numpy(v) for v in self._states()]
        if states:
            save_npy(self._state_path(epoch + 1), np.stack(states), overwrite=True, announce=False)
        self._save_model()
        for stale in self.folder.glob("random_state-*.npy"):
            if stale != self._state_path(epoch + 1):
                stale.unlink(missing_ok=True)
        self.saved_at = time.monotonic()


def backed_up_epochs(run_folder: Path) -> int:
    """Epochs finished when the run's resume state was last saved (0 without one)."""
    metadata = Path(run_folder) / "backup" / "training_metadata.json"
    return int(load_json(metadata).get("epoch", 0)) if metadata.exists() else 0


def _keep_history_rows(path: Path, epochs: int) -> None:
    """Drop ``history.csv``'s rows after the first ``epochs`` (epochs a resumed run repeats)."""
    if not path.exists():
        return
    with path.open(newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    if len(lines) > epochs + 1:
        atomic_write_bytes(path, "".join(lines[: epochs + 1]).encode(), overwrite=True, announce=False)


class _ValidationWatch(keras.callbacks.Callback):
    """Best weights, early stopping and learning-rate halving on ``val_loss``, all resumable.

    The same rules as Keras's ``EarlyStopping(restore_best_weights=True)`` and
    ``ReduceLROnPlateau(factor=0.5)``, ignoring the warm-up epochs, but with their state rebuilt
    from ``history.csv`` when a run resumes. The best weights are kept in memory and written to disk
    (``best.weights.npz``) each time the resume state is (:meth:`keep_on_disk`, called by ``_Backup``
    just before it saves): a run killed and resumed ends with the weights of the best epoch over the
    whole run, as one that never stopped does. (Writing them after every improving epoch cost about
    0.2 s an epoch of notebook 01's models, a tenth of their training.)
    """

    plateau_min_delta = 1e-4  # ReduceLROnPlateau's default: smaller gains count as a plateau

    def __init__(self, run_folder: Path, *, patience: int, plateau_patience: int | None, warmup_epochs: int) -> None:
        super().__init__()
        self.run_folder = run_folder
        self.patience, self.plateau_patience, self.warmup_epochs = patience, plateau_patience, warmup_epochs
        self.weights_path = run_folder / BEST_WEIGHTS
        self.best_weights: list[np.ndarray] | None = None  # of the best epoch since this process started
        self.written = True  # whether best.weights.npz holds best_weights (nothing new to write)

    def on_train_begin(self, logs=None):
        self.best = self.plateau_best = float("inf")
        self.wait = self.plateau_wait = 0
        self.best_weights, self.written = None, True
        # Epochs finished before an interruption: replay them (their learning-rate changes are
        # already in the optimizer state that BackupAndRestore brought back).
        for epoch, loss in enumerate(read_history(self.run_folder / "history.csv").get("val_loss", [])):
            self._observe(epoch, loss)

    def _observe(self, epoch: int, loss: float) -> tuple[bool, bool]:
        """Update the state with one epoch's loss: (improved, plateau reached)."""
        if epoch < self.warmup_epochs:
            return False, False
        improved = loss < self.best
        self.best, self.wait = (loss, 0) if improved else (self.best, self.wait + 1)
        if self.plateau_patience is None or loss < self.plateau_best - self.plateau_min_delta:
            self.plateau_best, self.plateau_wait = loss, 0
            return improved, False
        self.plateau_wait += 1
        if self.plateau_wait >= self.plateau_patience:
            self.plateau_wait = 0
            return improved, True
        return improved, False

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        improved, plateau = self._observe(epoch, float(logs["val_loss"]))
        if improved:
            self.best_weights, self.written = self.model.get_weights(), False  # copies
        if plateau:
            optimizer = self.model.optimizer
            optimizer.learning_rate.assign(0.5 * float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if epoch >= self.warmup_epochs and self.wait >= self.patience and epoch > 0:
            self.model.stop_training = True

    def keep_on_disk(self) -> None:
        """Write the best weights of this process's epochs to ``best.weights.npz`` (atomically), if new."""
        if self.written:
            return
        temporary = self.weights_path.with_name(".best.partial.weights.npz")
        with temporary.open("wb") as handle:
            np.savez(handle, *self.best_weights)
        os.replace(temporary, self.weights_path)
        self.written = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        elif self.weights_path.exists():  # the best epoch came before an interruption
            with np.load(self.weights_path) as saved:
                self.model.set_weights([saved[f"arr_{index}"] for index in range(len(saved.files))])


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


class ProgressBar(keras.callbacks.Callback):
    """One line per training run that updates in place: epochs done, losses, time (tqdm, stdout).

    Replaces Keras's line per epoch: a notebook shows the run's progress, not a log wall, and
    the curves after it tell the story (TensorBoard and ``history.csv`` keep every epoch).
    Outside a terminal or notebook the carriage returns leave a plain text trail.
    """

    def __init__(self, name: str, epochs: int) -> None:
        super().__init__()
        self.name, self.epochs = name, epochs
        self.bar = None

    def on_train_begin(self, logs=None):
        from tqdm import tqdm

        self.bar = tqdm(total=self.epochs, desc=self.name, unit="epoch", file=sys.stdout, ncols=110, mininterval=2.0)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        shown_logs = {key: logs[key] for key in ("loss", "val_loss") if key in logs}
        self.bar.set_postfix({key: f"{value:.4g}" for key, value in shown_logs.items()}, refresh=False)
        self.bar.update(epoch + 1 - self.bar.n)  # a resumed run starts past zero

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()  # draws the final state


def _count(data) -> int:
    """Examples in ``(inputs, targets)`` or ``inputs``, where inputs may be a dict of arrays, or in a
    :class:`StreamedData`."""
    if isinstance(data, StreamedData):
        return len(data)
    inputs = data[0] if isinstance(data, tuple) else data
    return len(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)


def _learning_rate(config: TrainingConfig, examples: int):
    """Adam's learning rate: a number (halved on plateaus by the watch) or a cosine schedule over every step."""
    if config.schedule == "plateau":
        return config.learning_rate
    steps = config.epochs_for(examples) * max(1, -(-examples // config.batch_size))
    return keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=COSINE_FLOOR)


XLA_LEAST_WEIGHTS = 1_000_000  # smaller networks step slower under XLA on a CPU (see xla_pays)
_NOT_FOR_XLA = (  # layers whose CPU kernels (oneDNN) beat XLA's, measured on the lab's classifier and sequence model
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.RNN,
)


def xla_pays(model: keras.Model) -> bool:
    """Whether compiling ``model``'s training step with XLA makes it faster, by the lab's measurements.

    On a machine with a GPU, Keras's own rule ("auto"). On a CPU only dense networks of at least
    ``XLA_LEAST_WEIGHTS`` weights gain (2 cores: a 4 x 768 autoencoder 28 % faster a bare epoch, 8 %
    over notebook 01's whole training, the VAEs 10-16 %); a small one steps slower (the label judge,
    4x slower an epoch), and so do convolutions (the classifier, 30 %) and recurrent layers (the
    sequence model, 33 %).
    """
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return model.jit_compile  # Keras's "auto": XLA where the model supports it
    layers = model._flatten_layers(include_self=False, recursive=True)
    weights = sum(int(np.prod(weight.shape)) for weight in model.weights)
    return weights >= XLA_LEAST_WEIGHTS and not any(isinstance(one, _NOT_FOR_XLA) for one in layers)


def compile_for_training(model: keras.Model, optimizer, loss: str | dict | None, *, jit_compile: bool = True) -> None:
    """Compile ``model`` with ``optimizer`` and ``loss`` (None: the model computes its own, as the VAE does).

    ``jit_compile``: let XLA compile the training step into one program where that pays
    (:func:`xla_pays`). Keras leaves it off on a machine without an accelerator; the same seed still
    gives the same weights run after run (the rounding differs from TensorFlow's graph, as it does
    between two kinds of CPU).
    """
    model.compile(optimizer=optimizer, **({"loss": loss} if loss else {}), jit_compile=jit_compile and xla_pays(model))


def fit_or_load(
    build: Callable[[], keras.Model],
    train_data: tuple[np.ndarray, np.ndarray] | np.ndarray | StreamedData,
    valid_data: tuple[np.ndarray, np.ndarray] | np.ndarray,
    *,
    run_folder: str | Path,
    config: TrainingConfig,
    settings: dict,
    loss: str | dict | None = "mse",
    retrain: bool = False,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int = 0,
    strategy=None,
) -> TrainingResult:
    """Train ``build()`` in ``run_folder``, resuming or reusing earlier work where it matches.

    Parameters
    ----------
    build : callable
        Returns a fresh, uncompiled model (or one whose ``compile`` takes only an optimizer,
        when ``loss`` is None, as the VAE does).
    train_data, valid_data : (inputs, targets) or inputs
        Arrays for ``fit``; a single array means inputs only (the model computes its own loss).
        ``train_data`` may also be a :class:`StreamedData`, read from disk in shuffled blocks
        (:class:`StreamedBatches`), for data larger than memory.
    settings : dict
        Everything else that shapes the model (its config, the data's fingerprint); with
        ``config`` it makes the fingerprint under which the finished model is cached.
    retrain : bool
        Ignore a finished model and train again (the old files are replaced, with a log line).
    verbose : int
        Keras's own output; 0 (the default) leaves one progress bar per run instead.
    strategy : tf.distribute.Strategy, optional
        Where to train (default: ``lib.models.distribute.make_strategy()``, chosen by
        ``LML_DISTRIBUTION``). Under any strategy but the default, the returned model is the
        saved one reloaded, so everything after training runs locally.
    """
    run_folder = Path(run_folder)
    model_path, state_path = run_folder / "model.keras", run_folder / "training.json"
    key = fingerprint(settings, vars(config))
    state = load_json(state_path) if state_path.exists() else {}
    if not retrain and state.get("fingerprint") == key and state.get("finished") and model_path.exists():
        logger.info("loading the finished model from %s (same settings)", shown(model_path))
        return TrainingResult(load_model(model_path), read_history(run_folder / "history.csv"), state["seconds"], True)
    if state.get("fingerprint") != key or retrain or state.get("finished"):
        # Different settings (or a requested retrain): earlier resume state must not leak in.
        if run_folder.exists():
            logger.info("starting a fresh run in %s (replacing earlier files)", shown(run_folder))
        for stale in ("backup", "tensorboard", "history.csv", BEST_WEIGHTS, "best.weights.h5", "model.keras"):
            target = run_folder / stale
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        state = {"fingerprint": key, "settings": settings, "training": vars(config), "seconds": 0.0}
    else:
        logger.info("resuming the interrupted run in %s", shown(run_folder))
        _keep_history_rows(run_folder / "history.csv", backed_up_epochs(run_folder))
    state["finished"] = False
    save_json(state_path, state, overwrite=True)

    strategy = strategy or distribute.make_strategy()
    distributed = strategy is not distribute.make_strategy("default")
    if distributed:
        logger.info("training under %s", distribute.describe(strategy))
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = build()
        optimizer = keras.optimizers.Adam(_learning_rate(config, _count(train_data)))
        # XLA under a tf.distribute strategy is Keras's to refuse: compiled on one device only.
        compile_for_training(model, optimizer, loss, jit_compile=config.jit_compile and not distributed)
    if isinstance(train_data, StreamedData):  # read from disk as training goes (a collection past memory)
        batches = StreamedBatches(train_data, batch_size=config.batch_size, seed=config.seed)
    else:
        inputs, targets = train_data if isinstance(train_data, tuple) else (train_data, None)
        batches = EpochShuffledBatches(inputs, targets, batch_size=config.batch_size, seed=config.seed)
    epochs = config.epochs_for(_count(train_data))
    if epochs < config.epochs:
        logger.info(
            "%d training examples: %d epochs instead of %d (TrainingConfig.full_epochs_up_to = %d)",
            _count(train_data),
            epochs,
            config.epochs,
            config.full_epochs_up_to,
        )
    watch = _ValidationWatch(
        run_folder,
        patience=config.patience,
        plateau_patience=max(2, config.patience // 3) if config.schedule == "plateau" else None,
        warmup_epochs=config.warmup_for(_count(train_data)),
    )
    callbacks = [
        # The watch first: the resume state saved after an epoch holds its learning-rate change.
        watch,
        _Backup(run_folder / "backup", before_save=watch.keep_on_disk),
        # Extra callbacks run before the loggers, so values they add to the logs are recorded.
        *(extra_callbacks or []),
        batches.callback(),
        keras.callbacks.TensorBoard(str(run_folder / "tensorboard"), write_graph=False),
        keras.callbacks.CSVLogger(str(run_folder / "history.csv"), append=True),
        _Stopwatch(state_path, state),
        *([ProgressBar(f"training {run_folder.name}", epochs)] if verbose == 0 else []),
    ]
    model.fit(
        batches.dataset,
        validation_data=valid_data,
        epochs=epochs,
        shuffle=False,  # the batches are already shuffled, by epoch (EpochShuffledBatches)
        callbacks=callbacks,
        verbose=verbose,
    )
    # From here on the model predicts as a loaded one does (uncompiled: no XLA), so that a run that
    # trains and a run that loads the finished model give the same figures to the last digit.
    model.jit_compile = False
    model.predict_function = model.test_function = None
    save_model(model, model_path)
    (run_folder / BEST_WEIGHTS).unlink(missing_ok=True)  # the final model holds the best weights
    state["finished"] = True
    save_json(state_path, state, overwrite=True)
    if distributed:  # evaluation after training is local: the saved model, outside the strategy
        model = load_model(model_path)
    return TrainingResult(model, read_history(run_folder / "history.csv"), state["seconds"], False)
