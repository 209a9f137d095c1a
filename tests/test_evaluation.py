"""Evaluation helpers against known answers: nearest distances, pitch agreement, family shares, scores."""

from __future__ import annotations

import numpy as np
import pytest

from lib import evaluation, judge
from tests.conftest import SAMPLE_RATE, harmonic_tone


def test_nearest_distances_known_answer():
    reference = np.array([[0.0, 0.0], [10.0, 0.0]])
    features = np.array([[3.0, 4.0], [10.0, 1.0], [0.0, 0.0]])
    assert evaluation.nearest_distances(features, reference, chunk=2) == pytest.approx([5.0, 1.0, 0.0])


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


class _Reference:
    """The part of GenerationReference that score_generated reads."""

    def __init__(self, train, test):
        self.train, self.test = train, test
        self.families, self.pitches = ("a", "b"), (60, 61, 62)
        self.bins = judge.NDBBins(train.features, bins=4)


def test_scores_separate_a_copy_a_fresh_sample_and_a_shifted_one():
    rng = np.random.default_rng(0)

    def verdict(features):
        labels = (features[:, 0] > 0).astype(int)
        return judge.Judgement(features, labels % 3, labels)

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


def test_choice_by_frechet_prefers_the_closest_set_and_refuses_copies():
    rng = np.random.default_rng(1)

    def verdict(features):
        labels = (features[:, 0] > 0).astype(int)
        return judge.Judgement(features, labels % 3, labels)

    train = verdict(rng.standard_normal((400, 3)))
    reference = _Reference(train, verdict(rng.standard_normal((400, 3))))
    reference.judge_audio = lambda features: verdict(features)  # "audio" here is features already
    candidates = {
        "shifted": lambda n: rng.standard_normal((n, 3)) + 1.5,
        "right": lambda n: rng.standard_normal((n, 3)),
        "copy": lambda n: train.features[:n],
    }
    chosen, scores = evaluation.choose_by_frechet(candidates, reference, count=200, memorisation_distance=0.1)
    assert chosen == "right" and scores["copy"]["frechet_distance"] < scores["shifted"]["frechet_distance"]
    with pytest.warns(UserWarning, match="copies least"):
        only_copies = {"copy": candidates["copy"], "near copy": lambda n: train.features[:n] + 0.01}
        chosen, _ = evaluation.choose_by_frechet(only_copies, reference, count=200, memorisation_distance=0.1)
    assert chosen == "near copy"
