"""Every path the project uses, derived from the package's own location.

Nothing depends on the working folder: notebooks, tests and scripts import these
constants instead of building paths of their own. Smoke mode (``LML_SMOKE=1``) keeps its
data and outputs in separate folders so that a quick test run never replaces the results
of a full run.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJ_ROOT = Path(__file__).resolve().parents[1]
SMOKE_ENV_VAR = "LML_SMOKE"  # set to 1 to shrink data and epochs (tests, CI)


def smoke_mode() -> bool:
    """Return True when the smoke switch ``LML_SMOKE`` is set to a true value."""
    return os.environ.get(SMOKE_ENV_VAR, "0").strip().lower() in {"1", "true", "yes", "on"}


def data_dir(smoke: bool | None = None) -> Path:
    """Folder of the generated dataset: ``data/default`` or ``data/smoke``."""
    smoke = smoke_mode() if smoke is None else smoke
    return PROJ_ROOT / "data" / ("smoke" if smoke else "default")


def outputs_dir(smoke: bool | None = None) -> Path:
    """Root of generated outputs: ``outputs`` or ``outputs/smoke``."""
    smoke = smoke_mode() if smoke is None else smoke
    return PROJ_ROOT / "outputs" / "smoke" if smoke else PROJ_ROOT / "outputs"


def metrics_path(notebook_name: str, smoke: bool | None = None) -> Path:
    """Path of ``outputs/metrics/<notebook_name>.json``."""
    return outputs_dir(smoke) / "metrics" / f"{notebook_name}.json"


def models_dir(smoke: bool | None = None) -> Path:
    """Folder of saved ``.keras`` models and training checkpoints."""
    return outputs_dir(smoke) / "models"


def audio_dir(notebook_name: str, smoke: bool | None = None) -> Path:
    """Folder of WAV files written by one notebook."""
    return outputs_dir(smoke) / "audio" / notebook_name


def figures_dir(smoke: bool | None = None) -> Path:
    """Folder of PNG figures written by the notebooks."""
    return outputs_dir(smoke) / "figures"
