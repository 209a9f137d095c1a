"""Latent operations on plain arrays, against what each one promises."""

from __future__ import annotations

import numpy as np
import pytest

from lib.models import latent


@pytest.fixture
def latents():
    return (np.random.default_rng(0).standard_normal((50, 6)) * [1, 2, 3, 4, 5, 12]).astype(np.float32)


def test_noise_is_scaled_per_dimension(latents):
    spread = latent.latent_spread(latents)
    assert np.array_equal(latent.add_noise(latents, spread, 0.0, rng=1), latents)
    noisy = latent.add_noise(np.zeros((20000, 6), np.float32), spread, 0.5, rng=1)
    assert noisy.std(axis=0) == pytest.approx(0.5 * spread, rel=0.05)
    with pytest.raises(ValueError, match="strength"):
        latent.add_noise(latents, spread, -1.0)


def test_interpolations_hit_their_ends(latents):
    a, b = latents[0], latents[1]
    for function in (latent.lerp, latent.slerp):
        assert np.allclose(function(a, b, 0.0), a, atol=1e-5)
        assert np.allclose(function(a, b, 1.0), b, atol=1e-5)
    assert np.allclose(latent.lerp(a, b, 0.5), (a + b) / 2)
    unit_a, unit_b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert np.allclose(
        latent.slerp(unit_a, unit_b, 0.5), [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6
    )  # stays on the circle
    assert np.allclose(latent.slerp(a, a, 0.3), a, atol=1e-5)  # parallel: no division by zero


def test_crossover_and_arithmetic(latents):
    mask = np.array([True, False] * 3)
    child = latent.crossover(latents[0], latents[1], mask)
    assert np.array_equal(child[mask], latents[0][mask]) and np.array_equal(child[~mask], latents[1][~mask])
    assert latent.random_mask(1000, 0.3, rng=0).mean() == pytest.approx(0.3, abs=0.05)
    assert np.allclose(latent.arithmetic(latents[0], latents[1], latents[1]), latents[0])


def test_attribute_vector_recovers_a_known_shift(latents):
    shift = np.array([0, 0, 3, 0, 0, -1], dtype=np.float32)
    vector = latent.attribute_vector(latents, latents + shift)
    assert np.allclose(vector, shift, atol=1e-5)
    assert np.allclose(latent.apply_attribute(latents[0], vector, 0.5), latents[0] + 0.5 * shift, atol=1e-5)


def test_paired_indices():
    rows = [
        {"program": 0, "velocity": 80, "pitch": 48},
        {"program": 0, "velocity": 80, "pitch": 60},
        {"program": 1, "velocity": 80, "pitch": 60},
        {"program": 0, "velocity": 100, "pitch": 60},
    ]
    assert latent.paired_indices(rows, "pitch", 12, match=("program", "velocity")) == ([0], [1])
    assert latent.paired_indices(rows, "velocity", 20, match=("program", "pitch")) == ([1], [3])


def test_principal_directions(latents):
    directions = latent.principal_directions(latents, count=3)
    assert np.allclose(directions.directions @ directions.directions.T, np.eye(3), atol=1e-5)
    assert np.all(np.diff(directions.explained_share) <= 0) and directions.explained_share.sum() <= 1.0
    assert abs(directions.directions[0, 5]) > 0.9  # the dimension with the largest spread comes first
    moved = directions.move(directions.mean, [2.0])
    assert np.linalg.norm(moved - directions.mean) == pytest.approx(2 * directions.spread[0], rel=1e-5)


def test_descriptors_measure_known_signals():
    from lib.data import analysis

    time = np.arange(16_000) / 16_000
    low, high = np.sin(2 * np.pi * 220 * time), np.sin(2 * np.pi * 440 * time)
    f0 = analysis.median_f0_hz(np.stack([low, high]), sample_rate=16_000)
    assert f0 == pytest.approx([220, 440], rel=0.01)
    assert analysis.semitones(f0[1] / f0[0]) == pytest.approx(12, abs=0.2)
    assert analysis.rms_db(0.5 * low) - analysis.rms_db(low) == pytest.approx(-6.02, abs=0.01)
    centroids = analysis.spectral_centroid_hz(np.stack([low, high]), sample_rate=16_000)
    assert centroids[0] == pytest.approx(220, rel=0.05) and centroids[1] == pytest.approx(440, rel=0.05)


def test_latents_pad_with_zeros_to_a_size():
    latents = np.arange(6, dtype=np.float32).reshape(2, 3)
    padded = latent.pad_latents(latents, 5)
    assert padded.shape == (2, 5) and np.array_equal(padded[:, :3], latents) and not padded[:, 3:].any()
    with pytest.raises(ValueError, match="do not fit"):
        latent.pad_latents(latents, 2)


def labelled_notes() -> tuple[np.ndarray, list[dict], np.ndarray]:
    """Notes whose latent spells out their pitch and velocity, and whose family sets their brightness."""
    rows, latents, waveforms = [], [], []
    time = np.arange(1600) / 16_000
    for family, frequency, programs in (("flute", 2000.0, (73, 74)), ("bass", 200.0, (33, 34))):
        for program in programs:
            for pitch in (48, 60, 72):
                for velocity in (30, 100):
                    rows.append({"family": family, "program": program, "pitch": pitch, "velocity": velocity})
                    latents.append([pitch, velocity, frequency / 1000])
                    waveforms.append(np.sin(2 * np.pi * frequency * time))
    return np.array(latents, np.float32), rows, np.array(waveforms, np.float32)


def test_latent_map_recovers_an_affine_map_and_chooses_its_penalty_on_held_out_pairs():
    rng = np.random.default_rng(0)
    weights, offset = rng.standard_normal((6, 6)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    sources = rng.standard_normal((300, 6)).astype(np.float32)
    targets = sources @ weights + offset + 0.01 * rng.standard_normal((300, 6)).astype(np.float32)
    fitted = latent.fit_latent_map(sources, targets)
    assert fitted.ridge == min(latent.RIDGES) and fitted.pairs == 300  # exact pairs: the least penalty wins
    np.testing.assert_allclose(fitted.weights, weights, atol=0.02)
    np.testing.assert_allclose(fitted.offset, offset, atol=0.02)
    np.testing.assert_allclose(fitted.apply(sources[:3], 0.0), sources[:3])
    np.testing.assert_allclose(fitted.apply(sources[:3], 0.5), (sources[:3] + fitted.apply(sources[:3])) / 2, atol=1e-5)
    np.testing.assert_allclose(latent.apply_edit(sources[0], fitted), fitted.apply(sources[0]))
    np.testing.assert_allclose(latent.apply_edit(sources[0], offset, 2.0), sources[0] + 2 * offset)
    noisy = latent.fit_latent_map(sources[:20], rng.standard_normal((20, 6)))  # nothing to learn: a large penalty
    assert noisy.ridge > min(latent.RIDGES)
    # The penalty is chosen by the error given: one that only sees the first number, or one that rewards shrinking.
    first = latent.decoded_error(lambda latents: latents[:, :1])
    apart_elsewhere = sources[:5] + np.array([0, 9, 9, 9, 9, 9], np.float32)
    assert first(sources[:5], apart_elsewhere) == 0.0 and first(sources[:5], sources[:5] + 1) == pytest.approx(1.0)
    shrunk = latent.fit_latent_map(sources, targets, error=lambda predicted, target: float(np.abs(predicted).mean()))
    assert shrunk.ridge == max(latent.RIDGES)
    with pytest.raises(ValueError, match="at least 10 pairs"):
        latent.fit_latent_map(sources[:5], targets[:5])
    with pytest.raises(ValueError, match="one shape"):
        latent.fit_latent_map(sources, targets[:, :3])


def test_a_map_moves_each_latent_by_its_own_amount_where_a_vector_cannot():
    # A latent that holds a spectrum: an octave up moves each partial's bin to twice its place.
    rng = np.random.default_rng(1)
    sources = np.zeros((200, 16), np.float32)
    sources[np.arange(200), rng.integers(1, 8, 200)] = rng.uniform(0.5, 1.0, 200)
    targets = np.zeros_like(sources)
    targets[:, 2:16:2] = sources[:, 1:8]
    vector = latent.attribute_vector(sources, targets)
    fitted = latent.fit_latent_map(sources, targets)
    vector_error = np.mean((latent.apply_attribute(sources, vector) - targets) ** 2)
    map_error = np.mean((fitted.apply(sources) - targets) ** 2)
    assert map_error < 0.01 * vector_error


def test_note_vectors_follow_the_labels_and_pick_their_test_clips():
    latents, rows, waveforms = labelled_notes()
    found = latent.note_attribute_vectors(latents, rows, waveforms, sample_rate=16_000)
    assert (found.darkest, found.brightest) == ("bass", "flute") and found.group_vector == "bass_to_flute"
    np.testing.assert_allclose(found.vectors["octave_up"], [12, 0, 0], atol=1e-5)
    np.testing.assert_allclose(found.vectors["louder"], [0, 70, 0], atol=1e-5)
    np.testing.assert_allclose(found.vectors["bass_to_flute"], [0, 0, 1.8], atol=1e-5)
    assert found.centroid_hz["flute"] > found.centroid_hz["bass"]
    sources, targets = latent.paired_indices(rows, "pitch", 12, match=("program", "velocity"))
    np.testing.assert_allclose(found.maps["octave_up"].apply(latents[sources]), latents[targets], atol=0.5)
    candidates = latent.note_edit_candidates(rows, found, top_pitch=72, softest_velocity=30)
    assert all(rows[i]["pitch"] <= 60 for i in candidates["octave_up"]) and len(candidates["octave_up"]) == 16
    assert {rows[i]["velocity"] for i in candidates["louder"]} == {30}
    assert {rows[i]["family"] for i in candidates["bass_to_flute"]} == {"bass"}


def test_measured_vectors_come_from_quarters_of_level_and_brightness():
    latents, rows, waveforms = labelled_notes()
    rows = [{"label": row["family"], "level_db": -40.0 + row["velocity"] / 10} for row in rows]

    def encode(clips: np.ndarray) -> np.ndarray:  # the latents, with the level change in their second number
        return latents + np.array([0, 20 * np.log10(np.abs(clips).max() / np.abs(waveforms).max()), 0], np.float32)

    found = latent.measured_attribute_vectors(latents, rows, waveforms, sample_rate=16_000, encode=encode)
    assert list(found.vectors) == ["louder", "brighter", "bass_to_flute"] and list(found.maps) == ["octave_up"]
    assert found.maps["octave_up"].pairs == len(rows)
    # Louder: the same clips LOUDER_DB louder, nothing else; brighter: the brighter family's clips.
    np.testing.assert_allclose(found.vectors["louder"], [0, latent.LOUDER_DB, 0], atol=1e-4)
    assert found.vectors["brighter"][2] > 0
    candidates = latent.measured_edit_candidates(rows, waveforms, found, sample_rate=16_000)
    assert len(candidates["louder"]) == len(rows) // 2 and {rows[i]["label"] for i in candidates["bass_to_flute"]} == {
        "bass"
    }
    one_label = [{**row, "label": "all"} for row in rows]
    alone = latent.measured_attribute_vectors(latents, one_label, waveforms, sample_rate=16_000, encode=encode)
    assert "all_to_all" not in alone.vectors and "all_to_all" not in latent.measured_edit_candidates(
        one_label, waveforms, alone, sample_rate=16_000
    )


def test_hybrid_pairs_take_different_sources_and_fall_back_to_one_source():
    sources = ["a", "a", "b", "b", "c"]
    pairs, different = latent.hybrid_pairs(sources, 20, rng=np.random.default_rng(0))
    assert different and pairs.shape == (20, 2)
    assert all(sources[first] != sources[second] for first, second in pairs)
    # A small folder's test split can hold one file: the pairs are then different clips of it, said so.
    pairs, different = latent.hybrid_pairs(["only"] * 3, 5, rng=np.random.default_rng(0))
    assert not different and all(first != second for first, second in pairs)
    with pytest.raises(ValueError, match="two clips"):
        latent.hybrid_pairs(["only"], 1, rng=np.random.default_rng(0))
