"""Figures and players for the notebooks: spectrograms, clip tables, curves."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import soundfile

from lib.core.fileio import atomic_write_bytes
from lib.spectral.representation import SpectrogramConfig


def show_spectrogram(
    axis: plt.Axes,
    spectrogram: np.ndarray,
    config: SpectrogramConfig,
    title: str = "",
    *,
    colorbar: bool = False,
) -> None:
    """Draw one normalised spectrogram [shape=(frequency_bins, frames)] as the field does:
    ``librosa.display.specshow`` on a log-frequency axis, levels in dB (``peak_db`` at the top
    of the colour scale, ``dynamic_range_db`` below it at the bottom), a dB colour bar if asked.

    A log axis gives each octave the same height, so the harmonics of low notes are not
    squeezed into the bottom rows as on a linear 0–8 kHz axis.
    """
    import librosa.display

    floor_db = config.peak_db - config.dynamic_range_db
    decibels = floor_db + np.asarray(spectrogram) * config.dynamic_range_db
    frequencies = librosa.fft_frequencies(sr=config.sample_rate, n_fft=config.n_fft)[: config.frequency_bins]
    mesh = librosa.display.specshow(
        decibels,
        sr=config.sample_rate,
        hop_length=config.hop_length,
        n_fft=config.n_fft,
        x_axis="time",
        y_axis="log",
        y_coords=frequencies,
        cmap="magma",
        vmin=floor_db,
        vmax=config.peak_db,
        ax=axis,
    )
    axis.set_title(title, fontsize=9)
    axis.set_xlabel("time (s)", fontsize=8)
    axis.set_ylabel("Hz", fontsize=8)
    axis.tick_params(labelsize=7)
    if colorbar:
        axis.figure.colorbar(mesh, ax=axis, format="%+.0f dB")


@dataclass
class ClipRow:
    """One row of a clip table: a label, a spectrogram and the audio it stands for."""

    label: str
    spectrogram: np.ndarray  # [shape=(frequency_bins, frames)], normalised
    waveform: np.ndarray  # [shape=(n,)]


def _figure_png(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _wav_base64(waveform: np.ndarray, sample_rate: int) -> str:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(waveform, -1, 1), sample_rate, format="WAV", subtype="PCM_16")
    return base64.b64encode(buffer.getvalue()).decode()


def clip_table_html(rows: Sequence[ClipRow], config: SpectrogramConfig, *, columns: int = 1) -> str:
    """Clips with their spectrograms and an audio player each, in groups that wrap to the page.

    ``columns`` clips per group, so versions of one clip (original, model, baseline) stay
    together; a group wider than the page wraps instead of running off its right edge.
    """
    cells = []
    for row in rows:
        figure, axis = plt.subplots(figsize=(3.0, 2.0))
        show_spectrogram(axis, row.spectrogram, config, "")
        figure.tight_layout()
        cells.append(
            f"<div style='width:250px;text-align:center'><b>{html.escape(row.label)}</b><br>"
            f"<img style='width:240px' src='data:image/png;base64,{_figure_png(figure)}'/><br>"
            f"<audio controls style='width:240px' "
            f"src='data:audio/wav;base64,{_wav_base64(row.waveform, config.sample_rate)}'></audio></div>"
        )
    group_style = "display:flex;flex-wrap:wrap;gap:8px;margin-bottom:12px;align-items:flex-start"
    groups = [
        f"<div style='{group_style}'>" + "".join(cells[start : start + columns]) + "</div>"
        for start in range(0, len(cells), columns)
    ]
    return "<div>" + "".join(groups) + "</div>"


def save_figure(figure: plt.Figure, path: str | Path) -> Path:
    """Save a figure as PNG atomically (replacing an older one from a previous run)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=True)


def spread_examples(rows: Sequence[dict], count: int, *, seed: int = 0) -> list[int]:
    """Indices of ``count`` rows that show a split's range: each from a different label while
    labels last, and (where rows have a ``pitch``) spread evenly from the lowest pitch to the
    highest. Seeded, so a run and its rerun show the same clips.
    """
    rng = np.random.default_rng(seed)
    order = [int(i) for i in rng.permutation(len(rows))]
    count = min(count, len(rows))
    pitched = bool(rows) and all("pitch" in row for row in rows)
    targets = (
        np.linspace(min(r["pitch"] for r in rows), max(r["pitch"] for r in rows), count) if pitched else [None] * count
    )
    chosen: list[int] = []
    for target in targets:
        used = {rows[i]["label"] for i in chosen}
        fresh = [i for i in order if i not in chosen and rows[i]["label"] not in used]
        pool = fresh or [i for i in order if i not in chosen]
        chosen.append(pool[0] if target is None else min(pool, key=lambda i: abs(rows[i]["pitch"] - target)))
    return chosen


def spectrogram_grid(
    spectrograms: np.ndarray, labels: Sequence[str], config: SpectrogramConfig, *, columns: int
) -> plt.Figure:
    """A figure of spectrograms [shape=(n, frequency_bins, frames)] in rows of ``columns``, titled by ``labels``."""
    rows = -(-len(spectrograms) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 2.3 * rows), squeeze=False)
    for axis, spectrogram, label in zip(axes.flat, spectrograms, labels):
        show_spectrogram(axis, spectrogram, config, label)
    for axis in list(axes.flat)[len(spectrograms) :]:
        axis.set_visible(False)
    figure.tight_layout()
    return figure


def recording_table_html(rows: Sequence[tuple[str, np.ndarray]], representation, *, width_inches: float = 9.0) -> str:
    """Whole recordings [each shape=(samples,)], one row each: a wide spectrogram and a player.

    The spectrogram is the representation's normalised log-magnitude over the whole recording
    (same colours and axes as the clip tables), so a seam or a phase jump would show as a line.
    """
    from lib.spectral.representation import stft_magnitude

    config = representation.config
    cells = []
    for label, waveform in rows:
        magnitude = stft_magnitude(
            np.asarray(waveform, np.float32)[None], n_fft=config.n_fft, hop_length=config.hop_length
        )
        spectrogram = representation.normalise_magnitude(magnitude[0, : config.frequency_bins])
        figure, axis = plt.subplots(figsize=(width_inches, 2.0))
        show_spectrogram(axis, spectrogram, config, "")
        figure.tight_layout()
        cells.append(
            f"<div><b>{html.escape(label)}</b> ({len(waveform) / config.sample_rate:.1f} s)<br>"
            f"<img style='width:{int(width_inches * 80)}px' src='data:image/png;base64,{_figure_png(figure)}'/><br>"
            f"<audio controls style='width:{int(width_inches * 80)}px' "
            f"src='data:audio/wav;base64,{_wav_base64(waveform, config.sample_rate)}'></audio></div>"
        )
    return "<div>" + "".join(cells) + "</div>"


def show_decoded(codec, latents: np.ndarray, titles: Sequence[str]) -> np.ndarray:
    """Decode latents [shape=(n, latent_dim)] with ``codec`` (a :class:`lib.models.codec.LatentCodec`),
    show their spectrograms with players in one row, and return the audio [shape=(n, clip_samples)]."""
    from IPython.display import HTML, display

    representation = codec.representation
    spectrograms = codec.decode_spectrograms(latents)
    audio = representation.inverse(spectrograms)
    rows = [ClipRow(title, spectrogram, clip) for title, spectrogram, clip in zip(titles, spectrograms, audio)]
    display(HTML(clip_table_html(rows, representation.config, columns=len(rows))))
    return audio
