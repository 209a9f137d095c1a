"""The README's results are the reference run's: generated from docs/reference_run, never typed."""

from __future__ import annotations

import copy
import sys

from lib.core.paths import PROJ_ROOT

sys.path.insert(0, str(PROJ_ROOT / "scripts"))
import results_table


def test_readme_results_match_the_reference_snapshot():
    runs = results_table.load_folder(results_table.REFERENCE_FOLDER)
    assert {"00_data", "01_autoencoder", "03_vae", "04_control", "about", "run_notebooks"} <= set(runs)
    readme = (PROJ_ROOT / "README.md").read_text()
    assert results_table.readme_block(readme) == results_table.results_block(runs), (
        "README results differ from docs/reference_run: run "
        "`.venv/bin/python scripts/results_table.py --reference --write README.md`"
    )


def test_readme_genre_results_match_their_snapshot():
    folder = results_table.REFERENCE_FOLDER / "genres"
    runs = results_table.load_folder(results_table.REFERENCE_FOLDER)
    readme = (PROJ_ROOT / "README.md").read_text()
    block = results_table.readme_block(readme, results_table.GENRES_BEGIN, results_table.GENRES_END)
    assert block == results_table.genres_block(results_table.load_folder(folder), runs.get("bench_preparation")), (
        "README genre results differ from docs/reference_run/genres: run "
        "`.venv/bin/python scripts/results_table.py --reference --write README.md`"
    )


def test_readme_performance_matches_the_reference_bench():
    runs = results_table.load_folder(results_table.REFERENCE_FOLDER)
    assert "bench" in runs, "docs/reference_run/bench.json: run `make bench` after the reference run-all"
    readme = (PROJ_ROOT / "README.md").read_text()
    block = results_table.readme_block(readme, results_table.PERFORMANCE_BEGIN, results_table.PERFORMANCE_END)
    assert block == results_table.performance_block(runs["bench"]), (
        "README performance differs from docs/reference_run/bench.json: run "
        "`.venv/bin/python scripts/results_table.py --reference --write README.md`"
    )


def test_readme_genre_stage_matches_its_snapshot():
    stage = results_table.load_folder(results_table.REFERENCE_FOLDER / "genres").get("05_genres")
    assert stage, "docs/reference_run/genres/05_genres.json: snapshot a run-all that ran notebook 05"
    readme = (PROJ_ROOT / "README.md").read_text()
    block = results_table.readme_block(readme, results_table.GENRE_STAGE_BEGIN, results_table.GENRE_STAGE_END)
    assert block == results_table.genre_stage_block(stage), (
        "README genre-stage results differ from docs/reference_run/genres/05_genres.json: run "
        "`.venv/bin/python scripts/results_table.py --reference --write README.md`"
    )


def test_the_genre_table_shows_the_judges_ceiling_only_where_a_run_recorded_it():
    stage = results_table.load_folder(results_table.REFERENCE_FOLDER / "genres")["05_genres"]
    header = "the judge on reconstructions of the genre's test phrases"
    with_ceiling = results_table.genre_stage_block(stage)
    madrigal_share = f"{stage['judge']['accuracy_on_reconstructions_by_genre']['madrigal']:.0%}"
    assert header in with_ceiling and any(
        line.startswith("| madrigal |") and f"| {madrigal_share} |" in line for line in with_ceiling.splitlines()
    )
    older = copy.deepcopy(stage)  # a run from before the judge was recorded per genre
    del older["judge"]["accuracy_on_reconstructions_by_genre"]
    without = results_table.genre_stage_block(older)
    assert header not in without and "| genre | requested genre share | Fréchet distance" in without
    missing = copy.deepcopy(stage)  # a label without test phrases
    del missing["judge"]["accuracy_on_reconstructions_by_genre"]["madrigal"]
    assert any(
        line.startswith("| madrigal |") and "| — |" in line
        for line in results_table.genre_stage_block(missing).splitlines()
    )


def test_readme_recordings_match_their_snapshot():
    report = results_table.load_folder(results_table.REFERENCE_FOLDER / "genres").get("recordings")
    assert report, "docs/reference_run/genres/recordings.json: copy the last `make recordings` report"
    readme = (PROJ_ROOT / "README.md").read_text()
    block = results_table.readme_block(readme, results_table.RECORDINGS_BEGIN, results_table.RECORDINGS_END)
    assert block == results_table.recordings_block(report), (
        "README whole-recordings results differ from docs/reference_run/genres/recordings.json: run "
        "`.venv/bin/python scripts/results_table.py --reference --write README.md`"
    )


def test_readme_stage6_matches_its_snapshots():
    runs = {
        "genres": results_table.load_folder(results_table.REFERENCE_FOLDER / "genres").get("06_recordings"),
        "default": results_table.load_folder(results_table.REFERENCE_FOLDER).get("06_recordings"),
    }
    assert all(runs.values()), "docs/reference_run{,/genres}/06_recordings.json: snapshot notebook 06's runs"
    readme = (PROJ_ROOT / "README.md").read_text()
    block = results_table.readme_block(readme, results_table.STAGE6_BEGIN, results_table.STAGE6_END)
    assert block == results_table.recordings_stage_block(runs), (
        "README notebook-06 results differ from their snapshots: run "
        "`.venv/bin/python scripts/results_table.py --reference --write README.md`"
    )


def test_a_changed_figure_changes_the_block():
    runs = results_table.load_folder(results_table.REFERENCE_FOLDER)
    changed = copy.deepcopy(runs)
    changed["01_autoencoder"]["rows"][0]["log_mel_distance_db"] += 1.0
    assert results_table.results_block(changed) != results_table.results_block(runs)


def test_readme_images_are_committed_and_small():
    import re

    readme = (PROJ_ROOT / "README.md").read_text()
    images = re.findall(r'<img src="([^"]+)"', readme)
    assert images, "the README shows the reference run's key figures"
    for image in images:
        path = PROJ_ROOT / image
        assert path.is_file() and path.stat().st_size < 200_000, image


def test_readme_shows_every_accepted_tradeoff():
    from lib.lab.ratchet import load_tradeoffs

    readme = (PROJ_ROOT / "README.md").read_text()
    block = results_table.readme_block(readme, results_table.TRADEOFFS_BEGIN, results_table.TRADEOFFS_END)
    assert block == results_table.tradeoffs_block(load_tradeoffs()), (
        "README trade-offs differ from docs/accepted_tradeoffs.json: run "
        "`.venv/bin/python scripts/results_table.py --reference --write README.md`"
    )
