"""The conditional VAE: condition vectors, swapping, conditioning that matters, safe-mode reload, codec."""

from __future__ import annotations

import numpy as np
import pytest

from lib.models import conditional
from lib.models.training import TrainingConfig, fit_or_load, load_model, save_model
from lib.models.vae import VAEConfig
from lib.spectral.basis import SpectralBasis
from lib.spectral.representation import SpectrogramRepresentation

SPACE = conditional.ConditionSpace(pitches=(60, 61, 62, 72), families=("brass", "flute", "string"))
SMALL = VAEConfig(basis_size=12, latent_dim=4, hidden_width=16, hidden_layers=1)
STD = np.ones(SMALL.basis_size, dtype=np.float32)


def test_condition_vectors_encode_each_label():
    conditions = SPACE.encode([60, 72], [127, 63.5], ["flute", "string"])
    assert conditions.shape == (2, SPACE.size) == (2, 4 + 3 + 1)
    assert conditions[0].tolist() == [1, 0, 0, 0, 0, 1, 0, 1.0]
    assert conditions[1, :4].tolist() == [0, 0, 0, 1] and conditions[1, 4:7].tolist() == [0, 0, 1]
    assert conditions[1, -1] == pytest.approx(0.5)
    blend = SPACE.encode([61], [80], np.array([[1.0, 3.0, 0.0]]))
    assert blend[0, 4:7] == pytest.approx([0.25, 0.75, 0.0])


@pytest.mark.parametrize(
    ("pitch", "velocity", "family", "message"),
    [
        ([59], [80], ["brass"], "outside the model's range"),
        ([60], [0], ["brass"], "velocities"),
        ([60], [80], ["piano"], "unknown family"),
        ([60, 61], [80], ["brass"], "one pitch, velocity and family"),
        ([60], [80], np.array([[0.0, 0.0, 0.0]]), "family weights"),
    ],
)
def test_bad_requests_are_refused(pitch, velocity, family, message):
    with pytest.raises(ValueError, match=message):
        SPACE.encode(pitch, velocity, family)


def test_swap_changes_only_the_named_label():
    original = SPACE.encode([60, 61], [45, 115], ["brass", "flute"])
    up = conditional.swap_conditions(original, SPACE, pitch=[72, 62])
    assert np.array_equal(up[:, 4:], original[:, 4:]) and up[0, 3] == 1 and up[1, 2] == 1
    swapped = conditional.swap_conditions(original, SPACE, family="string")
    assert np.array_equal(swapped[:, :4], original[:, :4]) and np.array_equal(swapped[:, -1], original[:, -1])
    assert swapped[:, 6].tolist() == [1, 1]
    louder = conditional.swap_conditions(original, SPACE, velocity=127)
    assert louder[:, -1] == pytest.approx([1.0, 1.0]) and np.array_equal(louder[:, :-1], original[:, :-1])


def _inputs(count: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    coefficients = rng.standard_normal((count, SMALL.basis_size)).astype(np.float32)
    conditions = SPACE.encode(
        rng.choice(SPACE.pitches, count), rng.integers(30, 127, count), rng.choice(SPACE.families, count)
    )
    return conditional.model_inputs(coefficients, conditions)


def test_decoder_depends_on_the_conditions():
    model = conditional.build_conditional_vae(SMALL, SPACE, STD, seed=1)
    latents = np.zeros((3, SMALL.latent_dim), dtype=np.float32)
    conditions = SPACE.encode([60, 60, 60], [80, 80, 80], ["brass", "flute", "brass"])
    outputs = model.decoder.predict({"latent": latents, "conditions": conditions}, verbose=0)
    assert np.allclose(outputs[0], outputs[2]) and not np.allclose(outputs[0], outputs[1])


def test_safe_mode_reload_gives_identical_outputs_and_settings(tmp_path):
    config = VAEConfig(**{**SMALL.to_dict(), "beta": 0.5, "free_bits": 0.1, "reconstruction_scale": 3.0})
    model = conditional.build_conditional_vae(config, SPACE, STD, seed=2)
    inputs = _inputs(5)
    reloaded = load_model(save_model(model, tmp_path / "cvae.keras"))
    assert isinstance(reloaded, conditional.ConditionalVAE)
    assert (reloaded.target_beta, reloaded.free_bits, reloaded.reconstruction_scale) == (0.5, 0.1, 3.0)
    assert np.array_equal(model.predict(inputs, verbose=0), reloaded.predict(inputs, verbose=0))
    assert np.array_equal(model.encoder.predict(inputs, verbose=0)[0], reloaded.encoder.predict(inputs, verbose=0)[0])


def test_training_on_conditions_lowers_the_loss(tmp_path):
    train, valid = _inputs(128, seed=3), _inputs(32, seed=4)
    result = fit_or_load(
        lambda: conditional.build_conditional_vae(SMALL, SPACE, STD),
        train,
        valid,
        run_folder=tmp_path / "run",
        config=TrainingConfig(epochs=6, batch_size=32, patience=10, learning_rate=3e-3),
        settings={"cvae": 1},
        loss=None,
        verbose=0,
    )
    assert result.history["reconstruction_loss"][-1] < result.history["reconstruction_loss"][0]
    assert len(result.history["val_loss"]) == 6


def test_codec_round_trip_through_its_run_folder(tmp_path):
    representation = SpectrogramRepresentation()
    rng = np.random.default_rng(5)
    spectrograms = rng.random((20, *representation.shape)).astype(np.float32)
    basis = SpectralBasis.fit(spectrograms, SMALL.basis_size)
    basis.save(tmp_path / "autoencoder" / "basis")
    model = conditional.build_conditional_vae(SMALL, SPACE, STD)
    run_folder = tmp_path / "cvae"
    save_model(model, run_folder / "model.keras")
    codec = conditional.ConditionalCodec(model, SPACE, representation, basis)
    codec.save_description(run_folder, tmp_path / "autoencoder" / "basis")
    loaded = conditional.ConditionalCodec.load(run_folder, representation)
    conditions = SPACE.encode([60, 72], [80, 80], ["brass", "string"])
    latents = codec.encode_spectrograms(spectrograms[:2], conditions)
    assert latents.shape == (2, SMALL.latent_dim)
    assert np.allclose(loaded.encode_spectrograms(spectrograms[:2], conditions), latents)
    decoded = loaded.decode_spectrograms(latents, conditions)
    assert decoded.shape == (2, *representation.shape) and loaded.space == SPACE
    with pytest.raises(ValueError, match="condition rows"):
        loaded.decode_coefficients(latents, conditions[:1])
