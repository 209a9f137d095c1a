"""The genre collections: scores from music21's corpus to audio with one instrument palette."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from lib.data import genres
from lib.data.synth import render_score


def test_a_chorale_becomes_four_parts_of_notes_and_audio_with_its_rhythm():
    chorale = next(path for path in genres.candidate_scores("chorale", 0) if path.stem == "bwv66.6")
    notes = genres.score_notes(chorale)
    assert len({note.part for note in notes}) == 4
    assert all(note.end > note.start and 0 <= note.pitch < 128 for note in notes)
    audio = render_score(notes, 0, sample_rate=16_000, seconds=4.0)
    assert audio.shape == (5 * 16_000,)  # 4 s of score, 1 s of release
    assert float(np.max(np.abs(audio))) == pytest.approx(0.9, abs=1e-6)
    onsets = sorted({round(note.start * 16_000) for note in notes if note.start < 4.0})
    energy = [float(np.mean(audio[start : start + 800] ** 2)) for start in onsets[1:]]
    assert min(energy) > 1e-4  # every onset sounds


def test_a_small_build_has_every_genre_with_the_palette_and_is_reused(tmp_path):
    config = genres.GenreConfig(scores_per_genre=2, excerpt_seconds=3.0, sample_rate=16_000)
    record = genres.build_genre_audio(tmp_path, config, progress=False)
    assert set(record["rendered"]) == set(genres.GENRES)
    for genre, names in record["rendered"].items():
        assert len(names) == 2
        assert [name.split("__")[1] for name in names] == ["piano.flac", "harpsichord.flac"]
        for name in names:
            info = soundfile.info(tmp_path / genre / name)
            assert info.samplerate == 16_000 and 3.5 < info.duration <= 4.0
    stamps = {path: path.stat().st_mtime_ns for path in tmp_path.glob("*/*.flac")}
    assert genres.build_genre_audio(tmp_path, config, progress=False) == record
    assert {path: path.stat().st_mtime_ns for path in tmp_path.glob("*/*.flac")} == stamps


def test_a_score_that_cannot_be_converted_is_reported(tmp_path):
    broken = tmp_path / "broken.abc"
    broken.write_text("X:1\nthis is not abc notation at all {{{\n")
    try:
        genres.score_notes(broken)
    except ValueError as error:
        assert "cannot convert to MIDI" in str(error) or "holds no notes" in str(error)
    else:
        raise AssertionError("a broken score converted")


def test_rendering_in_processes_writes_what_one_process_writes_even_after_a_failure(tmp_path, monkeypatch):
    broken = tmp_path / "broken.abc"
    broken.write_text("X:1\nthis is not abc notation at all {{{\n")
    real = genres.candidate_scores

    def with_a_broken_second(genre: str, seed: int):
        found = real(genre, seed)
        return [found[0], broken, *found[1:]] if genre == "chorale" else found

    monkeypatch.setattr(genres, "candidate_scores", with_a_broken_second)
    config = genres.GenreConfig(scores_per_genre=2, excerpt_seconds=2.0, sample_rate=16_000)
    records = {
        workers: genres.build_genre_audio(tmp_path / str(workers), config, progress=False, workers=workers)
        for workers in (1, 2)
    }
    assert records[1] == records[2]
    assert list(records[2]["failed"]) == ["chorale/broken.abc"]
    assert [name.split("__")[1] for name in records[2]["rendered"]["chorale"]] == ["piano.flac", "harpsichord.flac"]
    for genre, names in records[1]["rendered"].items():
        for name in names:
            assert (tmp_path / "1" / genre / name).read_bytes() == (tmp_path / "2" / genre / name).read_bytes()
