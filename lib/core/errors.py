"""The lab's error types: bad input, and something that has not been made yet.

Both carry ``problem`` (words a user can act on) and ``path`` (the file or folder, when there is
one), and print as ``<path>: <problem>``. :class:`AudioInputError` also carries ``kind``, a short
name for the sort of problem (``"truncated"``, ``"silent"`` …) that the folder path counts in its
summary, set where the error is raised rather than read back from the message.
"""

from __future__ import annotations

from pathlib import Path


class LabError(Exception):
    """An error whose message names the file (when there is one) and the problem."""

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.problem = problem
        self.path = None if path is None else Path(path)
        message = problem if path is None else f"{path}: {problem}"
        super().__init__(message)


class AudioInputError(LabError, ValueError):
    """Bad input: a file that cannot be used, or arrays of the wrong shape or values.

    Parameters
    ----------
    problem : str
        What is wrong, in words a user can act on.
    path : str or Path, optional
        The offending file.
    kind : str
        The sort of problem, for counts (``PROBLEM_KINDS`` of :mod:`lib.data.collection`); ``"other"`` by default.
    """

    def __init__(self, problem: str, path: str | Path | None = None, *, kind: str = "other") -> None:
        super().__init__(problem, path)
        self.kind = kind


class NotReadyError(LabError, LookupError):
    """Something the lab needs does not exist yet (a dataset, a trained model) or is not installed
    (the SoundFont): the message says which command makes it."""
