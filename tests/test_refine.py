"""Refining a clip's latent on its own log-mel distance: the objective is the lab's distance, and it only helps."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from lib.measure import evaluation
from lib.models.codec import CLIP_SHARES, LogMelReference
from tests.test_autoencoder import SMALL, _linear_path_codec, _small_sizes_codec, basis, clips, representation

__all__ = ["basis", "clips", "representation"]  # the fixtures, shared with test_autoencoder


@pytest.fixture(scope="module")
def spectrograms(representation, clips):
    return representation.forward(clips[:10])


def test_the_objective_is_the_log_mel_distance_the_lab_measures(representation, basis, clips, spectrograms):
    codec = _linear_path_codec(representation, basis, clips, residual_scale=0.3)
    latents = codec.encode_spectrograms(spectrograms)
    reference = LogMelReference(representation, spectrograms)
    floor = reference.reference_db.max(axis=(1, 2), keepdims=True) - 80.0
    for index, share in enumerate(CLIP_SHARES):
        for size in (2, SMALL.latent_dim):
            kept = latents * (np.arange(SMALL.latent_dim) < size)
            measured = reference.distances(codec.decode_spectrograms(kept, size=size, choices=np.full(10, index)))
            objective = codec.refinement.distances(
                tf.constant(kept[:, :size]),
                tf.constant(np.full((10, 1), share, np.float32)),
                tf.constant(np.maximum(reference.reference_db, floor)),
                tf.constant(floor),
            ).numpy()
            assert np.allclose(objective, measured, atol=2e-3), (share, size)
    pca_latents = codec.linear_latents(basis.transform(spectrograms))
    linear = codec.linear_refinement.distances(
        tf.constant(pca_latents[:, :4]),
        tf.constant(np.zeros((10, 1), np.float32)),
        tf.constant(np.maximum(reference.reference_db, floor)),
        tf.constant(floor),
    ).numpy()
    assert np.allclose(linear, reference.distances(basis.reconstruct(spectrograms, 4)), atol=2e-3)


def test_refined_codes_are_never_further_and_mostly_closer(representation, basis, clips, spectrograms):
    codec = _linear_path_codec(representation, basis, clips, residual_scale=0.3)
    for size in (2, 8):
        plain = codec.code_clips(spectrograms, size=size, batch_size=4)
        refined = codec.code_clips(spectrograms, size=size, batch_size=4, refine_steps=10)
        assert np.array_equal(plain.choices, refined.choices)  # the share stays the chosen one
        assert np.array_equal(plain.coded_db, plain.chosen_db) and plain.refined_share == 0.0
        assert np.allclose(refined.chosen_db, plain.chosen_db)
        assert np.all(refined.coded_db <= refined.chosen_db)
        assert refined.refined_share >= 0.5 and refined.coded_db.mean() < refined.chosen_db.mean() - 0.05, size
        assert not refined.latents[:, size:].any()
        decoded = codec.decode_spectrograms(refined.latents, size=size, choices=refined.choices)
        assert np.allclose(LogMelReference(representation, spectrograms).distances(decoded), refined.coded_db)


def test_the_smallest_sizes_are_refined_by_their_own_model(representation, basis, clips, spectrograms):
    codec = _small_sizes_codec(representation, basis, clips)
    latents, choices = codec.encode_choosing(spectrograms, size=4, refine_steps=5)
    assert latents.shape == (10, SMALL.latent_dim) and not latents[:, 4:].any()
    small_latents, small_choices = codec.small.encode_choosing(spectrograms, size=4, refine_steps=5)
    assert np.array_equal(latents[:, :4], small_latents) and np.array_equal(choices, small_choices)
    searched = codec.encode_spectrograms(spectrograms, size=4, refine_steps=5)  # the recording codec's path
    assert searched.shape == (10, SMALL.latent_dim) and not searched[:, 4:].any()
    small_searched = codec.small.encode_spectrograms(spectrograms, size=4, refine_steps=5)
    assert np.allclose(searched[:, :4], small_searched[:, :4])
    plain = codec.encode_spectrograms(spectrograms, size=4)
    assert np.allclose(codec.refine_latents(spectrograms, plain, size=4, refine_steps=5), searched)
    # A recording's clips searched together: by the small model too, padded back to the codec's latent size.
    from lib.models.recording import clip_weights, span_spectrogram

    config, hop = representation.config, 7936  # 31 STFT hops
    real, hop_frames = 1 + config.clip_samples // config.hop_length, hop // config.hop_length
    together = np.stack([clips[0], np.concatenate([clips[0][hop:], clips[1][:hop]])])  # two overlapping clips
    span = span_spectrogram(representation, together, hop)
    first = codec.encode_spectrograms(representation.forward(together), size=4)
    arguments = {"size": 4, "refine_steps": 5, "hop": hop_frames, "weights": clip_weights(real, real - hop_frames)}
    moved = codec.refine_span(span, first, **arguments)
    assert moved.shape == (2, SMALL.latent_dim) and not moved[:, 4:].any()
    assert np.allclose(
        moved[:, :4], codec.small.refine_span(span, first[:, : codec.small.latent_dim], **arguments)[:, :4]
    )


def test_pca_refined_is_closer_than_pca_and_the_sweep_reports_both(representation, basis, clips, spectrograms):
    codec = _linear_path_codec(representation, basis, clips, residual_scale=0.3)
    reference = LogMelReference(representation, spectrograms)
    moved = codec.refine_pca(spectrograms, size=4, refine_steps=10)
    assert not moved[:, 4:].any()
    refined = reference.distances(codec.decode_spectrograms(moved, size=4, choices=np.zeros(10, np.int64)))
    assert refined.mean() < reference.distances(basis.reconstruct(spectrograms, 4)).mean()
    waveforms = clips[:10]
    rows, _ = evaluation.rate_distortion_sweep(
        codec, basis, waveforms, spectrograms, [2, 4], refine_steps=3, refined_pca=True
    )
    assert [(row["method"], row["latent_dim"]) for row in rows] == [
        (method, size) for size in (2, 4) for method in ("autoencoder", "pca", "pca_refined")
    ]
    autoencoder = [row for row in rows if row["method"] == "autoencoder"]
    assert all(row["coded_magnitude_db"] <= row["chosen_magnitude_db"] for row in autoencoder)
    assert all(0.0 <= row["refined_share"] <= 1.0 for row in autoencoder)
    plain, _ = evaluation.rate_distortion_sweep(codec, basis, waveforms, spectrograms, [2])
    assert {row["method"] for row in plain} == {"autoencoder", "pca"} and plain[0]["refined_share"] == 0.0


def test_the_recording_codec_searches_each_clip_and_pca_does_not(representation, basis, clips, spectrograms):
    from lib.measure.recording_report import recording_round_trip
    from lib.models.recording import CodecModel, PcaCodec, encode_stream, search_steps

    codec = _linear_path_codec(representation, basis, clips, residual_scale=0.3)
    reference = LogMelReference(representation, spectrograms)
    for size in (2, 8):
        plain = codec.encode_spectrograms(spectrograms, size=size)
        searched = codec.encode_spectrograms(spectrograms, size=size, refine_steps=10)
        assert not searched[:, size:].any()
        before = reference.distances(codec.decode_spectrograms(plain, size=size))
        after = reference.distances(codec.decode_spectrograms(searched, size=size))
        assert np.all(after <= before + 1e-6) and after.mean() < before.mean() - 0.05, size
    waveform = np.concatenate(list(clips[:3]))
    hop = 7936  # 31 STFT hops, about half a clip
    plain, samples = encode_stream(codec, [waveform], latent_size=4, clip_hop_samples=hop)
    searched, _ = encode_stream(codec, [waveform], latent_size=4, clip_hop_samples=hop, refine_steps=10)
    assert plain.shape == searched.shape and plain.shape[1] == 4 and not np.allclose(plain, searched)
    with pytest.raises(ValueError, match="0 or more"):
        encode_stream(codec, [waveform], latent_size=4, clip_hop_samples=hop, refine_steps=-1)
    back = recording_round_trip(codec, waveform, latent_size=4, clip_hop_samples=hop, refine_steps=10)
    assert back.shape == (samples,) and np.isfinite(back).all()
    pca = PcaCodec(representation, basis)
    with pytest.raises(ValueError, match="projection"):
        pca.encode_spectrograms(spectrograms, size=4, refine_steps=10)
    assert search_steps(CodecModel("pca", "synthetic", "0" * 16, pca), 10) == 0
    assert search_steps(CodecModel("autoencoder", "synthetic", "0" * 16, codec), 10) == 10


def test_a_recording_searches_its_clips_together_and_keeps_neighbours_close(representation, basis, clips):
    from lib.models.recording import PcaCodec, clip_stream, clip_weights, encode_stream, span_spectrogram

    codec = _linear_path_codec(representation, basis, clips, residual_scale=0.3)
    config = representation.config
    hop = 7936  # 31 STFT hops, about half a clip
    cut = np.stack(list(clip_stream([np.concatenate(list(clips[:3]))], config.clip_samples, hop)))
    real, hop_frames = 1 + config.clip_samples // config.hop_length, hop // config.hop_length
    weights = clip_weights(real, real - hop_frames)
    span = span_spectrogram(representation, cut, hop)
    assert span.shape == (config.frequency_bins, (len(cut) - 1) * hop_frames + real)
    own = representation.forward(cut)
    edge = config.n_fft // 2 // config.hop_length + 1  # frames whose STFT window sees the clip's own samples only
    assert np.allclose(span[:, hop_frames + edge : hop_frames + real - edge], own[1][:, edge : real - edge], atol=1e-5)

    size, share = 4, 1.0 if codec.shrinkage is None else codec.shrinkage.decoder_share(4)
    plain = codec.encode_spectrograms(own, size=size)
    reference_db = LogMelReference(representation, span[None]).reference_db[0]
    floor = float(reference_db.max()) - 80.0

    def measured(latents: np.ndarray) -> tuple[float, float]:
        distance, disagreement = codec.refinement.span_terms(
            tf.constant(latents[:, :size]),
            tf.constant(share, tf.float32),
            tf.constant(np.maximum(reference_db, floor)),
            tf.constant(floor, tf.float32),
            tf.constant(weights),
            hop_frames,
        )
        return float(distance), float(disagreement)

    # The objective's distance is the lab's log-mel distance of the cross-faded spectrogram decode_stream builds.
    decoded = codec.decode_spectrograms(plain, size=size)[..., :real]
    summed, weight = np.zeros_like(span), np.zeros(span.shape[1], np.float32)
    for index, spectrogram in enumerate(decoded):
        summed[:, index * hop_frames : index * hop_frames + real] += weights * spectrogram
        weight[index * hop_frames : index * hop_frames + real] += weights
    expected = LogMelReference(representation, span[None]).distances((summed / weight)[None])[0]
    assert abs(measured(plain)[0] - expected) < 2e-3

    searched = codec.refine_span(span, plain, size=size, refine_steps=10, hop=hop_frames, weights=weights)
    assert not searched[:, size:].any()
    before, after = measured(plain), measured(searched)
    assert after[0] < before[0] - 0.05  # the span decodes closer
    free, _, _ = codec.refinement.refine_span(
        plain, share, reference_db, weights, hop=hop_frames, size=size, steps=10, agreement=0.0
    )
    tight, _, _ = codec.refinement.refine_span(
        plain, share, reference_db, weights, hop=hop_frames, size=size, steps=10, agreement=2.0
    )
    assert measured(tight)[1] < measured(free)[1]  # the agreement term keeps neighbours closer where they overlap

    latents, samples = encode_stream(codec, [cut[0][:1000]], latent_size=size, clip_hop_samples=hop, refine_steps=3)
    assert latents.shape == (1, size) and samples == 1000 and np.isfinite(latents).all()  # one clip: no neighbours
    with pytest.raises(ValueError, match="projection"):
        encode_stream(PcaCodec(representation, basis), [cut[0]], latent_size=size, clip_hop_samples=hop, refine_steps=3)
