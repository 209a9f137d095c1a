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

from lib.fileio import atomic_write_bytes
from lib.representation import SpectrogramConfig


def show_spectrogram(axis: plt.Axes, spectrogram: np.ndarray, config: SpectrogramConfig, title: str = "") -> None:
    """Draw one normalised spectrogram [shape=(frequency_bins, frames)] with time and frequency axes."""
    seconds = config.frames * config.hop_length / config.sample_rate
    top_hz = config.frequency_bins * config.sample_rate / config.n_fft
    axis.imshow(
        spectrogram,
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=0.0,
        vmax=1.0,
        extent=(0.0, seconds, 0.0, top_hz / 1000),
    )
    axis.set_title(title, fontsize=9)
    axis.set_xlabel("time (s)", fontsize=8)
    axis.set_ylabel("kHz", fontsize=8)
    axis.tick_params(labelsize=7)


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
    """HTML table with each clip's spectrogram and an audio player beside it.

    ``columns`` clips per table row, so versions of one clip (original, model, baseline)
    can sit side by side.
    """
    cells = []
    for row in rows:
        figure, axis = plt.subplots(figsize=(3.0, 2.0))
        show_spectrogram(axis, row.spectrogram, config, "")
        figure.tight_layout()
        cells.append(
            f"<td style='text-align:center'><b>{html.escape(row.label)}</b><br>"
            f"<img src='data:image/png;base64,{_figure_png(figure)}'/><br>"
            f"<audio controls src='data:audio/wav;base64,{_wav_base64(row.waveform, config.sample_rate)}'></audio></td>"
        )
    lines = ["<tr>" + "".join(cells[start : start + columns]) + "</tr>" for start in range(0, len(cells), columns)]
    return "<table>" + "".join(lines) + "</table>"


def save_figure(figure: plt.Figure, path: str | Path) -> Path:
    """Save a figure as PNG atomically (replacing an older one from a previous run)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=True)
