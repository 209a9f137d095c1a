"""The lab's foundation: where files live (:mod:`~lib.core.paths`), how they are written atomically
without pickle (:mod:`~lib.core.fileio`), the error types (:mod:`~lib.core.errors`) and maps over
every core (:mod:`~lib.core.parallel`).

May import: nothing else of ``lib``.
"""
