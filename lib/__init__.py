"""latent music lab: Keras models and audio utilities behind the notebooks."""

__version__ = "0.1.0"
