"""Spectra: the spectrogram representation every model sees (:mod:`~lib.spectral.representation`),
its way back to audio (:mod:`~lib.spectral.inversion`, fast Griffin-Lim), the PCA coordinates every
model works in (:mod:`~lib.spectral.basis`) and the distances every stage is measured by
(:mod:`~lib.spectral.metrics`).

May import: :mod:`lib.core`.
"""
