"""A small folder of music for tests: melodies rendered from the shipped SoundFont, sorted into
label folders, in several formats, rates and channel counts, with some broken files beside them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile

from lib.data.synth import NoteRenderer

LABEL_PROGRAMS = {"keys": 0, "winds": 73}  # label folder -> GM program of its melodies
FORMATS = (  # (extension, soundfile format, subtype, sample rate, channels, gain)
    (".wav", "WAV", "PCM_16", 44_100, 2, 0.8),
    (".flac", "FLAC", "PCM_16", 22_050, 1, 0.5),
    (".ogg", "OGG", "VORBIS", 16_000, 1, 0.3),
    (".mp3", "MP3", None, 48_000, 2, 0.6),
    (".wav", "WAV", "FLOAT", 32_000, 1, 3.0),  # float samples beyond [-1, 1]
)
BROKEN = ("cut.wav", "readme.txt", "phone.m4a", "silent.wav", "gone.wav")


def melody(renderer: NoteRenderer, program: int, seconds: float, rng: np.random.Generator, rate: int) -> np.ndarray:
    """A random melody on a major scale, quarter to half second notes [shape=(samples,)] at ``rate``."""
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12]) + 60
    parts, total = [], 0
    while total < seconds * rate:
        length = int(rate * rng.choice([0.25, 0.5]))
        note = renderer.render(
            program,
            int(rng.choice(scale)),
            int(rng.integers(60, 120)),
            clip_samples=length,
            note_samples=length * 3 // 4,
        )
        parts.append(note)
        total += length
    return np.concatenate(parts)[: int(seconds * rate)]


def write_music_folder(folder: Path, *, files_per_label: int = 5, seconds: float = 15.0, seed: int = 0) -> Path:
    """Write the folder (once: an existing complete folder is reused) and return it."""
    done = folder / ".complete"
    if done.exists():
        return folder
    rng = np.random.default_rng(seed)
    for label, program in LABEL_PROGRAMS.items():
        (folder / label).mkdir(parents=True, exist_ok=True)
        for index in range(files_per_label):
            extension, format_name, subtype, rate, channels, gain = FORMATS[index % len(FORMATS)]
            renderer = NoteRenderer(sample_rate=rate)
            mono = gain * melody(renderer, program, seconds, rng, rate) / 0.5
            samples = np.stack([mono, 0.7 * mono], axis=1) if channels == 2 else mono
            if subtype != "FLOAT":
                samples = np.clip(samples, -1, 1)
            path = folder / label / f"{label}_{index:02d}{extension}"
            soundfile.write(path, samples, rate, format=format_name, subtype=subtype)
    whole = (folder / "keys" / "keys_00.wav").read_bytes()
    (folder / "keys" / "cut.wav").write_bytes(whole[: len(whole) // 3])
    (folder / "keys" / "readme.txt").write_text("liner notes, not audio")
    (folder / "winds" / "phone.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    soundfile.write(folder / "winds" / "silent.wav", np.zeros(32_000), 16_000)
    link = folder / "winds" / "gone.wav"
    if not link.is_symlink():
        os.symlink("deleted.wav", link)  # relative, as most links on a music disk are
    done.write_text("")
    return folder


def write_flat_folder(folder: Path, *, files: int = 8, seconds: float = 15.0, seed: int = 0) -> Path:
    """A folder without sub-folders (one label, the folder's name): melodies of piano and flute in FLAC."""
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    renderer = NoteRenderer(sample_rate=22_050)
    programs = list(LABEL_PROGRAMS.values())
    for index in range(files):
        samples = melody(renderer, programs[index % len(programs)], seconds, rng, 22_050)
        soundfile.write(folder / f"take_{index:02d}.flac", samples, 22_050)
    done.write_text("")
    return folder
