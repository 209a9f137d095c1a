"""The headless runner: which notebooks run beside the others, and how many at once."""

from __future__ import annotations

import pytest

from lib import run_notebooks
from lib.paths import PROJ_ROOT

NOTEBOOKS = sorted((PROJ_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_genre_notebook_runs_beside_the_others_and_the_rest_in_order():
    main, side = run_notebooks.plan(NOTEBOOKS, 2)
    assert [notebook.stem for notebook in side] == ["05_genres"]
    assert main == [notebook for notebook in NOTEBOOKS if notebook.stem != "05_genres"]  # in order
    assert run_notebooks.plan(NOTEBOOKS, 1) == (NOTEBOOKS, [])


def test_jobs_come_from_the_environment_or_the_machine(monkeypatch):
    monkeypatch.setenv(run_notebooks.JOBS_ENV_VAR, "1")
    assert run_notebooks.lanes_allowed() == 1
    monkeypatch.setenv(run_notebooks.JOBS_ENV_VAR, "two")
    with pytest.raises(ValueError, match="whole number"):
        run_notebooks.lanes_allowed()
    monkeypatch.delenv(run_notebooks.JOBS_ENV_VAR)
    assert run_notebooks.lanes_allowed() in (1, 2)
