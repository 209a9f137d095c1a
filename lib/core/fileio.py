"""Atomic, pickle-free reading and writing of arrays, JSON and bytes.

Every write goes to a temporary file in the destination folder and is then renamed over
the target, so a crash never leaves a half-written file behind. Replacing an existing file
requires ``overwrite=True`` and is announced on the log. :func:`settings_hash` names settings
(a dataset's, a model's) by a short hash of their JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lib.core.paths import shown

logger = logging.getLogger(__name__)


def settings_hash(settings: Any) -> str:
    """Short hash (16 hex digits) of JSON-serialisable settings, keys sorted: the same settings, the same name."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def atomic_write_bytes(path: str | Path, payload: bytes, *, overwrite: bool = False, announce: bool = True) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file, then rename).

    Nothing is replaced unless the caller says ``overwrite=True``. A replacement is logged at
    debug level unless ``announce`` is False (state files rewritten every epoch): a rerun that
    regenerates its outputs by design should not print a line per file into the notebooks.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace it")
        if announce:
            logger.debug("replacing %s", shown(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary_name, 0o666 & ~_current_umask())
        with os.fdopen(handle, "wb") as temporary_file:
            temporary_file.write(payload)
            temporary_file.flush()
            os.fsync(temporary_file.fileno())
        os.replace(temporary_name, path)
    except BaseException:
        Path(temporary_name).unlink(missing_ok=True)
        raise
    return path


def save_json(path: str | Path, content: Any, *, overwrite: bool = False, announce: bool = True) -> Path:
    """Write ``content`` as indented JSON, atomically."""
    text = json.dumps(content, indent=2, sort_keys=False, default=_json_default) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite, announce=announce)


def load_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def config_from_json(config_class: type, values: dict) -> Any:
    """A frozen config dataclass from its JSON form (``asdict``): JSON lists become tuples again."""
    return config_class(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


def save_npy(path: str | Path, array: np.ndarray, *, overwrite: bool = False, announce: bool = True) -> Path:
    """Write a numeric array as ``.npy``, atomically. Object arrays are refused."""
    array = np.asarray(array)
    if array.dtype == object:
        raise TypeError(f"{path}: object arrays would need pickle; store numbers only")
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite, announce=announce)


def load_npy(path: str | Path, *, mmap: bool = False) -> np.ndarray:
    """Read a ``.npy`` file without ever unpickling."""
    return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)


def _json_default(value: Any) -> Any:
    """Turn numpy scalars and arrays into plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
