"""Whole recordings through a clip codec: compress a file of any length and hear it back, seamlessly.

The lab's models work on one clip at a time. A recording is cut into clips that **overlap**
(by default by an eighth of a clip), every clip is encoded to its
latent (one *frame* of the compressed file), and decoding goes the other way without seams:

1. every frame is decoded to its clip's normalised spectrogram;
2. the spectrograms are laid back at their places on the recording's own frame grid and
   **cross-faded** where they overlap (linear ramps, so a clip's edges, where its own STFT saw
   zero padding, count least);
3. **one Griffin-Lim** runs over the whole recording's spectrogram, block by block: each block
   starts from the gradient phase integrated over the whole recording (so neighbouring blocks
   start from the same phase), runs with context frames on both sides, and blocks meet in a
   short cross-fade. Phase is continuous across clips, and memory stays flat in the length.

Everything streams: audio is read in blocks (``lib.data.audio.AudioStream``: the folder path's checks
and messages), clips are encoded in batches, and decoded samples are written as they are ready.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol

import numpy as np
import soundfile

from lib.core import paths
from lib.core.errors import AudioInputError, NotReadyError
from lib.data.audio import AudioStream, check_file
from lib.data.decoding import ClipCutter, CollectionConfig
from lib.data.decoding import file_gain as collection_file_gain
from lib.models.container import SUFFIX, CompressedHeader, read_container, write_container
from lib.models.latent import pad_latents
from lib.spectral.basis import SpectralBasis
from lib.spectral.inversion import PhaseIntegrator, griffin_lim_block
from lib.spectral.representation import SpectrogramRepresentation, stft_magnitude

logger = logging.getLogger(__name__)

ENCODE_BATCH = 64  # clips encoded (and decoded) at a time: memory is bounded by a batch, not by the file
BLOCK_FRAMES = 1024  # frames of one Griffin-Lim block (~16 s at hop 256, 16 kHz)
CONTEXT_FRAMES = 16  # frames of context on each side of a block, discarded after its Griffin-Lim
CROSSFADE_FRAMES = 4  # blocks meet in a linear cross-fade this many frames long
# Griffin-Lim iterations over a decoded recording. Fewer than the representation's 16 (chosen by
# `make bench` on true magnitudes): a decoded spectrogram is not any signal's, and past 8 iterations the
# distance to the original barely moves (`lml report` measures both: `distance_db` "recording codec"
# and "recording codec, 16 iterations") while the time does.
RECORDING_ITERATIONS = 8
OVERLAP_SHARE = 1 / 8  # of a clip shared with each neighbour (see default_clip_hop)
LEVEL = CollectionConfig()  # the level the folder path brings every file to (target RMS, peak limit)


class ClipCodec(Protocol):
    """What the recording pipeline needs of a codec (``lib.models.codec.LatentCodec`` is one)."""

    representation: SpectrogramRepresentation

    @property
    def latent_dim(self) -> int: ...

    def encode_spectrograms(
        self, spectrograms: np.ndarray, *, size: int | None = None, refine_steps: int = 0
    ) -> np.ndarray: ...

    def decode_spectrograms(self, latents: np.ndarray, *, size: int | None = None) -> np.ndarray: ...

    def refine_span(
        self,
        span_spectrogram: np.ndarray,
        latents: np.ndarray,
        *,
        size: int,
        refine_steps: int,
        hop: int,
        weights: np.ndarray,
    ) -> np.ndarray: ...


class PcaCodec:
    """The PCA baseline as a clip codec: the first ``size`` coefficients of a spectral basis."""

    def __init__(self, representation: SpectrogramRepresentation, basis: SpectralBasis) -> None:
        self.representation, self.basis = representation, basis

    @property
    def latent_dim(self) -> int:
        """Coefficients of the basis."""
        return self.basis.size

    def encode_spectrograms(
        self, spectrograms: np.ndarray, *, size: int | None = None, refine_steps: int = 0
    ) -> np.ndarray:
        """Spectrograms [shape=(n, bins, frames)] to coefficients [shape=(n, basis size)] (every size alike).

        PCA has no search: its code is the projection (``refine_steps`` must be 0).
        """
        if refine_steps:
            _refuse_search()
        return self.basis.transform(spectrograms)

    def refine_span(
        self,
        span_spectrogram: np.ndarray,
        latents: np.ndarray,
        *,
        size: int,
        refine_steps: int,
        hop: int,
        weights: np.ndarray,
    ) -> np.ndarray:
        """PCA has no search for a recording's clips either: raises ValueError."""
        _refuse_search()

    def decode_spectrograms(self, latents: np.ndarray, *, size: int | None = None) -> np.ndarray:
        """Coefficients [shape=(n, basis size)] to spectrograms, keeping the first ``size``."""
        size = size or self.basis.size
        return self.basis.inverse(np.asarray(latents, dtype=np.float32)[:, :size], keep=size)


def _refuse_search() -> NoReturn:
    raise ValueError("PCA's code is the projection: the search is the learned codec's (refine_steps=0)")


@dataclass(frozen=True)
class CodecModel:
    """A loaded codec with the identity a compressed file records: its name, dataset and fingerprint."""

    name: str
    dataset: str
    fingerprint: str
    codec: ClipCodec
    trained: TrainedModel | None = None  # where it came from (its dataset's files and splits)


@dataclass(frozen=True)
class TrainedModel:
    """Where a trained model of the lab lives: its run folder, and the prepared collection it learned
    (``representation.json`` and the manifest of files and splits) with the audio folder behind it."""

    name: str  # "autoencoder" (notebook 01's) or "phrases" (notebook 05's, on the genres' 4 s phrases)
    dataset: str  # a shipped dataset's name or a folder's path
    run_folder: Path
    data_folder: Path
    audio_folder: Path | None = None  # None for the notes (rendered clips, no recordings)

    @property
    def representation_path(self) -> Path:
        """The representation (with the dataset's normalisation constants) the model was trained in."""
        return self.data_folder / "representation.json"

    def exists(self) -> bool:
        """Whether the model has been trained (and its dataset prepared)."""
        return (self.run_folder / "model.keras").is_file() and self.representation_path.is_file()

    def fingerprint(self) -> str:
        """Hash of everything that decides the decoded audio: weights, basis, shrinkage, representation, and
        the model of the smallest sizes with its shrinkage where the run has one."""
        from lib.models.codec import SHRINKAGE_FILE, SMALL_SIZES_FOLDER

        digest = hashlib.sha256()
        small = self.run_folder / SMALL_SIZES_FOLDER
        files = [self.run_folder / "model.keras", self.representation_path, self.run_folder / SHRINKAGE_FILE]
        files += sorted((self.run_folder / "basis").glob("*"))
        files += [small / "model.keras", small / SHRINKAGE_FILE]
        for path in files:
            if path.is_file():
                digest.update((f"{SMALL_SIZES_FOLDER}/{path.name}" if path.parent == small else path.name).encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def load(self) -> CodecModel:
        """The codec (safe-mode Keras loading) with its identity."""
        from lib.models.codec import LatentCodec

        representation = SpectrogramRepresentation.load(self.representation_path)
        codec = LatentCodec.load(self.run_folder, representation)
        return CodecModel(self.name, self.dataset, self.fingerprint(), codec, self)

    def files(self, split: str, *, hours: float | None = None, seed: int = 0) -> list[tuple[Path, str]]:
        """The recordings of one split of the model's collection, with their labels, sorted.

        With ``hours``, a seeded sample of them that lasts at most that long (at least one file): each
        label gives files in proportion to its share of the split (:func:`sample_files`), so that work
        over a split's recordings stays bounded on a large folder.

        Raises
        ------
        AudioInputError
            For the notes, which hold rendered clips rather than recordings.
        """
        return self.sampled_files({split: hours}, seed=seed)[0][split]

    def sampled_files(
        self, hours: dict[str, float | None], *, seed: int = 0
    ) -> tuple[dict[str, list[tuple[Path, str]]], dict[str, int]]:
        """For every split named in ``hours``: its recordings as :meth:`files` gives them (a sample of at
        most that many hours; None: all), and how many recordings the split holds, from one read of the
        collection's manifest (a large folder's manifest holds a row per clip)."""
        from lib.data.collection import load_collection

        if self.audio_folder is None:
            raise AudioInputError("holds single notes, not recordings: name the files to measure", self.dataset)
        collection = load_collection(self.data_folder)
        clip_seconds = collection.config.clip_seconds
        labels: dict[str, dict[str, str]] = {split: {} for split in hours}
        seconds: dict[str, dict[str, float]] = {split: {} for split in hours}
        for row in collection.manifest:
            split, name = row["split"], row["file"]
            if split in hours:
                labels[split][name] = row["label"]
                end = float(row["start_seconds"]) + clip_seconds
                seconds[split][name] = max(seconds[split].get(name, 0.0), end)
        kept = {
            split: sorted(labels[split])
            if budget is None
            else sample_files(labels[split], seconds[split], budget * 3600, seed=seed)
            for split, budget in hours.items()
        }
        sampled = {split: [(self.audio_folder / name, labels[split][name]) for name in kept[split]] for split in hours}
        return sampled, {split: len(labels[split]) for split in hours}


def sample_files(
    labels: dict[str, str], seconds: dict[str, float], budget_seconds: float, *, seed: int = 0
) -> list[str]:
    """Files (names) that last at most ``budget_seconds`` together, sorted; at least one.

    Each label's files are shuffled (seeded) and the labels take turns in proportion to their file
    counts (the ``k``-th of a label's ``n`` files comes at ``(k + u) / n``, ``u`` uniform), so a sample
    keeps every label's share; in that order, each file that still fits in the budget is taken.
    """
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[str]] = {}
    for name in sorted(labels):
        by_label.setdefault(labels[name], []).append(name)
    keyed = []
    for names in by_label.values():
        order = rng.permutation(len(names))
        keyed += [((rank + rng.uniform()) / len(names), names[index]) for rank, index in enumerate(order)]
    kept, total = [], 0.0
    for _, name in sorted(keyed):
        if kept and total + seconds[name] > budget_seconds:
            continue
        kept.append(name)
        total += seconds[name]
    return sorted(kept)


def model_candidates(dataset: str) -> list[TrainedModel]:
    """The models a dataset may have, in the order the command line prefers them.

    Every dataset: notebook 01's autoencoder (``make run-all DATASET=<dataset>``). The genre
    collections also: notebook 05's autoencoder of their 4 s phrases, which every ``make run-all``
    trains (so a music model exists after the default run too).
    """
    data, models = paths.data_dir(dataset=dataset), paths.outputs_dir(dataset=dataset) / "models"
    if dataset == "genres":
        return [
            TrainedModel("autoencoder", dataset, models / "autoencoder", data / "clips", data / "audio"),
            TrainedModel(
                "phrases",
                dataset,
                models / "05_genres" / "autoencoder",
                data / "phrases" / "clips",
                data / "phrases" / "audio",
            ),
        ]
    audio = None if dataset == paths.DEFAULT_DATASET else Path(dataset)
    return [TrainedModel("autoencoder", dataset, models / "autoencoder", data, audio)]


def find_model(dataset: str = "genres", name: str | None = None) -> TrainedModel:
    """The trained model of ``dataset`` (named, or the first of :func:`model_candidates` that exists).

    Raises
    ------
    AudioInputError
        If none is trained yet, with the command that trains it.
    """
    candidates = model_candidates(dataset)
    if name is not None:
        candidates = [model for model in candidates if model.name == name]
        if not candidates:
            known = ", ".join(model.name for model in model_candidates(dataset))
            raise AudioInputError(f"no model named {name!r} for this dataset (it has: {known})", dataset)
    for model in candidates:
        if model.exists():
            return model
    looked = "; ".join(paths.shown(model.run_folder) for model in candidates)
    shown_dataset = dataset if dataset in paths.SHIPPED_DATASETS else paths.shown(dataset)
    command = f"make run-all DATASET={shown_dataset}"
    if dataset == "genres":
        command += " (or `make run-all`, whose notebook 05 trains the genre phrases' model)"
    raise NotReadyError(f"no trained model yet (looked in {looked}); train one with `{command}`", dataset)


def default_clip_hop(config) -> int:
    """Samples between clip starts: a clip less an eighth of it (``OVERLAP_SHARE``), in whole STFT frames.

    Clips share the recording's frame grid, so the hop is a whole number of STFT hops. Measured on
    the genre collections' test files (``lml report``, the README's "Whole recordings"):
    half-overlapping clips blur the sound where two clips are averaged (a larger log-mel distance
    at the same numbers per second), and an overlap of a few frames leaves seams (spectral flux at
    clip boundaries well above the flux inside clips); an eighth of a clip does neither
    (``scripts/recording_hops.py`` measures smaller overlaps at the same rate).
    """
    real_frames = 1 + config.clip_samples // config.hop_length
    return (real_frames - int(np.ceil(real_frames * OVERLAP_SHARE))) * config.hop_length


def latent_size_for_rate(config, numbers_per_second: float, latent_dim: int, clip_hop_samples: int) -> int:
    """The latent size whose frames come to ``numbers_per_second`` (rounded; 1..``latent_dim``)."""
    size = round(numbers_per_second * clip_hop_samples / config.sample_rate)
    return int(min(max(size, 1), latent_dim))


def refuse_overwrite(destination: Path, overwrite: bool) -> None:
    """Raise FileExistsError when ``destination`` exists and may not be replaced (nothing is overwritten silently)."""
    if destination.exists() and not overwrite:
        raise FileExistsError(f"{destination}: already exists; pass overwrite=True (lml: --force) to replace it")


def check_clip_hop(config, clip_hop_samples: int) -> None:
    """Refuse a clip hop that leaves gaps or falls off the frame grid."""
    if clip_hop_samples % config.hop_length or not 0 < clip_hop_samples <= config.clip_samples:
        raise ValueError(
            f"clip hop {clip_hop_samples} must be a multiple of the STFT hop ({config.hop_length}) "
            f"and at most a clip ({config.clip_samples} samples)"
        )


def clip_count(samples: int, clip_samples: int, clip_hop_samples: int) -> int:
    """Clips needed to cover ``samples``: starts every hop until one reaches the end."""
    if samples <= clip_samples:
        return 1
    return 1 + -(-(samples - clip_samples) // clip_hop_samples)


def file_gain(stream: AudioStream) -> float:
    """The gain that brings a decoded file to the training clips' level (the folder path's rule)."""
    return collection_file_gain(stream, LEVEL)


def clip_stream(blocks: Iterable[np.ndarray], clip_samples: int, clip_hop_samples: int) -> Iterator[np.ndarray]:
    """Clips [shape=(clip_samples,)] every ``clip_hop_samples`` over a stream of blocks, the last
    ones padded with silence, until the clips cover every sample (a short stream gives one clip)."""
    cutter = ClipCutter(clip_samples, clip_hop_samples)
    total = 0
    for block in blocks:
        total += len(block)
        for clip, _ in cutter.push(block):
            yield clip
    for start in range(cutter.next_start, max(total, 1), clip_hop_samples):
        if start > 0 and start - clip_hop_samples + clip_samples >= total:
            break  # the previous clip already reached the end
        offset = start - cutter.buffer_start
        piece = cutter.buffer[offset : offset + clip_samples]
        yield np.pad(piece, (0, clip_samples - len(piece)))


def encode_stream(
    codec: ClipCodec,
    blocks: Iterable[np.ndarray],
    *,
    latent_size: int,
    clip_hop_samples: int,
    gain: float = 1.0,
    on_clips: Callable[[int], None] | None = None,
    refine_steps: int = 0,
) -> tuple[np.ndarray, int]:
    """Latent frames [shape=(clips, latent_size)] of a stream of sample blocks, and its length in samples.

    ``refine_steps`` > 0: the numbers of each batch of clips are searched together for the closest decoding of
    the stretch they cover, cross-faded as :func:`decode_stream` lays them, with neighbours kept close where they
    overlap (``LatentCodec.refine_span``); the decoder and the file's format are the same either way.
    """
    config = codec.representation.config
    check_clip_hop(config, clip_hop_samples)
    if refine_steps < 0:
        raise ValueError(f"search steps must be 0 or more, got {refine_steps}")
    if not 1 <= latent_size <= codec.latent_dim:
        raise ValueError(f"latent size must lie in 1..{codec.latent_dim}, got {latent_size}")
    counted = _Counted(blocks, gain)
    frames, batch = [], []
    for clip in clip_stream(counted, config.clip_samples, clip_hop_samples):
        batch.append(clip)
        if len(batch) == ENCODE_BATCH:
            frames.append(_encode(codec, batch, latent_size, on_clips, refine_steps, clip_hop_samples))
            batch = []
    if batch:
        frames.append(_encode(codec, batch, latent_size, on_clips, refine_steps, clip_hop_samples))
    return np.concatenate(frames), counted.samples


class _Counted:
    """Blocks scaled by a gain, counting the samples that went through."""

    def __init__(self, blocks: Iterable[np.ndarray], gain: float) -> None:
        self.blocks, self.gain, self.samples = blocks, np.float32(gain), 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self.blocks:
            self.samples += len(block)
            yield np.asarray(block, dtype=np.float32) * self.gain


def _encode(
    codec: ClipCodec, batch: list[np.ndarray], latent_size: int, on_clips, refine_steps: int, clip_hop_samples: int
) -> np.ndarray:
    clips = np.stack(batch)
    latents = codec.encode_spectrograms(codec.representation.forward(clips), size=latent_size, refine_steps=0)
    if refine_steps:  # the batch's clips searched together, as they will be decoded
        hop_frames, _, weights = crossfade(codec.representation.config, clip_hop_samples)
        latents = codec.refine_span(
            span_spectrogram(codec.representation, clips, clip_hop_samples),
            latents,
            size=latent_size,
            refine_steps=refine_steps,
            hop=hop_frames,
            weights=weights,
        )
    if on_clips is not None:
        on_clips(len(batch))
    return np.asarray(latents, dtype=np.float32)[:, :latent_size]


def span_spectrogram(representation: SpectrogramRepresentation, clips: np.ndarray, clip_hop_samples: int) -> np.ndarray:
    """The normalised spectrogram [shape=(bins, (n - 1) * hop frames + real frames)] of the stretch of recording that
    consecutive clips [shape=(n, clip_samples)], ``clip_hop_samples`` apart, cover: the frames they decode to."""
    config = representation.config
    span = np.zeros((len(clips) - 1) * clip_hop_samples + config.clip_samples, np.float32)
    for index, clip in enumerate(clips):
        span[index * clip_hop_samples : index * clip_hop_samples + config.clip_samples] = clip
    magnitude = stft_magnitude(span[None], n_fft=config.n_fft, hop_length=config.hop_length)[0]
    return representation.normalise_magnitude(magnitude[: config.frequency_bins])


def recording_inverter(
    representation: SpectrogramRepresentation,
    samples: int,
    *,
    iterations: int | None = None,
    block_frames: int = BLOCK_FRAMES,
    threads: int | None = None,
) -> StreamingInverter:
    """The streaming Griffin-Lim over a recording of ``samples`` samples in ``representation``'s STFT."""
    config = representation.config
    return StreamingInverter(
        total_frames=1 + samples // config.hop_length,
        total_samples=samples,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        top=float(representation.denormalise(np.ones(1, np.float32))[0]),  # the level that maps to 1.0
        iterations=iterations or RECORDING_ITERATIONS,
        momentum=representation.momentum,
        block_frames=block_frames,
        threads=threads,
    )


def clip_weights(frames: int, overlap: int) -> np.ndarray:
    """Cross-fade weights over a clip's frames [shape=(frames,)]: linear ramps over the ``overlap``
    frames it shares with each neighbour, 1 between them, never 0 (the edge frames count least).

    Neighbouring clips' ramps sum to 1 where they overlap, so outside the overlaps every frame is
    one clip's own, unblurred by averaging.
    """
    positions = np.arange(frames, dtype=np.float32) + 0.5
    ramp = np.clip(np.minimum(positions, frames - positions) / max(overlap, 1), 0.0, 1.0)
    return ramp.astype(np.float32)


def crossfade(config, clip_hop_samples: int) -> tuple[int, int, np.ndarray]:
    """How clips ``clip_hop_samples`` apart are laid: (the hop in STFT frames, a clip's real frames, its
    cross-fade weights [shape=(real frames,)]), the same for the search when encoding and for decoding."""
    hop_frames, real_frames = clip_hop_samples // config.hop_length, 1 + config.clip_samples // config.hop_length
    return hop_frames, real_frames, clip_weights(real_frames, real_frames - hop_frames)


def decode_stream(
    codec: ClipCodec,
    latents: np.ndarray,
    *,
    samples: int,
    clip_hop_samples: int,
    gain: float = 1.0,
    iterations: int | None = None,
    block_frames: int = BLOCK_FRAMES,
    threads: int | None = None,
    on_clips: Callable[[int], None] | None = None,
) -> Iterator[np.ndarray]:
    """Sample blocks of the recording that latent frames [shape=(clips, size)] encode, in order.

    Their concatenation holds ``samples`` samples, divided by ``gain`` (back to the source's level).
    """
    representation = codec.representation
    config = representation.config
    check_clip_hop(config, clip_hop_samples)
    latents = np.asarray(latents, dtype=np.float32)
    size = latents.shape[1]
    if not 1 <= size <= codec.latent_dim:
        raise ValueError(f"latent size must lie in 1..{codec.latent_dim}, got {size}")
    expected = clip_count(samples, config.clip_samples, clip_hop_samples)
    if len(latents) != expected:
        raise ValueError(f"{len(latents)} latent frames, but {samples} samples need {expected}")
    hop_frames, real_frames, weights = crossfade(config, clip_hop_samples)
    weights = weights[:, None]
    total_frames = 1 + samples // config.hop_length
    inverter = recording_inverter(
        representation, samples, iterations=iterations, block_frames=block_frames, threads=threads
    )
    nyquist = config.n_fft // 2 + 1 - config.frequency_bins
    base = 0  # frame index of the accumulators' first row
    summed = np.zeros((0, config.frequency_bins), np.float32)
    weight = np.zeros((0, 1), np.float32)
    scale = np.float32(1.0 / gain)
    for start in range(0, len(latents), ENCODE_BATCH):
        chunk = latents[start : start + ENCODE_BATCH]
        spectrograms = codec.decode_spectrograms(
            pad_latents(np.asarray(chunk, np.float32), codec.latent_dim), size=size
        )[..., :real_frames]
        if on_clips is not None:
            on_clips(len(chunk))
        end_frame = min(total_frames, (start + len(chunk) - 1) * hop_frames + real_frames)
        grow = end_frame - base - len(summed)
        if grow > 0:
            summed = np.concatenate([summed, np.zeros((grow, config.frequency_bins), np.float32)])
            weight = np.concatenate([weight, np.zeros((grow, 1), np.float32)])
        for offset, spectrogram in enumerate(spectrograms):
            first = (start + offset) * hop_frames - base
            count = min(real_frames, total_frames - base - first)
            summed[first : first + count] += weights[:count] * spectrogram.T[:count]
            weight[first : first + count] += weights[:count]
        last = start + len(chunk) >= len(latents)
        final = len(summed) if last else min(len(summed), (start + len(chunk)) * hop_frames - base)
        magnitude = representation.denormalise(summed[:final] / weight[:final])
        magnitude = np.pad(magnitude, [(0, 0), (0, nyquist)])
        for block in inverter.push(magnitude, last=last):
            yield block * scale
        summed, weight, base = summed[final:], weight[final:], base + final


class StreamingInverter:
    """Griffin-Lim over a recording's whole spectrogram, in blocks, with flat memory.

    Push frames (linear magnitudes [shape=(frames, n_fft // 2 + 1)]) in order; get samples in
    order. Block ``j`` reconstructs frames ``[j B, (j + 1) B)`` with ``CONTEXT_FRAMES`` more on
    each side, from the gradient phase integrated over the recording (:class:`PhaseIntegrator`);
    neighbouring blocks meet in a ``CROSSFADE_FRAMES`` cross-fade, well inside both blocks'
    context. Up to ``threads`` blocks run at once.
    """

    def __init__(
        self,
        *,
        total_frames: int,
        total_samples: int,
        n_fft: int,
        hop_length: int,
        top: float,
        iterations: int,
        momentum: float,
        block_frames: int = BLOCK_FRAMES,
        threads: int | None = None,
    ) -> None:
        if total_frames != 1 + total_samples // hop_length:
            raise ValueError(
                f"{total_samples} samples have {1 + total_samples // hop_length} frames, not {total_frames}"
            )
        if block_frames < 2 * CONTEXT_FRAMES:
            raise ValueError(f"block_frames must be at least {2 * CONTEXT_FRAMES}, got {block_frames}")
        self.total_frames, self.total_samples = total_frames, total_samples
        self.n_fft, self.hop_length, self.iterations, self.momentum = n_fft, hop_length, iterations, momentum
        self.block_frames, self.threads = block_frames, max(1, threads or os.cpu_count() or 1)
        self.integrator = PhaseIntegrator(n_fft=n_fft, hop_length=hop_length, top=top)
        self.half_fade = CROSSFADE_FRAMES * hop_length // 2
        self.magnitude = np.zeros((0, n_fft // 2 + 1), np.float32)
        self.phase = np.zeros((0, n_fft // 2 + 1), np.float32)
        self.base = 0  # frame index of the buffers' first row
        self.next_block = 0  # first frame of the next block's core
        self.pending: np.ndarray | None = None  # the last block's tail, to cross-fade with the next

    def push(self, magnitude: np.ndarray, *, last: bool = False) -> Iterator[np.ndarray]:
        """Samples finished by these frames (all of the rest when ``last``)."""
        magnitude = np.asarray(magnitude, dtype=np.float32)
        self.magnitude = np.concatenate([self.magnitude, magnitude])
        self.phase = np.concatenate([self.phase, self.integrator(magnitude)])
        available = self.base + len(self.magnitude)
        if last and available != self.total_frames:
            raise ValueError(f"{available} frames pushed, the recording has {self.total_frames}")
        while True:
            cores = []
            start = self.next_block
            while start < self.total_frames and len(cores) < self.threads:
                end = min(start + self.block_frames, self.total_frames)
                if self.total_frames - end < CONTEXT_FRAMES:  # no tiny last block: it joins this one
                    end = self.total_frames
                if min(end + CONTEXT_FRAMES, self.total_frames) > available:
                    break
                cores.append((start, end))
                start = end
            if not cores:
                return
            with ThreadPoolExecutor(max_workers=len(cores)) as pool:
                signals = list(pool.map(lambda core: self._block(*core), cores))
            for (start, end), signal in zip(cores, signals):
                yield from self._emit(start, end, signal)
            self.next_block = cores[-1][1]
            keep_from = max(0, self.next_block - CONTEXT_FRAMES) - self.base
            self.magnitude, self.phase = self.magnitude[keep_from:], self.phase[keep_from:]
            self.base += keep_from

    def _block(self, start: int, end: int) -> np.ndarray:
        """Griffin-Lim on frames [start, end) with context; returns samples from frame ``first``'s centre."""
        first, stop = max(0, start - CONTEXT_FRAMES), min(self.total_frames, end + CONTEXT_FRAMES)
        if stop == self.total_frames:
            samples = self.total_samples - first * self.hop_length
        else:
            samples = (stop - first - 1) * self.hop_length
        rows = slice(first - self.base, stop - self.base)
        return griffin_lim_block(
            self.magnitude[rows],
            self.phase[rows],
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            samples=samples,
            iterations=self.iterations,
            momentum=self.momentum,
        )

    def _emit(self, start: int, end: int, signal: np.ndarray) -> Iterator[np.ndarray]:
        """The block's samples in order, cross-faded with the previous block's tail."""
        origin = max(0, start - CONTEXT_FRAMES) * self.hop_length  # global sample of signal[0]
        low = 0 if start == 0 else start * self.hop_length - self.half_fade
        high = self.total_samples if end == self.total_frames else end * self.hop_length + self.half_fade
        piece = signal[low - origin : high - origin]
        if self.pending is not None:
            fade = len(self.pending)
            ramp = (np.arange(fade, dtype=np.float32) + 0.5) / fade
            piece = piece.copy()
            piece[:fade] = self.pending * (1.0 - ramp) + piece[:fade] * ramp
        if end == self.total_frames:
            self.pending = None
            yield piece
        else:
            self.pending = piece[-2 * self.half_fade :].copy()
            yield piece[: -2 * self.half_fade]


@dataclass(frozen=True)
class CompressionSummary:
    """What a compression or decompression did, for the command line and the report."""

    source: Path
    destination: Path
    header: CompressedHeader
    file_bytes: int
    seconds: float  # wall-clock time

    @property
    def bitrate_kbps(self) -> float:
        """Bits of the whole compressed file (header included) per second of audio, in kbit/s."""
        return 8 * self.file_bytes / self.header.seconds / 1000

    @property
    def speed(self) -> float:
        """Seconds of audio per second of work."""
        return self.header.seconds / max(self.seconds, 1e-9)


def search_steps(model: CodecModel, refine_steps: int) -> int:
    """``refine_steps`` where the model's codec can search its clips' numbers (a ``LatentCodec`` with a linear
    path), else 0, with a warning: PCA and older models encode as they are."""
    if refine_steps and not getattr(model.codec, "has_linear_path", False):
        logger.warning(
            "model %s cannot search its clips' numbers: they are coded as its encoder gives them", model.name
        )
        return 0
    return refine_steps


def _progress(total: float, description: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="clip", disable=None if enabled else True, file=sys.stderr)


def compress_file(
    source: str | Path,
    destination: str | Path,
    model: CodecModel,
    *,
    latent_size: int,
    clip_hop_samples: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    refine_steps: int = 0,
) -> CompressionSummary:
    """Compress an audio file (any format, rate, channels, length the folder path reads) to ``destination``.

    Reads the file twice in blocks (its level, then its clips), so memory does not grow with its length.
    ``refine_steps`` > 0 searches each clip's numbers for its closest decoding (slower to compress; the
    file decodes with the same model and the same cost).

    Raises
    ------
    AudioInputError
        If the file is not usable audio (the folder path's checks and messages).
    FileExistsError
        If ``destination`` exists and ``overwrite`` is False.
    """
    started = time.perf_counter()
    source, destination = Path(source), Path(destination)
    refuse_overwrite(destination, overwrite)
    config = model.codec.representation.config
    clip_hop_samples = clip_hop_samples or default_clip_hop(config)
    check_clip_hop(config, clip_hop_samples)
    check_file(source)
    survey = AudioStream(source, sample_rate=config.sample_rate)
    for _ in survey:
        pass
    survey.finish()
    for note in survey.notes():
        logger.warning("%s: %s", paths.shown(source), note)
    gain = file_gain(survey)
    refine_steps = search_steps(model, refine_steps)
    clips = clip_count(survey.samples_out, config.clip_samples, clip_hop_samples)
    with _progress(clips, f"compressing {source.name}", progress) as bar:
        latents, samples = encode_stream(
            model.codec,
            AudioStream(source, sample_rate=config.sample_rate),
            latent_size=latent_size,
            clip_hop_samples=clip_hop_samples,
            gain=gain,
            on_clips=bar.update,
            refine_steps=refine_steps,
        )
    header = CompressedHeader(
        model_name=model.name,
        model_dataset=model.dataset,
        model_fingerprint=model.fingerprint,
        latent_size=latent_size,
        sample_rate=config.sample_rate,
        samples=samples,
        clip_samples=config.clip_samples,
        clip_hop_samples=clip_hop_samples,
        frame_count=len(latents),
        gain=float(gain),
        source_name=source.name,
        source_sample_rate=survey.source_rate,
        source_channels=survey.channels,
    )
    write_container(destination, header, latents, overwrite=overwrite)
    return CompressionSummary(source, destination, header, destination.stat().st_size, time.perf_counter() - started)


def check_model(header: CompressedHeader, model: CodecModel, name: str | Path) -> None:
    """Refuse to decode with another model than the one that compressed the file."""
    if header.model_fingerprint != model.fingerprint:
        raise AudioInputError(
            f"was compressed with model {header.model_fingerprint} ({header.model_name} of "
            f"{paths.shown(header.model_dataset)}), but the model here is {model.fingerprint} ({model.name} of "
            f"{paths.shown(model.dataset)}): decompress with the model that compressed it",
            name,
        )
    config = model.codec.representation.config
    if (header.sample_rate, header.clip_samples) != (config.sample_rate, config.clip_samples):
        raise AudioInputError("corrupted: the header's clip shape disagrees with its model's", name)


def decompress_file(
    source: str | Path,
    destination: str | Path,
    model: CodecModel,
    *,
    overwrite: bool = False,
    progress: bool = False,
    iterations: int | None = None,
) -> CompressionSummary:
    """Decompress a file written by :func:`compress_file` to a mono 16-bit WAV at the lab's rate.

    Samples are written as they are decoded, into a temporary file renamed at the end.

    Raises
    ------
    AudioInputError
        If the file is not a compressed file, is truncated or corrupted, or another model compressed it.
    FileExistsError
        If ``destination`` exists and ``overwrite`` is False.
    """
    started = time.perf_counter()
    source, destination = Path(source), Path(destination)
    refuse_overwrite(destination, overwrite)
    header, latents = read_container(source)
    check_model(header, model, source)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".wav")
    os.close(handle)
    clipped = 0
    try:
        with (
            soundfile.SoundFile(
                temporary, "w", samplerate=header.sample_rate, channels=1, subtype="PCM_16", format="WAV"
            ) as output,
            _progress(header.frame_count, f"decompressing {source.name}", progress) as bar,
        ):
            for block in decode_stream(
                model.codec,
                latents,
                samples=header.samples,
                clip_hop_samples=header.clip_hop_samples,
                gain=header.gain,
                iterations=iterations,
                on_clips=bar.update,
            ):
                clipped += int(np.count_nonzero(np.abs(block) > 1.0))
                output.write(np.clip(block, -1.0, 1.0))
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if clipped:
        logger.warning("%s: %d samples beyond full scale were clipped", paths.shown(destination), clipped)
    return CompressionSummary(source, destination, header, source.stat().st_size, time.perf_counter() - started)


def compressed_name(source: str | Path) -> Path:
    """The default compressed file of a source: the same name with the ``.lml`` suffix."""
    return Path(source).with_suffix(SUFFIX)


def decode_frames(codec: ClipCodec, latents: np.ndarray, *, clip_hop_samples: int) -> np.ndarray:
    """The waveform [shape=(samples,)] that latent frames [shape=(clips, size)] encode: the frames' span,
    ``(clips - 1) * clip_hop_samples + clip_samples`` samples, decoded in one piece."""
    samples = (len(latents) - 1) * clip_hop_samples + codec.representation.config.clip_samples
    return np.concatenate(list(decode_stream(codec, latents, samples=samples, clip_hop_samples=clip_hop_samples)))
