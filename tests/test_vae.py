"""The VAE: sampling layer, KL against its closed form, save/load in safe mode, prior sampling."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from lib.models import vae
from lib.models.training import TrainingConfig, fit_or_load, load_model, save_model

SMALL = vae.VAEConfig(basis_size=12, latent_dim=4, hidden_width=16, hidden_layers=1)
STD = np.ones(SMALL.basis_size, dtype=np.float32)


def test_sampling_layer_draws_from_the_posterior():
    layer = vae.Sampling(seed=3)
    mean = np.full((20000, 2), [1.0, -2.0], dtype=np.float32)
    log_variance = np.full((20000, 2), [0.0, np.log(0.25)], dtype=np.float32)
    draws = np.asarray(layer([mean, log_variance]))
    assert draws.mean(axis=0) == pytest.approx([1.0, -2.0], abs=0.03)
    assert draws.std(axis=0) == pytest.approx([1.0, 0.5], abs=0.03)
    config = vae.Sampling.from_config(layer.get_config())
    assert config.seed == 3


def test_kl_matches_the_closed_form():
    mean = np.array([[0.0, 1.0, -0.5]], dtype=np.float32)
    variance = np.array([[1.0, 0.5, 2.0]], dtype=np.float32)
    expected = 0.5 * (variance + mean**2 - 1 - np.log(variance))
    computed = np.asarray(vae.kl_per_dimension(ops.convert_to_tensor(mean), ops.convert_to_tensor(np.log(variance))))
    assert computed == pytest.approx(expected, abs=1e-6)
    assert computed[0, 0] == pytest.approx(0.0, abs=1e-7)  # the prior itself costs nothing


def _fixed_posterior(config: vae.VAEConfig, mean_value: float) -> vae.VAE:
    """A VAE whose encoder always says N(mean_value, 1) for every dimension: a known KL."""
    model = vae.build_vae(config, np.ones(config.basis_size, dtype=np.float32))
    for name, bias in (("mean", mean_value), ("log_variance", 0.0)):
        layer = model.encoder.get_layer(name)
        kernel, _ = layer.get_weights()
        layer.set_weights([np.zeros_like(kernel), np.full(config.latent_dim, bias, dtype=np.float32)])
    return model


@pytest.mark.parametrize(("mean_value", "charged_per_dimension"), [(0.0, 0.25), (0.5, 0.25), (2.0, 2.0)])
def test_free_bits_clamp_the_charged_kl(mean_value, charged_per_dimension):
    # KL per dimension is mean^2 / 2: 0, 0.125 (below the 0.25 free bits: charged 0.25) and 2.0 (charged as is).
    model = _fixed_posterior(SMALL, mean_value)
    coefficients = np.random.default_rng(0).standard_normal((8, SMALL.basis_size)).astype(np.float32)
    total, reconstruction, kl = (float(x) for x in model.compute_losses(coefficients, training=False))
    assert kl == pytest.approx(SMALL.latent_dim * mean_value**2 / 2, abs=1e-5)
    assert total - reconstruction == pytest.approx(SMALL.latent_dim * charged_per_dimension, abs=1e-4)


def test_save_and_load_in_safe_mode(tmp_path):
    # Non-default loss settings, so a reload that fell back to the constructor defaults would show.
    config = vae.VAEConfig(**{**SMALL.to_dict(), "beta": 0.7, "free_bits": 0.05, "reconstruction_scale": 4.0})
    model = vae.build_vae(config, STD)
    coefficients = np.random.default_rng(1).standard_normal((5, SMALL.basis_size)).astype(np.float32)
    reloaded = load_model(save_model(model, tmp_path / "vae.keras"))
    assert isinstance(reloaded, vae.VAE)
    assert (reloaded.target_beta, reloaded.free_bits, reloaded.reconstruction_scale) == (0.7, 0.05, 4.0)
    assert [float(x) for x in reloaded.compute_losses(coefficients, training=False)] == pytest.approx(
        [float(x) for x in model.compute_losses(coefficients, training=False)], rel=1e-6
    )
    assert np.array_equal(model.predict(coefficients, verbose=0), reloaded.predict(coefficients, verbose=0))
    assert np.array_equal(
        model.encoder.predict(coefficients, verbose=0)[0], reloaded.encoder.predict(coefficients, verbose=0)[0]
    )


def test_training_with_warmup_logs_kl_beta_and_active_units(tmp_path):
    rng = np.random.default_rng(2)
    train = rng.standard_normal((64, SMALL.basis_size)).astype(np.float32)
    valid = rng.standard_normal((16, SMALL.basis_size)).astype(np.float32)
    result = fit_or_load(
        lambda: vae.build_vae(SMALL, STD),
        train,
        valid,
        run_folder=tmp_path / "run",
        config=TrainingConfig(epochs=3, batch_size=16, patience=10),
        settings={"vae": 1},
        loss=None,
        extra_callbacks=[vae.KLWarmup(2), vae.ActiveUnitsLogger(valid)],
        verbose=0,
    )
    assert result.history["beta"] == pytest.approx([0.0, 0.5, 1.0])
    assert {"loss", "reconstruction_loss", "kl_loss", "val_loss", "active_units"} <= set(result.history)
    assert all(0 <= units <= SMALL.latent_dim for units in result.history["active_units"])


def test_active_units_counts_varying_dimensions():
    means = np.zeros((100, 4))
    means[:, 1] = np.linspace(-1, 1, 100)
    assert vae.active_units(means) == 1


def test_prior_sampling_and_traversal():
    model = vae.build_vae(SMALL, STD)
    latents, coefficients = vae.sample_prior(model.decoder, 6, temperature=0.0)
    assert np.all(latents == 0) and coefficients.shape == (6, SMALL.basis_size)
    hot, _ = vae.sample_prior(model.decoder, 2000, temperature=2.0, seed=1)
    assert hot.std() == pytest.approx(2.0, rel=0.05)
    steps = vae.traversal(np.zeros(4), 2, np.array([-1.0, 0.0, 1.0]))
    assert steps[:, 2].tolist() == [-1.0, 0.0, 1.0] and not steps[:, [0, 1, 3]].any()
    with pytest.raises(ValueError, match="temperature"):
        vae.sample_prior(model.decoder, 1, temperature=-1.0)
