"""The autoencoder: nested dropout, the encode/decode API, safe save/load, and resume after interruption."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from lib.models import training
from lib.models.autoencoder import (
    AutoencoderConfig,
    NestedDropout,
    build_autoencoder,
    loss_weighting,
    mel_bin_weights,
    truncate_latents,
)
from lib.models.codec import (
    CLIP_SHARES,
    DISTANCE_CHUNK,
    SMALL_SIZES_FOLDER,
    LatentCodec,
    LogMelReference,
    Shrinkage,
    calibrate_codec,
    calibrate_shrinkage,
    clip_distances_db,
    magnitude_distance_db,
    save_calibration,
)
from lib.models.training import TrainingConfig, fit_or_load, load_model, read_history, save_model
from lib.spectral.basis import SpectralBasis
from lib.spectral.metrics import log_mel_magnitude_distance_db
from lib.spectral.representation import SpectrogramRepresentation
from tests.conftest import harmonic_tone, linear_model

SMALL = AutoencoderConfig(basis_size=16, latent_dim=8, hidden_width=32, hidden_layers=1, nested_sizes=(2, 4, 8))


@pytest.fixture(scope="module")
def clips():
    return np.stack([harmonic_tone(frequency) for frequency in np.linspace(110, 440, 24)])


@pytest.fixture(scope="module")
def representation():
    return SpectrogramRepresentation(griffin_lim_iterations=4)


@pytest.fixture(scope="module")
def basis(clips, representation):
    return SpectralBasis.fit(representation.forward(clips), SMALL.basis_size)


def test_nested_dropout_keeps_a_prefix_in_training_only():
    layer = NestedDropout((2, 4, 8), seed=1)
    latents = np.ones((200, 8), dtype=np.float32)
    kept = np.asarray(layer(latents, training=True))
    lengths = kept.sum(axis=1)
    assert set(lengths.tolist()) == {2.0, 4.0, 8.0}  # every size drawn, nothing else
    for row, length in zip(kept, lengths):
        assert row[: int(length)].all() and not row[int(length) :].any()  # a prefix, then zeros
    assert np.array_equal(np.asarray(layer(latents, training=False)), latents)


def test_truncate_latents():
    latents = np.arange(8, dtype=np.float32)[None] + 1
    assert truncate_latents(latents, 3).tolist() == [[1, 2, 3, 0, 0, 0, 0, 0]]
    with pytest.raises(ValueError, match="size"):
        truncate_latents(latents, 9)


def test_basis_full_rank_is_exact_and_round_trips(tmp_path, clips, representation):
    spectrograms = representation.forward(clips[:6])
    basis = SpectralBasis.fit(spectrograms, 6)
    assert np.allclose(basis.reconstruct(spectrograms, 6), spectrograms, atol=1e-4)
    assert np.abs(basis.reconstruct(spectrograms, 1) - spectrograms).mean() > 1e-3
    basis.save(tmp_path / "basis")
    loaded = SpectralBasis.load(tmp_path / "basis")
    assert np.array_equal(loaded.components, basis.components) and loaded.shape == basis.shape


def test_codec_matches_a_hand_builtlinear_model(clips, representation, basis):
    rng = np.random.default_rng(0)
    encoder_kernel = rng.standard_normal((basis.size, 4))
    decoder_kernel = 0.1 * rng.standard_normal((4, basis.size))
    codec = LatentCodec(
        representation,
        basis,
        linear_model(basis.size, 4, encoder_kernel, "encoder"),
        linear_model(4, basis.size, decoder_kernel, "decoder"),
    )
    spectrograms = representation.forward(clips[:3])
    coefficients = (spectrograms.reshape(3, -1) - basis.mean) @ basis.components.T
    assert np.allclose(codec.encode_audio(clips[:3]), coefficients @ encoder_kernel, rtol=1e-4, atol=1e-4)
    latents = rng.standard_normal((3, 4)).astype(np.float32)
    # Keeping 2 numbers: only the first two rows of the decoder's matrix may matter.
    expected = np.clip(latents[:, :2] @ decoder_kernel[:2] @ basis.components + basis.mean, 0, 1)
    decoded = codec.decode_spectrograms(latents, size=2)
    assert decoded.shape == (3, 512, 64) and np.allclose(decoded, expected.reshape(3, 512, 64), atol=1e-5)
    audio = codec.decode_audio(latents)
    assert audio.shape == (3, 16_000) and np.all(np.isfinite(audio))
    with pytest.raises(ValueError, match="latents of shape"):
        codec.decode_spectrograms(latents[:, :3])


def test_save_and_load_in_safe_mode_gives_identical_outputs(tmp_path, basis):
    model = build_autoencoder(SMALL, np.ones(SMALL.basis_size, dtype=np.float32))
    inputs = np.random.default_rng(0).standard_normal((5, SMALL.basis_size)).astype(np.float32)
    path = save_model(model, tmp_path / "model.keras")
    reloaded = load_model(path)
    assert np.array_equal(model.predict(inputs, verbose=0), reloaded.predict(inputs, verbose=0))
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]  # no partial file left


def test_safe_mode_refuses_lambda_layers(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match=r"(?i)unsafe|safe_mode"):
        load_model(tmp_path / "lambda.keras")


class _Interrupt(keras.callbacks.Callback):
    """Simulates a run killed early in the epoch after ``after_epoch`` finished epochs."""

    def __init__(self, after_epoch: int) -> None:
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt("simulated interruption")


class _CountEpochs(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


class _StopBackups(keras.callbacks.Callback):
    """After epoch ``after``, no more backups: an interruption later finds a stale one."""

    def __init__(self, after: int, monkeypatch) -> None:
        super().__init__()
        self.after, self.monkeypatch = after, monkeypatch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after:
            self.monkeypatch.setattr(training, "BACKUP_SECONDS", float("inf"))


def test_interrupted_training_resumes_from_the_last_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "BACKUP_SECONDS", 0.0)  # a backup after every epoch
    rng = np.random.default_rng(0)
    train = rng.standard_normal((64, SMALL.basis_size)).astype(np.float32)
    valid = rng.standard_normal((16, SMALL.basis_size)).astype(np.float32)
    config = TrainingConfig(epochs=5, batch_size=16, patience=50)

    def build():
        return build_autoencoder(SMALL, np.ones(SMALL.basis_size, dtype=np.float32))

    arguments = {"run_folder": tmp_path / "run", "config": config, "settings": {"test": 1}, "verbose": 0}
    with pytest.raises(KeyboardInterrupt):
        fit_or_load(build, (train, train), (valid, valid), extra_callbacks=[_Interrupt(2)], **arguments)
    assert len(read_history(tmp_path / "run" / "history.csv")["loss"]) == 2
    counter = _CountEpochs()
    result = fit_or_load(build, (train, train), (valid, valid), extra_callbacks=[counter], **arguments)
    assert counter.epochs == [2, 3, 4]  # continued, not restarted
    assert len(result.history["loss"]) == 5 and not result.loaded_from_cache
    again = fit_or_load(build, (train, train), (valid, valid), **arguments)
    assert again.loaded_from_cache
    assert np.array_equal(again.model.predict(valid, verbose=0), result.model.predict(valid, verbose=0))
    changed = fit_or_load(build, (train, train), (valid, valid), **{**arguments, "settings": {"test": 2}})
    assert not changed.loaded_from_cache and len(changed.history["loss"]) == 5  # new settings: fresh run


class _RecordBatches(keras.callbacks.Callback):
    """Remembers the first training batch's loss of every epoch: a fingerprint of the batch order."""

    def __init__(self) -> None:
        super().__init__()
        self.first: dict[int, float] = {}
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self.first[self.epoch] = float(logs["loss"])


def test_the_best_weights_go_to_disk_once_per_improvement(tmp_path):
    from lib.models.training import BEST_WEIGHTS, _ValidationWatch

    watch = _ValidationWatch(tmp_path, patience=5, plateau_patience=None, warmup_epochs=0)
    watch.set_model(linear_model(2, 2, np.eye(2), "tiny"))
    watch.model.compile(optimizer="adam", loss="mse")
    watch.on_train_begin()
    watch.keep_on_disk()
    assert not (tmp_path / BEST_WEIGHTS).exists()  # nothing better yet: nothing written
    watch.on_epoch_end(0, {"val_loss": 1.0})
    watch.keep_on_disk()
    assert (tmp_path / BEST_WEIGHTS).exists()
    (tmp_path / BEST_WEIGHTS).unlink()
    watch.on_epoch_end(1, {"val_loss": 2.0})  # worse: the file on disk still holds the best
    watch.keep_on_disk()
    assert not (tmp_path / BEST_WEIGHTS).exists()
    watch.on_epoch_end(2, {"val_loss": 0.5})
    watch.keep_on_disk()
    with np.load(tmp_path / BEST_WEIGHTS) as saved:
        assert np.array_equal(saved["arr_0"], np.eye(2))


@pytest.mark.parametrize("backups", ["every epoch", "stale", "none"])
def test_killed_and_resumed_training_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, monkeypatch, backups):
    monkeypatch.setattr(training, "BACKUP_SECONDS", float("inf") if backups == "none" else 0.0)
    rng = np.random.default_rng(3)
    train = rng.standard_normal((96, SMALL.basis_size)).astype(np.float32)
    valid = rng.standard_normal((16, SMALL.basis_size)).astype(np.float32)
    unrelated = rng.standard_normal((16, SMALL.basis_size)).astype(np.float32)
    # Validation targets unrelated to the inputs: the validation loss wanders, so a best epoch
    # before the end, learning-rate halvings and early stopping all happen within a few epochs.
    config = TrainingConfig(epochs=14, batch_size=16, patience=4, learning_rate=3e-3)

    def build():
        return build_autoencoder(SMALL, np.ones(SMALL.basis_size, dtype=np.float32), seed=1)

    def run(folder, callbacks):
        return fit_or_load(
            build, (train, train), (valid, unrelated), run_folder=folder, config=config, settings={"t": 1},
            extra_callbacks=callbacks, verbose=0,
        )  # fmt: skip

    straight = run(tmp_path / "straight", [])
    history = straight.history["val_loss"]
    best_epoch = int(np.argmin(history))
    assert best_epoch < len(history) - 1, "the test needs a run whose last epoch is not its best"
    kill_at = best_epoch + 1  # interrupted after the best epoch: the best weights must survive
    stop = [_StopBackups(1, monkeypatch)] if backups == "stale" else []  # the backup of epoch 1 only
    assert backups != "stale" or kill_at > 2, "the test needs epochs after the stale backup"
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", [*stop, _Interrupt(kill_at)])
    assert (
        training.backed_up_epochs(tmp_path / "resumed")
        == {"every epoch": kill_at, "stale": min(2, kill_at), "none": 0}[backups]
    )
    resumed = run(tmp_path / "resumed", [])
    assert resumed.history["val_loss"] == pytest.approx(history, rel=1e-6)
    assert resumed.history["learning_rate"] == pytest.approx(straight.history["learning_rate"])
    for mine, theirs in zip(resumed.model.get_weights(), straight.model.get_weights()):
        assert np.array_equal(mine, theirs)
    assert resumed.model.evaluate(valid, unrelated, verbose=0) == pytest.approx(min(history), rel=1e-5)


def _linear_path_codec(representation, basis, clips, *, residual_scale: float = 0.0, seed: int = 0) -> LatentCodec:
    """A SMALL autoencoder with a linear path; ``residual_scale`` > 0 fills its residual layers with noise."""
    std = basis.transform(representation.forward(clips)).std(axis=0)
    model = build_autoencoder(SMALL, std)
    rng = np.random.default_rng(seed)
    for sub in ("encoder", "decoder"):
        for layer in model.get_layer(sub).layers:
            if layer.name.endswith("_residual") and residual_scale:
                layer.set_weights(
                    [residual_scale * rng.standard_normal(w.shape).astype(np.float32) for w in layer.get_weights()]
                )
    return LatentCodec(representation, basis, model.get_layer("encoder"), model.get_layer("decoder"))


def test_untrained_linear_path_autoencoder_is_pca_at_every_size(clips, representation, basis):
    codec = _linear_path_codec(representation, basis, clips)
    assert codec.has_linear_path
    spectrograms = representation.forward(clips[:5])
    latents = codec.encode_spectrograms(spectrograms)
    for size in SMALL.nested_sizes:
        assert np.allclose(
            codec.decode_spectrograms(latents, size=size), basis.reconstruct(spectrograms, size), atol=1e-5
        ), size


def test_linear_path_stays_fixed_and_reloads_identically(tmp_path, clips, representation, basis):
    codec = _linear_path_codec(representation, basis, clips, residual_scale=0.1)
    encoder = codec.encoder
    assert not encoder.get_layer("latent_linear").trainable
    assert np.array_equal(
        encoder.get_layer("latent_linear").get_weights()[0], np.eye(SMALL.basis_size, SMALL.latent_dim)
    )
    model = keras.Model(encoder.inputs, codec.decoder(encoder(encoder.inputs)))
    inputs = np.random.default_rng(1).standard_normal((5, SMALL.basis_size)).astype(np.float32)
    reloaded = load_model(save_model(model, tmp_path / "model.keras"))
    assert np.array_equal(model.predict(inputs, verbose=0), reloaded.predict(inputs, verbose=0))
    assert np.abs(model.predict(inputs, verbose=0) - inputs).max() > 1e-3  # the residuals do act


def test_a_kept_reference_measures_as_the_whole_stack_does_bit_for_bit(representation):
    # More clips than one chunk, and a last chunk cut short: chunks on several threads change nothing.
    clips = np.stack([harmonic_tone(frequency) for frequency in np.linspace(100, 900, 2 * DISTANCE_CHUNK + 3)])
    spectrograms = representation.forward(clips)
    reference = LogMelReference(representation, spectrograms)
    config = representation.config
    for estimate in (np.roll(spectrograms, 3, axis=-1), 0.8 * spectrograms, spectrograms[::-1]):
        whole = log_mel_magnitude_distance_db(
            representation.denormalise(spectrograms),
            representation.denormalise(estimate),
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
        )
        assert np.array_equal(reference.distances(estimate), whole)  # the same reference, reused
        assert np.array_equal(clip_distances_db(representation, spectrograms, estimate), whole)
        assert magnitude_distance_db(representation, reference, estimate) == float(np.mean(whole))
    assert np.all(reference.distances(spectrograms) == 0.0)
    with pytest.raises(ValueError, match="reference clips"):
        reference.distances(spectrograms[:-1])
    with pytest.raises(ValueError, match="shape \\(n, bins, frames\\)"):
        LogMelReference(representation, spectrograms[0])


def test_calibrated_codec_cannot_lose_to_pca(tmp_path, clips, representation, basis):
    # Residuals of pure noise can only hurt: calibration must fall back to PCA at every size.
    codec = _linear_path_codec(representation, basis, clips, residual_scale=0.5)
    spectrograms = representation.forward(clips[::2])
    shrinkage = calibrate_shrinkage(codec, spectrograms, SMALL.nested_sizes, calibrated_on="test clips")
    for size, row in shrinkage.distances.items():
        assert row["chosen"] <= row["pca"] + 1e-4 and row["full_model"] > row["pca"], (size, row)
    codec.shrinkage = shrinkage
    for size in SMALL.nested_sizes:
        decoded = codec.decode_spectrograms(codec.encode_spectrograms(spectrograms, size=size), size=size)
        assert magnitude_distance_db(representation, spectrograms, decoded) == pytest.approx(
            shrinkage.distances[size]["chosen"], abs=1e-4
        )
    # Stored beside the model, the calibration comes back with it.
    shrinkage.save(tmp_path / "shrinkage.json")
    assert Shrinkage.load(tmp_path / "shrinkage.json") == shrinkage
    assert shrinkage.decoder_share(3) == shrinkage.decoder[4] and shrinkage.decoder_share(99) == shrinkage.decoder[8]
    assert shrinkage.encoder_share(3) == shrinkage.encoder[4] and shrinkage.encoder_share(99) == shrinkage.encoder[8]


def test_choosing_per_clip_codes_no_clip_worse_than_pca(clips, representation, basis):
    # Noise residuals hurt most clips: coded per clip, each takes the share that serves it, PCA at worst.
    codec = _linear_path_codec(representation, basis, clips, residual_scale=0.3)
    spectrograms = representation.forward(clips)
    for size in SMALL.nested_sizes:
        latents, choices = codec.encode_choosing(spectrograms, size=size, batch_size=5)
        assert latents.shape == (len(clips), SMALL.latent_dim) and not latents[:, size:].any()
        assert choices.dtype == np.int8 and set(choices.tolist()) <= set(range(len(CLIP_SHARES)))
        chosen = clip_distances_db(
            representation, spectrograms, codec.decode_spectrograms(latents, size=size, choices=choices)
        )
        pca = clip_distances_db(representation, spectrograms, basis.reconstruct(spectrograms, size))
        assert np.all(chosen <= pca + 1e-4), size
        full_latents = codec.encode_spectrograms(spectrograms)
        full = clip_distances_db(representation, spectrograms, codec.decode_spectrograms(full_latents, size=size))
        assert np.all(chosen <= full + 1e-4), size
        # Share 1 for every clip is the trained model as it stands.
        everywhere_full = np.full(len(clips), CLIP_SHARES.index(1.0))
        assert np.allclose(
            codec.decode_spectrograms(full_latents, size=size, choices=everywhere_full),
            codec.decode_spectrograms(full_latents, size=size),
            atol=1e-6,
        )


def test_each_size_encodes_with_its_own_share(tmp_path, clips, representation, basis):
    codec = _linear_path_codec(representation, basis, clips, residual_scale=0.5)
    spectrograms = representation.forward(clips[:4])
    full = codec.encode_spectrograms(spectrograms)
    linear = codec.linear_latents(basis.transform(spectrograms))
    codec.shrinkage = Shrinkage(encoder={4: 1.0, 8: 0.25}, decoder={4: 1.0, 8: 0.5})
    assert np.allclose(codec.encode_spectrograms(spectrograms, size=4), full, atol=1e-6)
    assert np.allclose(codec.encode_spectrograms(spectrograms), linear + 0.25 * (full - linear), atol=1e-5)
    # A calibration written before the shares were per size (one encoder share) serves every size.
    path = tmp_path / "old.json"
    path.write_text('{"encoder": 0.5, "decoder": {"4": 1.0, "8": 0.75}, "calibrated_on": "x", "distances": {}}')
    assert Shrinkage.load(path).encoder == {4: 0.5, 8: 0.5}


def _small_sizes_codec(representation, basis, clips) -> LatentCodec:
    """A SMALL codec (sizes 2, 4, 8) whose sizes 2 and 4 go to a model of their own (other noise residuals)."""
    codec = _linear_path_codec(representation, basis, clips, residual_scale=0.3, seed=1)
    small_config = dataclasses.replace(SMALL, latent_dim=4, nested_sizes=(2, 4))
    std = basis.transform(representation.forward(clips)).std(axis=0)
    small = build_autoencoder(small_config, std)
    rng = np.random.default_rng(2)
    for sub in ("encoder", "decoder"):
        for layer in small.get_layer(sub).layers:
            if layer.name.endswith("_residual"):
                layer.set_weights([0.3 * rng.standard_normal(w.shape).astype(np.float32) for w in layer.get_weights()])
    codec.attach_small(LatentCodec(representation, basis, small.get_layer("encoder"), small.get_layer("decoder")))
    return codec


def test_the_smallest_sizes_go_to_their_own_model(clips, representation, basis):
    codec = _small_sizes_codec(representation, basis, clips)
    spectrograms = representation.forward(clips[:5])
    assert codec.serving(2) is codec.small and codec.serving(4) is codec.small
    assert codec.serving(8) is codec and codec.serving(None) is codec
    for size in (2, 4):
        latents = codec.encode_spectrograms(spectrograms, size=size)
        own = codec.small.encode_spectrograms(spectrograms, size=size)
        assert latents.shape == (5, SMALL.latent_dim) and not latents[:, 4:].any()
        assert np.array_equal(latents[:, :4], own)
        decoded = codec.decode_spectrograms(latents, size=size)
        assert np.allclose(decoded, codec.small.decode_spectrograms(own, size=size), atol=1e-6)
        # Not a prefix of the shared latent: the shared model would decode these clips otherwise.
        shared = truncate_latents(codec.encode_spectrograms(spectrograms), size)
        assert not np.allclose(latents, shared, atol=1e-3)
        chosen, choices = codec.encode_choosing(spectrograms, size=size)
        own_chosen, own_choices = codec.small.encode_choosing(spectrograms, size=size)
        assert np.array_equal(chosen[:, :4], own_chosen) and np.array_equal(choices, own_choices)
    # The shared model still codes the larger sizes, and the whole latent.
    full = codec.encode_spectrograms(spectrograms)
    assert np.array_equal(codec.encode_spectrograms(spectrograms, size=8), full)
    with pytest.raises(ValueError, match="below 8 numbers"):
        codec.attach_small(codec)
    other_basis = SpectralBasis.fit(representation.forward(clips[1:]), SMALL.basis_size)
    with pytest.raises(ValueError, match="same basis"):
        codec.attach_small(LatentCodec(representation, other_basis, codec.small.encoder, codec.small.decoder))


def test_each_model_is_calibrated_on_its_sizes_and_reloads_with_its_run(tmp_path, clips, representation, basis):
    codec = _small_sizes_codec(representation, basis, clips)
    spectrograms = representation.forward(clips[::2])
    merged = calibrate_codec(codec, spectrograms, (2, 4, 8), calibrated_on="test clips")
    assert sorted(codec.small.shrinkage.distances) == [2, 4] and sorted(codec.shrinkage.distances) == [8]
    assert (
        list(merged.distances) == [2, 4, 8]
        and list(merged.encoder) == [2, 4, 8]
        and merged.calibrated_on == "test clips"
    )
    assert merged.distances[2] == codec.small.shrinkage.distances[2]
    for size in (2, 4, 8):  # each size's codec, as calibrated, is no worse than PCA there
        decoded = codec.decode_spectrograms(codec.encode_spectrograms(spectrograms, size=size), size=size)
        assert magnitude_distance_db(representation, spectrograms, decoded) <= merged.distances[size]["pca"] + 1e-4
    run = tmp_path / "run"
    basis.save(run / "basis")
    for folder, part in ((run, codec), (run / SMALL_SIZES_FOLDER, codec.small)):
        save_model(
            keras.Model(part.encoder.inputs, part.decoder(part.encoder(part.encoder.inputs))), folder / "x.keras"
        )
    save_calibration(codec, run)
    reloaded = LatentCodec.load(run, representation, model_name="x.keras")
    assert reloaded.small is not None and reloaded.small.shrinkage == codec.small.shrinkage
    for size in (2, 8):
        assert np.allclose(
            reloaded.decode_spectrograms(reloaded.encode_spectrograms(spectrograms, size=size), size=size),
            codec.decode_spectrograms(codec.encode_spectrograms(spectrograms, size=size), size=size),
            atol=1e-5,
        )


def test_calibration_keeps_residuals_that_help(tmp_path, clips, representation, basis):
    spectrograms = representation.forward(clips)
    coefficients = basis.transform(spectrograms)
    config = dataclasses.replace(SMALL, latent_dim=2, nested_sizes=(2,), hidden_width=64)
    result = fit_or_load(
        lambda: build_autoencoder(config, coefficients.std(axis=0)),
        (coefficients, coefficients),
        (coefficients, coefficients),
        run_folder=tmp_path / "run",
        config=TrainingConfig(epochs=150, batch_size=8, patience=150, learning_rate=3e-3),
        settings={"test": "helps"},
    )
    codec = LatentCodec(representation, basis, result.model.get_layer("encoder"), result.model.get_layer("decoder"))
    shrinkage = calibrate_shrinkage(codec, spectrograms, (2,))
    row = shrinkage.distances[2]
    assert row["full_model"] < row["pca"] - 0.5  # training helped on the clips it saw...
    assert shrinkage.decoder[2] > 0 and row["chosen"] <= row["full_model"]  # ...and calibration keeps it


def test_cosine_schedule_lowers_the_rate_to_its_floor(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((64, SMALL.basis_size)).astype(np.float32)
    config = TrainingConfig(epochs=4, batch_size=16, patience=50, learning_rate=1e-3, schedule="cosine")
    result = fit_or_load(
        lambda: build_autoencoder(SMALL, np.ones(SMALL.basis_size, dtype=np.float32)),
        (data, data),
        (data, data),
        run_folder=tmp_path / "run",
        config=config,
        settings={"test": "cosine"},
    )
    rates = result.history["learning_rate"]
    assert rates == sorted(rates, reverse=True) and rates[0] < 1e-3 and rates[-1] == pytest.approx(2e-5, rel=0.05)
    with pytest.raises(ValueError, match="schedule"):
        TrainingConfig(schedule="linear")


class _SeeCompiler(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.xla = self.model.jit_compile


def test_xla_compiles_large_dense_networks_only_and_the_finished_model_predicts_as_a_loaded_one(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((48, SMALL.basis_size)).astype(np.float32)
    dense = build_autoencoder(SMALL, np.ones(SMALL.basis_size, dtype=np.float32))
    assert not training.xla_pays(dense)  # a small network steps slower under XLA on a CPU
    monkeypatch.setattr(training, "XLA_LEAST_WEIGHTS", 1)
    assert training.xla_pays(dense)
    inputs = keras.Input(shape=(8, 4))
    convolutional = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Conv1D(4, 3)(inputs)))
    recurrent = keras.Model(inputs, keras.layers.GRU(4)(inputs))
    assert not training.xla_pays(convolutional) and not training.xla_pays(recurrent)

    def train(config: TrainingConfig, name: str):
        seen = _SeeCompiler()
        result = fit_or_load(
            lambda: build_autoencoder(SMALL, np.ones(SMALL.basis_size, dtype=np.float32)),
            (data, data),
            (data, data),
            run_folder=tmp_path / name,
            config=config,
            settings={"test": "xla"},
            extra_callbacks=[seen],
        )
        return result, seen.xla

    compiled, xla = train(TrainingConfig(epochs=2, batch_size=16), "xla")
    assert xla and not compiled.model.jit_compile  # trained under XLA, predicts as an uncompiled model
    loaded = fit_or_load(
        lambda: None,
        (data, data),
        (data, data),
        run_folder=tmp_path / "xla",
        config=TrainingConfig(epochs=2, batch_size=16),
        settings={"test": "xla"},
    )
    assert loaded.loaded_from_cache
    np.testing.assert_array_equal(loaded.model.predict(data, verbose=0), compiled.model.predict(data, verbose=0))
    _, xla = train(TrainingConfig(epochs=1, batch_size=16, jit_compile=False), "graph")
    assert not xla


def test_convergence_verdict():
    from lib.measure.evaluation import convergence

    assert convergence([1.0, 0.5, 0.4, 0.399, 0.3995] + [0.399] * 5)["converged"]
    falling = convergence(np.linspace(1.0, 0.5, 20))
    assert not falling["converged"] and falling["window_epochs"] == 4 and falling["last_window_gain"] > 0.1


def test_loss_weighting_gives_the_bin_weighted_spectrogram_error(tmp_path, basis):
    weights = mel_bin_weights(16_000, 1024, 512)
    assert weights.shape == (512,) and weights.mean() == pytest.approx(1.0, rel=1e-5)
    assert weights[5:40].mean() > 5 * weights[300:].mean()  # low bins count far more in a mel distance
    weighting = loss_weighting(basis.components, weights, 64)
    errors = np.random.default_rng(2).standard_normal((3, basis.size)).astype(np.float32)
    spectrogram_errors = errors @ basis.components
    expected = (spectrogram_errors**2 * np.repeat(weights, 64)).sum(axis=1)
    assert np.allclose(((errors @ weighting) ** 2).sum(axis=1), expected, rtol=1e-3)
    model = build_autoencoder(SMALL, np.ones(SMALL.basis_size, np.float32), loss_weighting=weighting)
    assert np.array_equal(model.get_layer("loss_weighting").get_weights()[0], weighting)
    inputs = np.random.default_rng(3).standard_normal((4, SMALL.basis_size)).astype(np.float32)
    reloaded = load_model(save_model(model, tmp_path / "weighted.keras"))
    assert np.array_equal(model.predict(inputs, verbose=0), reloaded.predict(inputs, verbose=0))
    with pytest.raises(ValueError, match="loss_weighting"):
        build_autoencoder(SMALL, np.ones(SMALL.basis_size, np.float32), loss_weighting=weighting[:4])
