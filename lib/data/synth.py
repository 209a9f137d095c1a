"""Sound from the SoundFont shipped inside the pretty_midi wheel (tinysoundfont): single notes.

Imports: NumPy and :mod:`lib.core.errors` only; the note dataset (:mod:`lib.data.dataset`) and the genre
collections (:mod:`lib.data.genres`) both render through here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lib.core.errors import NotReadyError


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
