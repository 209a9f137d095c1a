"""How well whole recordings come back: distances, seams, speed, against baselines, with a listening page.

``lml report`` (and ``make recordings``) runs every measured file through the recording codec
(``lib.models.recording``) and its comparisons, at the same numbers per second:

- **PCA** at the same size, through the same overlapping clips and the same seamless inversion;
- the **same codec on isolated clips** (back to back, each inverted on its own, as the notebooks
  measure stage 1), on the grid aligned with the file's start and on grids shifted by a quarter,
  half and three quarters of a clip (a song has no clip grid; rendered scores do, see below);
- **Opus** at its lowest bitrate, and the **oracle** (Griffin-Lim over the whole file's true
  magnitude: what phase reconstruction allows).

Distances are log-mel distances (``lib.spectral.metrics``) over the whole file, the file's level brought to
the training clips' (its gain), so a file is one continuous spectrogram: clicks at clip boundaries
count. **Seams** are measured as spectral flux (mean absolute change of the log-mel spectrum from
one frame to the next, dB) at frames within two STFT hops of a clip boundary, against frames
farther away: 1 means a boundary is as smooth as anywhere; the original recording on the same
frames says how much of it is the music.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np

from lib.core.errors import AudioInputError
from lib.core.fileio import atomic_write_bytes, save_json
from lib.core.paths import shown
from lib.data.audio import AudioStream, write_wav
from lib.measure.baselines import codec_round_trip
from lib.models.latent import pad_latents
from lib.models.recording import (
    RECORDING_ITERATIONS,
    ClipCodec,
    CodecModel,
    PcaCodec,
    decode_stream,
    default_clip_hop,
    encode_stream,
    file_gain,
    latent_size_for_rate,
    recording_inverter,
    search_steps,
)
from lib.models.refine import REFINE_STEPS
from lib.spectral.inversion import stft
from lib.spectral.metrics import log_mel_distance_db

GRID_OFFSETS = (0.0, 0.25, 0.5, 0.75)  # shifts of the isolated clips' grid, as shares of a clip
FLUX_NEAR_HOPS = 2  # frames within this many STFT hops of a boundary count as "at the boundary"
SEAM_METHODS = ("original", "recording codec", "pca, same clips")  # whose seams every file's report measures
FLUX_FLOOR_DB = 80.0  # the log-mel floor below the file's peak, as the distance uses


def read_file(path: str | Path, sample_rate: int) -> tuple[np.ndarray, float]:
    """A file at the lab's rate, brought to the training clips' level; and that gain."""
    stream = AudioStream(path, sample_rate=sample_rate)
    waveform = np.concatenate(list(stream))
    stream.finish()
    gain = file_gain(stream)
    return (waveform * np.float32(gain)).astype(np.float32), gain


def distance_db(reference: np.ndarray, estimate: np.ndarray, *, sample_rate: int) -> float:
    """Log-mel distance (dB) of two whole recordings [shape=(samples,)] over their common length."""
    length = min(len(reference), len(estimate))
    return float(log_mel_distance_db(reference[None, :length], estimate[None, :length], sample_rate=sample_rate)[0])


def spectral_flux_db(waveform: np.ndarray, *, sample_rate: int, n_fft: int = 1024, hop_length: int = 256) -> np.ndarray:
    """Per-frame flux [shape=(frames,)]: mean |change| of the log-mel spectrum (dB) from the previous frame."""
    power = np.abs(stft(waveform[None], n_fft=n_fft, hop_length=hop_length)[0].T) ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=sample_rate, n_mels=80)
    level = 10 * np.log10(np.maximum(mel, 1e-10))
    level = np.maximum(level, level.max() - FLUX_FLOOR_DB)
    return np.concatenate([[0.0], np.abs(np.diff(level, axis=1)).mean(axis=0)])


def boundary_mask(frames: int, boundaries: np.ndarray, *, hop_length: int = 256) -> np.ndarray:
    """Frames [shape=(frames,)] whose centre lies within ``FLUX_NEAR_HOPS`` hops of a boundary (samples)."""
    centres = np.arange(frames) * hop_length
    near = np.zeros(frames, dtype=bool)
    for boundary in boundaries:
        near |= np.abs(centres - boundary) <= FLUX_NEAR_HOPS * hop_length
    near[: FLUX_NEAR_HOPS + 1] = False  # the file's own start is not a clip boundary
    return near


def seam_ratio(waveform: np.ndarray, boundaries: np.ndarray, *, sample_rate: int) -> float:
    """Mean spectral flux at clip boundaries over the mean flux elsewhere (1: no seam)."""
    flux = spectral_flux_db(waveform, sample_rate=sample_rate)
    near = boundary_mask(len(flux), boundaries)
    if not near.any() or near.all():
        return float("nan")
    return float(flux[near].mean() / max(flux[~near].mean(), 1e-9))


def clip_boundaries(samples: int, clip_samples: int, clip_hop_samples: int, offset: int = 0) -> np.ndarray:
    """Sample positions where a clip starts or ends, inside the recording."""
    starts = np.arange(offset, samples, clip_hop_samples)
    edges = np.concatenate([starts, starts + clip_samples])
    return np.unique(edges[(edges > 0) & (edges < samples)])


def recording_round_trip(
    codec: ClipCodec,
    waveform: np.ndarray,
    *,
    latent_size: int,
    clip_hop_samples: int,
    iterations: int | None = None,
    refine_steps: int = 0,
) -> np.ndarray:
    """Through the recording codec and back (overlapping clips, seamless inversion) [shape=(samples,)];
    ``refine_steps`` > 0: the clips' numbers searched together (``encode_stream``)."""
    latents, samples = encode_stream(
        codec, [waveform], latent_size=latent_size, clip_hop_samples=clip_hop_samples, refine_steps=refine_steps
    )
    return decoded_recording(codec, latents, samples=samples, clip_hop_samples=clip_hop_samples, iterations=iterations)


def decoded_recording(
    codec: ClipCodec, latents: np.ndarray, *, samples: int, clip_hop_samples: int, iterations: int | None = None
) -> np.ndarray:
    """The recording [shape=(samples,)] that latent frames [shape=(clips, size)] encode, in one piece."""
    decoded = decode_stream(codec, latents, samples=samples, clip_hop_samples=clip_hop_samples, iterations=iterations)
    return np.concatenate(list(decoded))


def isolated_round_trip(
    codec: ClipCodec, waveform: np.ndarray, *, latent_size: int, offset: int = 0, refine_steps: int = 0
) -> np.ndarray:
    """The codec on back-to-back clips, each inverted on its own, from sample ``offset`` on.

    Samples before ``offset`` and after the last whole clip are silence (they are left out of
    the distance by :func:`measure_recording`, which compares the clips' span only).
    """
    representation = codec.representation
    clip = representation.config.clip_samples
    count = (len(waveform) - offset) // clip
    clips = waveform[offset : offset + count * clip].reshape(count, clip)
    latents = codec.encode_spectrograms(representation.forward(clips), size=latent_size, refine_steps=refine_steps)
    spectrograms = codec.decode_spectrograms(
        pad_latents(np.asarray(latents[:, :latent_size], np.float32), codec.latent_dim), size=latent_size
    )
    return representation.inverse(spectrograms).reshape(-1)


def oracle_round_trip(representation, waveform: np.ndarray) -> np.ndarray:
    """Griffin-Lim over the whole file's true magnitude, as the recording codec inverts."""
    config = representation.config
    magnitude = np.abs(stft(waveform[None], n_fft=config.n_fft, hop_length=config.hop_length)[0])
    inverter = recording_inverter(representation, len(waveform), iterations=representation.griffin_lim_iterations)
    return np.concatenate(list(inverter.push(magnitude, last=True)))


@dataclass
class FileMeasurement:
    """Every figure of one file, and the audio for the listening page."""

    figures: dict
    audio: dict[str, np.ndarray]


def measure_recording(
    model: CodecModel,
    pca: PcaCodec,
    path: str | Path,
    *,
    numbers_per_second: float,
    keep_audio: bool = False,
    refine_steps: int = 0,
) -> FileMeasurement:
    """Measure one file: the recording codec beside PCA, isolated clips, Opus and the oracle.

    ``refine_steps`` > 0: the recording codec searches its clips' numbers together (as ``lml compress`` does),
    the isolated clips each clip's alone, and the codec without the search is measured beside them
    ("recording codec, no search").
    """
    codec = model.codec
    config = codec.representation.config
    rate = config.sample_rate
    refine_steps = search_steps(model, refine_steps)
    waveform, gain = read_file(path, rate)
    hop = default_clip_hop(config)
    size = latent_size_for_rate(config, numbers_per_second, codec.latent_dim, hop)
    isolated_size = latent_size_for_rate(config, numbers_per_second, codec.latent_dim, config.clip_samples)
    audio: dict[str, np.ndarray] = {"original": waveform}
    started = time.perf_counter()
    latents, samples = encode_stream(
        codec, [waveform], latent_size=size, clip_hop_samples=hop, refine_steps=refine_steps
    )
    audio["recording codec"] = decoded_recording(codec, latents, samples=samples, clip_hop_samples=hop)
    seconds = time.perf_counter() - started
    if refine_steps:
        audio["recording codec, no search"] = recording_round_trip(
            codec, waveform, latent_size=size, clip_hop_samples=hop
        )
    audio["pca, same clips"] = recording_round_trip(pca, waveform, latent_size=size, clip_hop_samples=hop)
    more_iterations = decoded_recording(
        codec, latents, samples=samples, clip_hop_samples=hop, iterations=codec.representation.griffin_lim_iterations
    )
    opus = codec_round_trip(waveform[None], sample_rate=rate, codec="opus")
    audio["opus"] = opus.waveforms[0]
    audio["oracle"] = oracle_round_trip(codec.representation, waveform)
    duration = len(waveform) / rate
    figures = {
        "file": shown(path),
        "seconds": round(duration, 3),
        "gain": gain,
        "latent_size": size,
        "clip_hop_samples": hop,
        "numbers_per_second": size * rate / hop,
        "bitrate_kbps": 16 * size * rate / hop / 1000,
        "speed_x_real_time": duration / seconds,
        "search_steps": refine_steps,
        "opus_bitrate_kbps": opus.bitrate_kbps,
        "distance_db": {
            name: distance_db(waveform, audio[name], sample_rate=rate) for name in audio if name != "original"
        },
        "seam_ratio": {},
        "griffin_lim_iterations": {
            "recording codec": RECORDING_ITERATIONS,
            "more": codec.representation.griffin_lim_iterations,
            "distance_db_with_more": distance_db(waveform, more_iterations, sample_rate=rate),
        },
        "isolated": {"latent_size": isolated_size, "numbers_per_second": isolated_size * rate / config.clip_samples},
    }
    boundaries = clip_boundaries(len(waveform), config.clip_samples, hop)
    for name in SEAM_METHODS:
        figures["seam_ratio"][name] = seam_ratio(audio[name], boundaries, sample_rate=rate)
    isolated = {}
    for share in GRID_OFFSETS:
        offset = int(round(share * config.clip_samples))
        back = isolated_round_trip(codec, waveform, latent_size=isolated_size, offset=offset, refine_steps=refine_steps)
        span = slice(offset, offset + len(back))
        isolated[f"{share:g}"] = {
            "distance_db": distance_db(waveform[span], back, sample_rate=rate),
            "recording_codec_distance_db": distance_db(
                waveform[span], audio["recording codec"][span], sample_rate=rate
            ),
            "seam_ratio": seam_ratio(
                back, clip_boundaries(len(back), config.clip_samples, config.clip_samples), sample_rate=rate
            ),
            "original_seam_ratio": seam_ratio(
                waveform[span], clip_boundaries(len(back), config.clip_samples, config.clip_samples), sample_rate=rate
            ),
        }
        if share == 0.0:
            audio["isolated clips"] = np.pad(back, (offset, len(waveform) - offset - len(back)))
    figures["isolated"]["grids"] = isolated
    return FileMeasurement(figures, audio if keep_audio else {})


def summarise(measurements: list[dict]) -> dict:
    """Means over files (weighted by length) of every figure the README quotes."""
    weights = np.array([row["seconds"] for row in measurements])

    def mean(values) -> float:
        return float(np.average(np.asarray(values, dtype=float), weights=weights))

    methods = measurements[0]["distance_db"]
    grids = measurements[0]["isolated"]["grids"]
    return {
        "files": len(measurements),
        "seconds": float(weights.sum()),
        "numbers_per_second": mean([row["numbers_per_second"] for row in measurements]),
        "bitrate_kbps": mean([row["bitrate_kbps"] for row in measurements]),
        "opus_bitrate_kbps": mean([row["opus_bitrate_kbps"] for row in measurements]),
        "distance_db": {name: mean([row["distance_db"][name] for row in measurements]) for name in methods},
        "seam_ratio": {name: mean([row["seam_ratio"][name] for row in measurements]) for name in SEAM_METHODS},
        "isolated_distance_db": {
            grid: mean([row["isolated"]["grids"][grid]["distance_db"] for row in measurements]) for grid in grids
        },
        "isolated_recording_codec_distance_db": {
            grid: mean([row["isolated"]["grids"][grid]["recording_codec_distance_db"] for row in measurements])
            for grid in grids
        },
        "isolated_seam_ratio": {
            grid: mean([row["isolated"]["grids"][grid]["seam_ratio"] for row in measurements]) for grid in grids
        },
        "speed_x_real_time": mean([row["speed_x_real_time"] for row in measurements]),
        "distance_db_with_more_iterations": mean(
            [row["griffin_lim_iterations"]["distance_db_with_more"] for row in measurements]
        ),
        "search_steps": measurements[0]["search_steps"],
        "griffin_lim_iterations": measurements[0]["griffin_lim_iterations"]["recording codec"],
        "more_griffin_lim_iterations": measurements[0]["griffin_lim_iterations"]["more"],
    }


def listening_page(folder: Path, rows: list[tuple[str, dict[str, Path]]], title: str) -> Path:
    """An HTML page with a player for each file and method (WAVs beside it)."""
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for name, players in rows:
        parts.append(f"<h2>{html.escape(name)}</h2><table>")
        for method, wav in players.items():
            relative = html.escape(wav.relative_to(folder).as_posix())
            player = f"<audio controls preload='none' src='{relative}'></audio>"
            parts.append(f"<tr><td>{html.escape(method)}</td><td>{player}</td></tr>")
        parts.append("</table>")
    page = folder / "index.html"
    atomic_write_bytes(page, "\n".join(parts).encode("utf-8"), overwrite=True)
    return page


def write_audio(
    folder: Path, stem: str, audio: dict[str, np.ndarray], gain: float, sample_rate: int
) -> dict[str, Path]:
    """Each method's audio as a WAV at the source's level; returns the paths by method."""
    written = {}
    for method, waveform in audio.items():
        path = folder / "audio" / f"{stem}__{method.replace(' ', '_').replace(',', '')}.wav"
        write_wav(path, np.clip(waveform / gain, -1.0, 1.0), sample_rate=sample_rate, overwrite=True)
        written[method] = path
    return written


def timed_file_round_trip(
    model: CodecModel, files: list[Path], folder: Path, *, seconds: float, latent_size: int, refine_steps: int = 0
) -> dict:
    """End-to-end speed through the files: test files joined into one WAV of ``seconds``, compressed
    (``refine_steps`` of search per clip) and decompressed by ``lml``'s own functions (reading,
    encoding, writing, Griffin-Lim)."""
    from lib.models.recording import compress_file, decompress_file

    rate = model.codec.representation.config.sample_rate
    pieces, total = [], 0
    for path in files:
        waveform, _ = read_file(path, rate)
        pieces.append(waveform)
        total += len(waveform)
        if total >= seconds * rate:
            break
    joined = np.concatenate(pieces)[: int(seconds * rate)]
    source = write_wav(folder / "timing" / "joined.wav", joined, sample_rate=rate, overwrite=True)
    compressed = compress_file(
        source,
        folder / "timing" / "joined.lml",
        model,
        latent_size=latent_size,
        overwrite=True,
        refine_steps=refine_steps,
    )
    decompressed = decompress_file(compressed.destination, folder / "timing" / "joined_back.wav", model, overwrite=True)
    duration = len(joined) / rate
    return {
        "seconds": duration,
        "compress_seconds": compressed.seconds,
        "decompress_seconds": decompressed.seconds,
        "speed_x_real_time": duration / (compressed.seconds + decompressed.seconds),
    }


TIMING_SECONDS = 300.0  # the end-to-end speed is measured on five minutes of the test files, joined
SEAM_TARGET = 1.10  # boundary flux within 10 % of the flux elsewhere (issue 22's target)
SPEED_TARGET = 100.0  # x real time, compress + decompress


def run_report(
    model: CodecModel,
    files: list[Path] | None = None,
    *,
    numbers_per_second: float = 32.0,
    listen: int = 4,
    timing_seconds: float = TIMING_SECONDS,
    refine_steps: int = REFINE_STEPS,
) -> str:
    """Measure ``files`` (default: the dataset's test files) and write the report; returns a summary in words.

    ``refine_steps``: the search per clip that the recording codec runs when it compresses (0: none).

    Writes ``<outputs>/metrics/recordings.json`` (every file's figures, their means, the end-to-end
    timing and the targets) and ``<outputs>/recordings/index.html`` with players for the first
    ``listen`` files, for the model's dataset.
    """
    from lib.core import paths

    codec = model.codec
    config = codec.representation.config
    if not files and model.trained is None:
        raise AudioInputError("name the files to measure", model.name)
    files = [Path(path) for path in files] if files else [path for path, _ in model.trained.files("test")]
    folder = paths.outputs_dir(dataset=model.dataset) / "recordings"
    pca = PcaCodec(codec.representation, codec.basis)
    refine_steps = search_steps(model, refine_steps)
    rows, players = [], []
    for index, path in enumerate(files):
        measured = measure_recording(
            model,
            pca,
            path,
            numbers_per_second=numbers_per_second,
            keep_audio=index < listen,
            refine_steps=refine_steps,
        )
        rows.append(measured.figures)
        if measured.audio:
            stem = f"{index:02d}_{Path(path).stem}"
            written = write_audio(folder, stem, measured.audio, measured.figures["gain"], config.sample_rate)
            players.append((measured.figures["file"], written))
    summary = summarise(rows)
    timing = timed_file_round_trip(
        model, files, folder, seconds=timing_seconds, latent_size=rows[0]["latent_size"], refine_steps=refine_steps
    )
    isolated_mean = float(np.mean(list(summary["isolated_distance_db"].values())))
    codec_on_grids = float(np.mean(list(summary["isolated_recording_codec_distance_db"].values())))
    targets = {
        "no_worse_than_isolated_clips": codec_on_grids <= isolated_mean,
        "no_worse_than_isolated_clips_aligned_grid": summary["isolated_recording_codec_distance_db"]["0"]
        <= summary["isolated_distance_db"]["0"],
        "boundary_flux_within_10_percent": summary["seam_ratio"]["recording codec"] <= SEAM_TARGET,
        "speed_100x_real_time": timing["speed_x_real_time"] >= SPEED_TARGET,
    }
    content = {
        "model": {"name": model.name, "dataset": shown(model.dataset), "fingerprint": model.fingerprint},
        "numbers_per_second_requested": numbers_per_second,
        "summary": summary,
        "isolated_mean_over_grids_db": isolated_mean,
        "recording_codec_on_isolated_spans_db": codec_on_grids,
        "timing": timing,
        "targets": targets,
        "files": rows,
    }
    save_json(paths.outputs_dir(dataset=model.dataset) / "metrics" / "recordings.json", content, overwrite=True)
    page = listening_page(folder, players, f"Whole recordings: {model.name} of {shown(model.dataset)}")
    distances = ", ".join(f"{name} {value:.2f} dB" for name, value in summary["distance_db"].items())
    return "\n".join(
        [
            f"{len(rows)} files, {summary['seconds'] / 60:.1f} min, {summary['numbers_per_second']:.1f} numbers per "
            f"second ({summary['bitrate_kbps']:.2f} kbit/s as float16)",
            f"log-mel distance: {distances} (Opus at {summary['opus_bitrate_kbps']:.1f} kbit/s)",
            f"isolated clips at {rows[0]['isolated']['numbers_per_second']:.0f} numbers per second, by grid offset: "
            + ", ".join(f"{grid}: {value:.2f} dB" for grid, value in summary["isolated_distance_db"].items())
            + f" (the recording codec on the same spans: {codec_on_grids:.2f} dB)",
            "seams (flux at clip boundaries / elsewhere): recording codec "
            f"{summary['seam_ratio']['recording codec']:.3f}, original {summary['seam_ratio']['original']:.3f}, "
            "isolated clips "
            f"{summary['isolated_seam_ratio']['0']:.3f}",
            f"{timing['seconds'] / 60:.0f} min joined file: compress {timing['compress_seconds']:.2f} s, decompress "
            f"{timing['decompress_seconds']:.2f} s = {timing['speed_x_real_time']:.0f}x real time",
            "targets: " + ", ".join(f"{name} {'yes' if value else 'no'}" for name, value in targets.items()),
            f"listening page: {shown(page)}",
        ]
    )


def encode_files(
    codec: ClipCodec, files: Sequence[str | Path], *, latent_size: int, clip_hop_samples: int
) -> list[np.ndarray]:
    """Latent frames [each shape=(clips, latent_size)] of whole recordings, read at the codec's rate
    and level (:func:`read_file`), as the recording codec encodes them."""
    sample_rate = codec.representation.config.sample_rate
    found = []
    for path in files:
        waveform, _ = read_file(path, sample_rate)
        latents, _ = encode_stream(codec, [waveform], latent_size=latent_size, clip_hop_samples=clip_hop_samples)
        found.append(latents)
    return found
