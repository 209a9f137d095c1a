"""Evaluation helpers against known answers: nearest distances, pitch agreement, family shares, scores."""

from __future__ import annotations

import numpy as np
import pytest

from lib.measure import evaluation
from lib.models import judge
from tests.conftest import SAMPLE_RATE, harmonic_tone, linear_model


def test_nearest_distances_known_answer():
    reference = np.array([[0.0, 0.0], [10.0, 0.0]])
    features = np.array([[3.0, 4.0], [10.0, 1.0], [0.0, 0.0]])
    assert evaluation.nearest_distances(features, reference, chunk=2) == pytest.approx([5.0, 1.0, 0.0])
    one_by_one = evaluation.nearest_distances(features, reference, block_elements=2)  # a long reference's blocks
    assert one_by_one == pytest.approx([5.0, 1.0, 0.0])


def test_pitch_agreement_counts_cents_and_unvoiced_clips():
    a4 = 440.0
    f0 = np.array([a4, a4 * 2 ** (40 / 1200), a4 * 2 ** (-60 / 1200), np.nan])
    agreement = evaluation.pitch_agreement(f0, np.array([69, 69, 69, 69]))
    assert agreement["voiced"] == pytest.approx(0.75)
    assert agreement["within"] == pytest.approx(2 / 3)
    assert agreement["median_abs_cents"] == pytest.approx(40.0)
    assert evaluation.cents_from_pitch(np.array([880.0]), np.array([69]))[0] == pytest.approx(1200.0)


def test_measured_pitch_of_tones():
    tones = np.stack([harmonic_tone(220.0), harmonic_tone(330.0)])
    right = evaluation.measure_pitch(tones, np.array([57, 64]), sample_rate=SAMPLE_RATE)  # A3, E4 (329.6 Hz)
    wrong = evaluation.measure_pitch(tones, np.array([58, 62]), sample_rate=SAMPLE_RATE)
    assert right["within"] == 1.0 and wrong["within"] == 0.0


def test_family_shares_within_a_factor():
    real = {"a": 0.5, "b": 0.4, "c": 0.1}
    assert evaluation.family_shares_within({"a": 0.6, "b": 0.3, "c": 0.1}, real)
    assert not evaluation.family_shares_within({"a": 0.6, "b": 0.4, "c": 0.0}, real)  # a family dropped
    assert not evaluation.family_shares_within({"a": 0.3, "b": 0.2, "c": 0.5}, real)  # one five times too common


def verdict(features: np.ndarray) -> judge.Judgement:
    """A judge's verdict on feature rows: family 1 where the first feature is positive."""
    labels = (features[:, 0] > 0).astype(int)
    return judge.Judgement(features, labels % 3, labels)


class _Reference:
    """The part of GenerationReference that score_generated and choose_by_frechet read."""

    def __init__(self, train, test):
        self.train, self.test = train, test
        self.train_features, self.test_features = train.features, test.features
        self.families, self.pitches = ("a", "b"), (60, 61, 62)
        self.bins = judge.NDBBins(train.features, bins=4)

    def judge_audio(self, features):
        return verdict(features)  # the "audio" of these tests is feature rows already


def test_scores_separate_a_copy_a_fresh_sample_and_a_shifted_one():
    rng = np.random.default_rng(0)

    train = verdict(rng.standard_normal((400, 3)))
    reference = _Reference(train, verdict(rng.standard_normal((400, 3))))
    copy = evaluation.score_generated(reference, verdict(train.features[:200]))
    fresh = evaluation.score_generated(reference, verdict(rng.standard_normal((200, 3))))
    shifted = evaluation.score_generated(reference, verdict(rng.standard_normal((200, 3)) + 2.0))
    assert copy["nearest_train_distance"] == pytest.approx(0.0, abs=1e-6)
    assert fresh["nearest_train_distance"] > 0.1
    assert fresh["frechet_distance"] < 0.2 < 10.0 < shifted["frechet_distance"]
    assert fresh["ndb_over_k"] <= 0.25 and shifted["ndb_over_k"] >= 0.5
    assert shifted["family_shares"]["b"] > 0.9 and sum(fresh["family_shares"].values()) == pytest.approx(1.0)


def test_choice_by_frechet_prefers_the_closest_set_and_refuses_copies(caplog):
    rng = np.random.default_rng(1)

    train = verdict(rng.standard_normal((400, 3)))
    reference = _Reference(train, verdict(rng.standard_normal((400, 3))))
    candidates = {
        "shifted": lambda n: rng.standard_normal((n, 3)) + 1.5,
        "right": lambda n: rng.standard_normal((n, 3)),
        "copy": lambda n: train.features[:n],
    }
    chosen, scores = evaluation.choose_by_frechet(candidates, reference, count=200, memorisation_distance=0.1)
    assert chosen == "right" and scores["copy"]["frechet_distance"] < scores["shifted"]["frechet_distance"]
    only_copies = {"copy": candidates["copy"], "near copy": lambda n: train.features[:n] + 0.01}
    chosen, _ = evaluation.choose_by_frechet(only_copies, reference, count=200, memorisation_distance=0.1)
    assert chosen == "near copy" and "copies least" in caplog.text


class _ToneCodec:
    """Decodes latent (semitones above A3, gain) to a harmonic tone: known pitch and level."""

    def decode_audio(self, latents):
        latents = np.asarray(latents)
        return np.stack([gain * harmonic_tone(220.0 * 2 ** (semitones / 12)) for semitones, gain in latents])


def test_attribute_effect_measures_pitch_and_level():
    latents = np.array([[0.0, 1.0], [3.0, 1.0], [5.0, 0.5]], dtype=np.float32)
    octave, before, after = evaluation.attribute_effect(
        _ToneCodec(), latents, np.array([12.0, 0.0]), sample_rate=SAMPLE_RATE
    )
    assert octave["f0_shift_semitones_median"] == pytest.approx(12.0, abs=0.1)
    assert octave["f0_shift_within_1_semitone_of_12_share"] == 1.0
    assert octave["rms_change_db_mean"] == pytest.approx(0.0, abs=0.5)
    assert octave["centroid_change_hz_mean"] > 100 and before.shape == after.shape == (3, SAMPLE_RATE)
    louder, _, _ = evaluation.attribute_effect(_ToneCodec(), latents, np.array([0.0, 1.0]), sample_rate=SAMPLE_RATE)
    # Gains 1 -> 2, 1 -> 2, 0.5 -> 1.5: +6.02, +6.02, +9.54 dB.
    assert louder["rms_change_db_mean"] == pytest.approx((6.02 + 6.02 + 9.54) / 3, abs=0.05)
    assert louder["f0_shift_semitones_median"] == pytest.approx(0.0, abs=0.1)


class _WaveformCodec:
    """A codec whose latent is the waveform itself: exact reconstructions."""

    def encode_audio(self, waveforms):
        return np.asarray(waveforms, np.float32)

    def decode_audio(self, latents):
        return np.asarray(latents, np.float32)


def test_edits_against_targets_measure_each_edit_beside_no_edit_and_the_codec_floor():
    sources = np.stack([harmonic_tone(220.0), harmonic_tone(220.0)])
    targets = np.stack([harmonic_tone(440.0), harmonic_tone(440.0)])
    edits = {"none": np.zeros(sources.shape[1], np.float32), "exact": targets[0] - sources[0]}
    figures = evaluation.edits_against_targets(
        _WaveformCodec(), sources, sources, targets, edits, sample_rate=SAMPLE_RATE
    )
    assert figures["pairs"] == 2 and figures["target_reconstruction_db"] == pytest.approx(0.0, abs=1e-3)
    assert figures["none_db"] == pytest.approx(figures["source_clip_db"]) and figures["source_clip_db"] > 5
    assert figures["exact_db"] == pytest.approx(0.0, abs=0.1)
    with pytest.raises(ValueError, match="as many targets"):
        evaluation.edits_against_targets(
            _WaveformCodec(), sources, sources, targets[:1], edits, sample_rate=SAMPLE_RATE
        )


def test_identity_autoencoder_equals_pca_in_the_sweep():
    from lib.models.codec import LatentCodec
    from lib.spectral.basis import SpectralBasis
    from lib.spectral.representation import SpectrogramRepresentation

    representation = SpectrogramRepresentation(griffin_lim_iterations=4)
    clips = np.stack([harmonic_tone(f) for f in np.linspace(110, 440, 12)])
    spectrograms = representation.forward(clips)
    basis = SpectralBasis.fit(spectrograms, 6)
    identity = np.eye(6)
    codec = LatentCodec(
        representation, basis, linear_model(6, 6, identity, "encoder"), linear_model(6, 6, identity, "decoder")
    )
    rows, audio = evaluation.rate_distortion_sweep(codec, basis, clips[:4], spectrograms[:4], [2, 6])
    assert [(r["method"], r["latent_dim"]) for r in rows] == [
        ("autoencoder", 2), ("pca", 2), ("autoencoder", 6), ("pca", 6),
    ]  # fmt: skip
    assert rows[0]["compression_ratio"] == pytest.approx(8000.0) and rows[0]["bitrate_kbps"] == pytest.approx(0.032)
    for ae_row, pca_row in ((rows[0], rows[1]), (rows[2], rows[3])):
        assert ae_row["log_mel_distance_db"] == pytest.approx(pca_row["log_mel_distance_db"], abs=1e-3)
    assert rows[2]["log_mel_distance_db"] < rows[0]["log_mel_distance_db"]
    assert audio["autoencoder", 6].shape == (4, SAMPLE_RATE)


def test_class_indices_name_positions_and_refuse_unknown_names():
    assert evaluation.class_indices(["b", "a", "b"], ("a", "b", "c")).tolist() == [1, 0, 1]
    with pytest.raises(ValueError):
        evaluation.class_indices(["d"], ("a", "b"))


class _Identity:
    """A stand-in autoencoder and basis that record what they are asked to decode."""

    latent_dim = 6
    explained_variance = np.array([4.0, 1.0, 0.25, 0.1, 0.1, 0.1])

    def decode_spectrograms(self, latents):
        return np.asarray(latents)

    def inverse(self, coefficients, keep):
        return np.pad(coefficients[:, :keep], ((0, 0), (0, self.latent_dim - keep)))


def test_baseline_generators_draw_in_a_fixed_order_and_keep_their_sizes():
    stand_in = _Identity()
    training = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    rng = np.random.default_rng(5)
    made = evaluation.baseline_generators(stand_in, stand_in, training, 400, noise_strength=0.0, rng=rng, noise_seed=1)
    assert set(made) == {"ae_noise", "pca_gaussian"}
    noise_free = made["ae_noise"]
    assert noise_free.shape == (400, 6) and np.all(noise_free[:, 3:] == 0)
    assert all(any(np.array_equal(row, clip) for clip in training) for row in noise_free[:, :3])  # training clips
    spread = made["pca_gaussian"][:, :3].std(axis=0)
    np.testing.assert_allclose(spread, [2.0, 1.0, 0.5], rtol=0.15)  # the basis's variances
    assert np.all(made["pca_gaussian"][:, 3:] == 0)
    # the same draws from the caller's generator: clips first, then coefficients, then whatever follows
    replay = np.random.default_rng(5)
    picked = replay.choice(50, 400)
    np.testing.assert_array_equal(noise_free[:, :3], training[picked])
    replay.standard_normal((400, 3))
    assert replay.random() == rng.random()
    noisy = evaluation.baseline_generators(
        stand_in, stand_in, training, 400, noise_strength=1.0, rng=np.random.default_rng(5), noise_seed=1
    )["ae_noise"]
    assert np.abs(noisy[:, :3] - noise_free[:, :3]).mean() > 0.3
