"""Genre phrases: split by score, the phrase representation, genre conditions and the content measures."""

from __future__ import annotations

import numpy as np
import pytest

from lib.core.fileio import save_json
from lib.data import collection, genres
from lib.data.dataset import bounded_phrase_config
from lib.data.phrases import load_phrases, phrase_config
from lib.measure import genre_lab
from lib.models.vae import VAEConfig
from tests.conftest import SAMPLE_RATE, harmonic_tone


@pytest.fixture(scope="module")
def phrases(tmp_path_factory):
    root = tmp_path_factory.mktemp("genres")
    config = genres.GenreConfig(scores_per_genre=4, excerpt_seconds=8.0)
    genres.build_genre_audio(root / "audio", config, progress=False)
    collection.prepare_collection(root / "audio", root / "clips", phrase_config(), progress=False)
    return load_phrases(root=root, build=False)


def test_phrases_are_split_by_score(phrases):
    files = {split: {row["file"] for row in phrases.split(split)[1]} for split in ("train", "valid", "test")}
    assert files["train"] and files["test"]
    assert not (files["train"] & files["valid"] or files["train"] & files["test"] or files["valid"] & files["test"])
    for split in files:  # every file is one score of one genre: its phrases never change genre
        rows = phrases.split(split)[1]
        assert all(row["file"].split("/")[0] == row["label"] for row in rows)
    assert set(phrases.labels) == set(genres.GENRES)


def test_phrases_are_four_seconds_on_a_coarser_grid(phrases):
    waveforms, rows = phrases.split("train")
    assert waveforms.shape[1] == 4 * SAMPLE_RATE
    config = phrases.representation.config
    assert (config.hop_length, config.frames) == (512, 128)
    assert phrases.representation.forward(waveforms[:2]).shape == (2, 512, 128)
    starts = sorted({row["start_seconds"] for row in rows if row["file"] == rows[0]["file"]})
    assert starts[:3] == [0.0, 2.0, 4.0]  # a phrase every 2 s: they overlap by half


def test_phrase_length_is_a_parameter():
    config = phrase_config(6.0, 3.0)
    assert (config.clip_seconds, config.hop_seconds) == (6.0, 3.0)
    with pytest.raises(ValueError, match="positive"):
        phrase_config(0.0)


def test_a_large_folder_prepares_a_bounded_number_of_phrases(tmp_path):
    """Phrase starts spread out once a folder's hours would give more than four times the phrases held."""
    save_json(tmp_path / "collection.json", {"hours": 50.0})
    limits = {"train": 2500, "valid": 400, "test": 400, "heldout": 400}
    config = bounded_phrase_config(phrase_config(4.0, 2.0), tmp_path, limits)
    assert config.hop_seconds == pytest.approx(13.64)  # 180,000 s over 4 x 3,300 phrases, rounded up
    assert 50 * 3600 / config.hop_seconds <= 4 * 3300
    assert config.clip_seconds == 4.0
    save_json(tmp_path / "collection.json", {"hours": 1.0}, overwrite=True)
    assert bounded_phrase_config(phrase_config(4.0, 2.0), tmp_path, limits).hop_seconds == 2.0  # 1,800 phrases
    unlimited = {**limits, "train": None}
    save_json(tmp_path / "collection.json", {"hours": 50.0}, overwrite=True)
    assert bounded_phrase_config(phrase_config(4.0, 2.0), tmp_path, unlimited).hop_seconds == 2.0
    assert bounded_phrase_config(phrase_config(4.0, 2.0), tmp_path / "not prepared", limits).hop_seconds == 2.0


def melody(pitches: list[float], seconds: float = 4.0) -> np.ndarray:
    """Notes of equal length, one per pitch (Hz), with attacks: a phrase with rhythm and harmony."""
    length = int(seconds * SAMPLE_RATE / len(pitches))
    return np.concatenate([harmonic_tone(pitch, length / SAMPLE_RATE) for pitch in pitches]).astype(np.float32)


def test_a_phrase_keeps_all_of_itself_and_little_of_an_unrelated_one():
    first = melody([220.0, 277.2, 329.6, 440.0, 329.6, 277.2, 220.0, 246.9])
    unrelated = melody([196.0, 311.1, 370.0], 4.0)
    unrelated = np.concatenate([unrelated, np.zeros(len(first) - len(unrelated), np.float32)])
    itself = genre_lab.content_kept(first[None], first[None], sample_rate=SAMPLE_RATE)
    assert itself["onset"][0] == pytest.approx(1.0) and itself["chroma"][0] == pytest.approx(1.0)
    other = genre_lab.content_kept(first[None], unrelated[None], sample_rate=SAMPLE_RATE)
    assert other["onset"][0] < 0.5 and other["chroma"][0] < 0.5
    louder = genre_lab.content_kept(first[None], 0.5 * first[None], sample_rate=SAMPLE_RATE)
    assert louder["onset"][0] > 0.99 and louder["chroma"][0] > 0.99  # a gain changes no content


def test_the_shared_part_earns_nothing():
    """Phrases on one beat grid share their rhythm: relative to the baseline, only the particular counts."""
    rng = np.random.default_rng(0)
    scale = [220.0, 246.9, 277.2, 293.7, 329.6, 370.0, 415.3, 440.0]
    phrases = np.stack([melody(list(rng.choice(scale, 8))) for _ in range(12)])
    raw = genre_lab.content_kept(phrases[:6], phrases[6:], sample_rate=SAMPLE_RATE)
    assert raw["onset"].mean() > 0.8  # the same grid: raw envelopes agree whatever the notes
    baseline = genre_lab.content_baseline(phrases, sample_rate=SAMPLE_RATE)
    relative = genre_lab.content_kept(phrases[:6], phrases[6:], sample_rate=SAMPLE_RATE, baseline=baseline)
    assert relative["onset"].mean() < raw["onset"].mean() - 0.3
    itself = genre_lab.content_kept(phrases[:6], phrases[:6], sample_rate=SAMPLE_RATE, baseline=baseline)
    assert np.allclose(itself["onset"], 1.0) and np.allclose(itself["chroma"], 1.0)


def test_row_correlations():
    first = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    assert genre_lab.row_correlations(first, first * 2 + 1).tolist() == pytest.approx([1.0, 0.0])
    assert genre_lab.row_correlations(first[:1], -first[:1])[0] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="matching"):
        genre_lab.row_correlations(first, first[:, :2])


def test_genre_conditions_and_transfer_pairs():
    names = ("a", "b", "c")
    conditions = genre_lab.genre_conditions(["b", "a"], names)
    assert conditions.tolist() == [[0, 1, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match="unknown"):
        genre_lab.genre_conditions(["d"], names)
    labels = ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    pairs = genre_lab.transfer_pairs(labels, names, 6, seed=0)
    assert len(pairs) == 6 * 2 and all(labels[index] != target for index, target in pairs)
    assert {labels[index] for index, _ in pairs} == set(names)


def test_genre_cvae_round_trip_shapes():
    config = VAEConfig(basis_size=8, latent_dim=3, hidden_width=16, hidden_layers=1)
    model = genre_lab.build_genre_cvae(config, 4, np.ones(8, np.float32))
    coefficients = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    conditions = genre_lab.genre_conditions(["x", "y", "x", "z", "w"], ("w", "x", "y", "z"))
    latents = genre_lab.encode_with_genres(model, coefficients, conditions)
    assert latents.shape == (5, 3)
    decoded = genre_lab.decode_with_genres(model, latents, conditions)
    swapped = genre_lab.decode_with_genres(model, latents, conditions[::-1])
    assert decoded.shape == (5, 8) and not np.allclose(decoded, swapped)  # the condition reaches the decoder


def test_genre_conditions_know_their_genres_and_give_one_hot_vectors():
    space = genre_lab.GenreConditions(("jazz", "rock"))
    rows = [{"label": "rock"}, {"label": "folk"}, {"label": "jazz"}]
    assert space.known(rows).tolist() == [True, False, True]
    vectors = space.conditions_of(np.zeros((2, 4)), [rows[0], rows[2]], sample_rate=16_000)
    assert vectors.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert space.to_dict() == {"genres": ["jazz", "rock"]}
    with pytest.raises(ValueError, match="unknown genre"):
        space.conditions_of(np.zeros((1, 4)), [rows[1]], sample_rate=16_000)
