"""Sound from the SoundFont shipped inside the pretty_midi wheel: the lab's one renderer (tinysoundfont).

Single notes (:class:`NoteRenderer`, the note dataset :mod:`lib.data.dataset`) and whole scores
(:func:`render_score`, the genre collections :mod:`lib.data.genres`). Imports: NumPy and
:mod:`lib.core.errors` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lib.core.errors import NotReadyError

MIDI_CHANNELS = tuple(channel for channel in range(16) if channel != 9)  # 9 is the drum channel


def soundfont_path() -> Path:
    """The SoundFont shipped inside the pretty_midi wheel."""
    import pretty_midi

    path = Path(pretty_midi.__file__).resolve().parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise NotReadyError("SoundFont not found; reinstall pretty_midi (make setup)", path)
    return path


class NoteRenderer:
    """Renders single notes with tinysoundfont, one clean synth state per note."""

    def __init__(self, *, sample_rate: int, soundfont: Path | None = None) -> None:
        import tinysoundfont

        self.sample_rate = sample_rate
        self.synth = tinysoundfont.Synth(samplerate=sample_rate)
        self.soundfont_id = self.synth.sfload(str(soundfont or soundfont_path()))

    def preset_name(self, program: int) -> str:
        """The SoundFont's name for a GM program."""
        return self.synth.sfpreset_name(self.soundfont_id, 0, program)

    def render(self, program: int, pitch: int, velocity: int, *, clip_samples: int, note_samples: int) -> np.ndarray:
        """One note: key down for ``note_samples``, released, clip cut at ``clip_samples``.

        Returns a mono float32 waveform [shape=(clip_samples,)].
        """
        self.synth.program_select(0, self.soundfont_id, 0, program)
        self.synth.noteon(0, pitch, velocity)
        held = np.frombuffer(self.synth.generate(note_samples), dtype=np.float32)
        self.synth.noteoff(0, pitch)
        released = np.frombuffer(self.synth.generate(clip_samples - note_samples), dtype=np.float32)
        # Silence the voice completely and flush it, so no tail leaks into the next note.
        self.synth.sounds_off()
        self.synth.generate(clip_samples)
        stereo = np.concatenate([held, released]).reshape(-1, 2)
        return stereo.mean(axis=1).astype(np.float32)


def render_score(notes: Sequence, program: int, *, sample_rate: int, seconds: float) -> np.ndarray:
    """Mono float32 audio [shape=(samples,)] of a score's notes that start within ``seconds``.

    ``notes`` have ``start`` and ``end`` (seconds), ``part``, ``pitch`` and ``velocity`` (MIDI), as
    :class:`lib.data.genres.ScoreNote` has.

    Each part plays on its own MIDI channel (so unisons between parts do not cut each other
    off), all with ``program``; notes still sounding at ``seconds`` are released there, and one
    second of release tail follows. Peak-normalised to 0.9.
    """
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=sample_rate)  # a fresh synth: no state from another score
    font = synth.sfload(str(soundfont_path()))
    for channel in MIDI_CHANNELS:
        synth.program_select(channel, font, 0, program)
    events = []  # (time, order, kind, channel, pitch, velocity): note-offs first at equal times
    for note in notes:
        if note.start >= seconds:
            continue
        channel = MIDI_CHANNELS[note.part % len(MIDI_CHANNELS)]
        events.append((note.start, 1, "on", channel, note.pitch, note.velocity))
        events.append((min(note.end, seconds), 0, "off", channel, note.pitch, 0))
    events.sort(key=lambda event: event[:2])
    blocks, position = [], 0
    for time, _, kind, channel, pitch, velocity in events:
        target = int(round(time * sample_rate))
        if target > position:
            blocks.append(np.frombuffer(synth.generate(target - position), dtype=np.float32))
            position = target
        if kind == "on":
            synth.noteon(channel, pitch, velocity)
        else:
            synth.noteoff(channel, pitch)
    blocks.append(np.frombuffer(synth.generate(sample_rate), dtype=np.float32))  # release tail
    audio = np.concatenate(blocks).reshape(-1, 2).mean(axis=1)
    peak = float(np.max(np.abs(audio)))
    if peak < 1e-4:
        raise ValueError("rendered silent")
    return (0.9 * audio / peak).astype(np.float32)
