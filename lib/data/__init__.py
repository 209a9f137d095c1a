"""Audio and datasets: reading and writing audio with clear errors (:mod:`~lib.data.audio`), the
dataset protocol (:mod:`~lib.data.clips`), the notes (:mod:`~lib.data.dataset`, rendered by
:mod:`~lib.data.synth`), the genre collections and their phrases (:mod:`~lib.data.genres`,
:mod:`~lib.data.phrases`), any folder of music (:mod:`~lib.data.collection`, its files decoded by
:mod:`~lib.data.decoding` in this process or on Apache Beam, :mod:`~lib.data.engine`), attributes measured
from audio (:mod:`~lib.data.analysis`) and training-set augmentation (:mod:`~lib.data.augment`).

May import: :mod:`lib.core`, :mod:`lib.spectral` (and Apache Beam, in :mod:`~lib.data.engine` alone).
"""
