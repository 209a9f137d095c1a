"""Playable results: SFZ export read back by an independent parser, melodies from MIDI and the corpus."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import sfzen
import soundfile

from lib.measure import evaluation, instrument
from tests.conftest import SAMPLE_RATE, harmonic_tone


def test_key_ranges_tile_the_keyboard():
    assert instrument.key_ranges([48, 51, 54]) == [(47, 49), (50, 52), (53, 55)]
    assert instrument.key_ranges([60, 64]) == [(58, 62), (63, 66)]
    assert instrument.key_ranges([60]) == [(60, 60)]
    with pytest.raises(ValueError, match="increasing"):
        instrument.key_ranges([60, 60])


def _tones(pitches, *, ignore_pitch: bool = False) -> np.ndarray:
    frequencies = [220.0 if ignore_pitch else float(pretty_midi.note_number_to_hz(p)) for p in pitches]
    return np.stack([harmonic_tone(f, seconds=0.8) for f in frequencies])


def test_sfz_instrument_reads_back_with_sfzen(tmp_path):
    pitches = [48, 51, 54, 57]
    sfz_path = instrument.write_sfz_instrument(
        tmp_path / "inst", "hybrid", pitches, _tones(pitches), sample_rate=SAMPLE_RATE
    )
    regions = list(sfzen.SFZ(str(sfz_path)).regions())
    assert len(regions) == len(pitches)
    covered = []
    for region, pitch in zip(regions, pitches):
        opcodes = {name: opcode.value for name, opcode in region.inherited_opcodes().items()}
        sample = sfz_path.parent / opcodes["sample"]
        assert sample.is_file() and soundfile.info(str(sample)).samplerate == SAMPLE_RATE
        assert opcodes["pitch_keycenter"] == pitch and opcodes["lokey"] <= pitch <= opcodes["hikey"]
        assert opcodes["ampeg_release"] == pytest.approx(0.25)
        covered.extend(range(opcodes["lokey"], opcodes["hikey"] + 1))
    assert covered == list(range(47, 59))  # contiguous keys, none twice
    with pytest.raises(FileExistsError):
        instrument.write_sfz_instrument(tmp_path / "inst", "hybrid", pitches, _tones(pitches), sample_rate=SAMPLE_RATE)


def test_each_sample_sounds_at_its_key(tmp_path):
    pitches = [50, 62]
    for tones, expected in ((_tones(pitches), 1.0), (_tones(pitches, ignore_pitch=True), 0.0)):
        folder = tmp_path / str(expected)
        instrument.write_sfz_instrument(folder, "inst", pitches, tones, sample_rate=SAMPLE_RATE)
        waves = np.stack([soundfile.read(str(folder / f"samples/inst_{p:03d}.wav"))[0] for p in pitches])
        measured = evaluation.measure_pitch(waves, np.array(pitches), sample_rate=SAMPLE_RATE)
        assert measured["within"] == expected


def _write_midi(path) -> None:
    midi = pretty_midi.PrettyMIDI()
    melody, bass = pretty_midi.Instrument(0), pretty_midi.Instrument(32)
    for index, pitch in enumerate([60, 62, 64, 65, 67, 69]):
        melody.notes.append(pretty_midi.Note(90, pitch, 0.5 * index, 0.5 * index + 0.45))
    melody.notes.append(pretty_midi.Note(70, 48, 0.0, 1.0))  # a lower voice under the first two notes
    bass.notes.extend(pretty_midi.Note(80, 36, 1.0 * i, 1.0 * i + 0.9) for i in range(3))
    midi.instruments.extend([melody, bass])
    midi.write(str(path))


def test_melody_from_midi_keeps_the_top_line(tmp_path):
    _write_midi(tmp_path / "tune.mid")
    notes = instrument.melody_from_midi(tmp_path / "tune.mid")
    assert [n.pitch for n in notes] == [60, 62, 64, 65, 67, 69]
    assert notes[0].start == pytest.approx(0.0) and notes[1].duration == pytest.approx(0.45, abs=1e-3)
    with pytest.raises(ValueError, match="not a readable MIDI"):
        (tmp_path / "broken.mid").write_bytes(b"MThd nonsense")
        instrument.melody_from_midi(tmp_path / "broken.mid")


def test_rendered_melody_follows_the_score_and_a_pitch_blind_one_does_not(tmp_path):
    _write_midi(tmp_path / "tune.mid")
    notes = instrument.fit_to_range(instrument.melody_from_midi(tmp_path / "tune.mid"), range(55, 80))
    audio = instrument.render_melody(notes, lambda p, v: _tones(p), sample_rate=SAMPLE_RATE)
    assert len(audio) == int(np.ceil((notes[-1].end + 1.0) * SAMPLE_RATE))
    track = instrument.melody_pitch_track(audio, notes, sample_rate=SAMPLE_RATE)
    assert track["notes_measured"] == 6 and track["within"] == 1.0
    blind = instrument.render_melody(notes, lambda p, v: _tones(p, ignore_pitch=True), sample_rate=SAMPLE_RATE)
    assert instrument.melody_pitch_track(blind, notes, sample_rate=SAMPLE_RATE)["within"] == 0.0


def test_fit_to_range_moves_by_octaves():
    notes = [instrument.MelodyNote(0, 1, 40, 80), instrument.MelodyNote(1, 2, 90, 80)]
    assert [n.pitch for n in instrument.fit_to_range(notes, range(48, 85))] == [52, 78]


def test_corpus_melody_is_written_offline(tmp_path):
    path = instrument.corpus_melody_midi("bach/bwv66.6", tmp_path / "chorale.mid")
    notes = instrument.melody_from_midi(path)
    assert len(notes) > 20 and all(55 <= n.pitch <= 85 for n in notes)
    with pytest.raises(ValueError, match="part 9"):
        instrument.corpus_melody_midi("bach/bwv66.6", tmp_path / "x.mid", part=9)
