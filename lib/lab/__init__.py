"""The lab's front: figures (:mod:`~lib.lab.plots`), the explorers, the report, ``make check`` and its
catalogue of figures (:mod:`~lib.lab.checks`, :mod:`~lib.lab.figures`, :mod:`~lib.lab.ratchet`),
the notebook runner, ``make bench`` and its memory probe, and the ``lml`` command line.

May import: every other layer.
"""
