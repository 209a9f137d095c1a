"""The project's one error type for bad input."""

from __future__ import annotations

from pathlib import Path


class AudioInputError(ValueError):
    """Bad input: the message names the file (when there is one) and the problem.

    Parameters
    ----------
    problem : str
        What is wrong, in words a user can act on.
    path : str or Path, optional
        The offending file.
    """

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.problem = problem
        self.path = None if path is None else Path(path)
        message = problem if path is None else f"{path}: {problem}"
        super().__init__(message)
