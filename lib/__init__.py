"""latent music lab: Keras models and audio utilities behind the notebooks.

Six layers, each a subpackage; a module imports from its own layer and the layers below it, never
from one above (``tests/test_imports.py`` checks this and that no import leads in a circle):

1. :mod:`lib.core`: paths, atomic files, error types, parallel maps. Imports nothing of the lab.
2. :mod:`lib.spectral`: the spectrogram representation, its inversion, the PCA basis, distances.
3. :mod:`lib.data`: audio files, the datasets (notes, genre collections and phrases, any folder).
4. :mod:`lib.models`: Keras models, their training, priors, codecs and the whole-recording codec.
5. :mod:`lib.measure`: what the stages are judged by beside the models: baselines, evaluations.
6. :mod:`lib.lab`: the front: plots, explorers, report, checks, the notebook runner, bench, ``lml``.
"""

__version__ = "0.1.0"

LAYERS = ("core", "spectral", "data", "models", "measure", "lab")  # lowest first: a layer imports only earlier ones
