"""Measurement: the codec baselines (:mod:`~lib.measure.baselines`), the stages' evaluations
(:mod:`~lib.measure.evaluation`), control checked by measurement (:mod:`~lib.measure.control`),
genre phrases measured (:mod:`~lib.measure.genre_lab`), the label judge of any labelled dataset
(:mod:`~lib.measure.label_judge`), playable instruments and whole recordings
measured (:mod:`~lib.measure.recording_report`), and the metrics records the stages write with their
targets (:mod:`~lib.measure.records`).

May import: :mod:`lib.core`, :mod:`lib.spectral`, :mod:`lib.data`, :mod:`lib.models`.
"""
