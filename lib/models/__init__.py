"""Models and training: the autoencoder (:mod:`~lib.models.autoencoder`), the VAE and the conditional
VAE, training with resume (:mod:`~lib.models.training`, :mod:`~lib.models.distribute`), priors,
latent operations, the judge, the clip codec (:mod:`~lib.models.codec`), the whole-recording codec
and its file format (:mod:`~lib.models.recording`, :mod:`~lib.models.container`) and the sequence
model over consecutive clips.

May import: :mod:`lib.core`, :mod:`lib.spectral`, :mod:`lib.data`.
"""
