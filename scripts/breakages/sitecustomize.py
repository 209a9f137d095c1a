"""Deliberate breakages, to see which checks fail (the check cells under nbval, and `make check`).

Python imports ``sitecustomize`` at start-up from the path, so with this folder on ``PYTHONPATH`` every
process (papermill's kernels too) patches the lab as ``LML_BREAK`` says; unset or ``none``: nothing.

* ``decoder_ignores_latents``: every LatentCodec decodes zeros instead of its latents;
* ``codec_returns_input``: the codec hands back the spectrogram it encoded;
* ``vae_prior_same_clip``: every prior sample (N(0, I) and the mixture) is the first one repeated;
* ``conditional_ignores_conditions``: the conditional decoder gets zeros for its conditions.

Usage (smoke, the check cells)::

    PYTHONPATH=$PWD:$PWD/scripts/breakages LML_BREAK=vae_prior_same_clip LML_SMOKE=1 \
        .venv/bin/python -m pytest --nbval-lax --nbval-kernel-name latent-music-lab notebooks/03_vae.ipynb

or a full notebook with ``python -m lib.lab.run_notebooks`` (trained models are reused), then ``make check``.
Work on a copy of ``outputs/``: a broken run writes its metrics (and notebook 01 its residual shares).
"""

import os

BREAK = os.environ.get("LML_BREAK", "")
if BREAK and BREAK != "none":
    import hashlib

    import numpy as np

    from lib.models import codec, conditional, priors, vae

    if BREAK == "decoder_ignores_latents":
        original = codec.LatentCodec.decode_spectrograms

        def decode_spectrograms(self, latents, *, size=None, **options):
            return original(self, np.zeros_like(np.asarray(latents, np.float32)), size=size, **options)

        codec.LatentCodec.decode_spectrograms = decode_spectrograms

    elif BREAK == "codec_returns_input":
        encode, decode = codec.LatentCodec.encode_spectrograms, codec.LatentCodec.decode_spectrograms
        stored = {}

        def key(latents):
            return hashlib.sha1(np.ascontiguousarray(np.asarray(latents, np.float32)).tobytes()).hexdigest()

        def encode_spectrograms(self, spectrograms, *, size=None, **options):
            latents = encode(self, spectrograms, size=size, **options)
            stored[key(latents)] = np.asarray(spectrograms, np.float32)
            return latents

        def decode_spectrograms(self, latents, *, size=None, **options):
            found = stored.get(key(latents))
            return found.copy() if found is not None else decode(self, latents, size=size, **options)

        codec.LatentCodec.encode_spectrograms = encode_spectrograms
        codec.LatentCodec.decode_spectrograms = decode_spectrograms

    elif BREAK == "vae_prior_same_clip":
        sample_prior, mixture_sample = vae.sample_prior, priors.MixturePrior.sample

        def same_prior(decoder, count, *, temperature=1.0, seed=0):
            latents, coefficients = sample_prior(decoder, count, temperature=temperature, seed=seed)
            return np.repeat(latents[:1], count, axis=0), np.repeat(coefficients[:1], count, axis=0)

        def same_mixture(self, count, *, temperature=1.0, seed=0):
            draws = mixture_sample(self, count, temperature=temperature, seed=seed)
            return np.repeat(draws[:1], count, axis=0)

        vae.sample_prior = same_prior
        priors.MixturePrior.sample = same_mixture

    elif BREAK == "conditional_ignores_conditions":
        decode_coefficients = conditional.ConditionalCodec.decode_coefficients

        def ignoring(self, latents, conditions):
            return decode_coefficients(self, latents, np.zeros_like(np.asarray(conditions, np.float32)))

        conditional.ConditionalCodec.decode_coefficients = ignoring
    else:
        raise SystemExit(f"unknown LML_BREAK={BREAK}")
