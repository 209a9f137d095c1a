"""The notebook runner's command line: an option is not a notebook."""

from __future__ import annotations

from lib.lab import run_notebooks


def test_help_and_stray_options_run_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_notebooks.main(["--help"]) == 0
    assert "usage:" in capsys.readouterr().out
    assert run_notebooks.main(["--verbose", "notebooks/01_autoencoder.ipynb"]) == 2
    assert run_notebooks.main([]) == 2
    assert "usage:" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
