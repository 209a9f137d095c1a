"""The lab report: results cells, and the HTML report with an index that links every page."""

from __future__ import annotations

import nbformat

from lib.lab import report


def _executed_notebook(path, *, with_results_cell=True):
    cells = [nbformat.v4.new_markdown_cell("# 01 · a stage")]
    if with_results_cell:
        cells.append(nbformat.v4.new_code_cell("show_results('01_autoencoder')", metadata={"tags": ["results"]}))
    cells.append(nbformat.v4.new_code_cell("print('hello')"))
    cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_results_show_every_target_and_the_watched_figures():
    record = {
        "rows": [
            {"method": "autoencoder", "latent_dim": 8, "log_mel_distance_db": 3.5},
            {"method": "pca", "latent_dim": 8, "log_mel_distance_db": 9.77},
        ],
        "targets": {"beats_pca_at_every_size": True, "within_1_5_db_of_oracle_at_100x": False},
    }
    page = report.results_html("01_autoencoder", record, dataset="notes")
    assert "Targets reached: 1 of 2" in page
    assert "✓</td><td><code>beats_pca_at_every_size" in page and "✗</td><td><code>within_1_5_db" in page
    assert "rows[method=pca,latent_dim=8].log_mel_distance_db</code></td><td>9.77</td>" in page
    # the codec beside the same run's PCA: -6.27 dB
    assert "rows[method=autoencoder,latent_dim=8].log_mel_distance_db - rows[method=pca,latent_dim=8]" in page
    assert "<td>-6.27</td>" in page
    assert "No results yet" in report.results_html("01_autoencoder", None)
    assert "Skipped" in report.results_html("04_control", {"skipped": "needs note labels"})
    part = report.results_html("05_genres", {"transfer": {"skipped": "one label (solo)"}, "targets": {}})
    assert "<li><code>transfer</code>: one label (solo)</li>" in part
    # The accepted trade-offs of a reference run show beside its own stage, not beside a folder's.
    assert "05_genres</td><td><code>judge_accuracy" in report.results_html("05_genres", {}, dataset="genres")
    assert "Accepted trade-offs" not in report.results_html("05_genres", {}, dataset="/music/mine")


def test_the_results_cell_is_filled_after_a_run(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "metrics_path", lambda name, dataset=None: tmp_path / f"{name}.json")
    (tmp_path / "01_autoencoder.json").write_text('{"targets": {"beats_pca_at_every_size": true}}')
    executed = _executed_notebook(tmp_path / "01_autoencoder.ipynb")
    assert report.fill_results_cell(executed, "01_autoencoder")
    cell = nbformat.read(executed, as_version=4).cells[1]
    assert "Targets reached: 1 of 1" in cell.outputs[0]["data"]["text/html"]
    assert not report.fill_results_cell(_executed_notebook(tmp_path / "other.ipynb", with_results_cell=False), "x")


def test_the_report_links_every_page(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "metrics_path", lambda name, dataset=None: tmp_path / "metrics" / f"{name}.json")
    monkeypatch.setattr(report, "outputs_dir", lambda dataset=None: tmp_path)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "02_b.json").write_text('{"skipped": "needs note labels"}')
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "01_curve.png").write_bytes(b"\x89PNG")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _executed_notebook(notebooks / "01_a.ipynb")
    index = report.build_report(notebooks, tmp_path / "report", names=["01_a", "02_b"])
    page = index.read_text()
    assert "href='01_a.html'" in page and (tmp_path / "report" / "01_a.html").exists()
    assert "02_b (not executed)" in page and "needs note labels" in page
    assert "figures/01_curve.png" in page and (tmp_path / "report" / "figures" / "01_curve.png").exists()
    assert "hello" in (tmp_path / "report" / "01_a.html").read_text()


def test_progress_bars_collapse_to_their_final_state():
    cell = nbformat.v4.new_code_cell("fit()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="loading\n"),
        nbformat.v4.new_output("stream", name="stdout", text="\rtraining:  10%| 1/10"),
        nbformat.v4.new_output("stream", name="stdout", text="\rtraining: 100%| 10/10"),
        nbformat.v4.new_output("stream", name="stdout", text="\n"),
        nbformat.v4.new_output("stream", name="stderr", text="a warning\n"),
    ]
    document = report.tidy_streams(nbformat.v4.new_notebook(cells=[cell]))
    outputs = document.cells[0].outputs
    assert [o.name for o in outputs] == ["stdout", "stderr"]
    assert outputs[0].text == "loading\ntraining: 100%| 10/10\n"


def test_a_stage_with_its_own_dataset_works_on_a_folder_and_says_what_one_label_cannot_do(tmp_path):
    from lib.core import paths
    from lib.lab import checks
    from lib.measure.label_judge import one_label_reason

    genres_notebook = paths.PROJ_ROOT / "notebooks" / "05_genres.ipynb"
    first_notebook = paths.PROJ_ROOT / "notebooks" / "01_autoencoder.ipynb"
    assert checks.notebook_dataset(genres_notebook) == "genres" and checks.notebook_dataset(first_notebook) is None
    folder = tmp_path / "music"
    # Notebook 05 works on the genre collections in the notes' and the genres' runs, on a folder in a folder's.
    assert checks.stage_dataset(genres_notebook, "notes") == checks.stage_dataset(genres_notebook, "genres") == "genres"
    assert checks.stage_dataset(genres_notebook, str(folder)) == str(folder)
    assert checks.stage_dataset(first_notebook, "notes") == "notes"
    # On a folder of one label, notebooks 04 and 05 run and skip their label-level parts, with this reason.
    reason = one_label_reason(["solo", "solo"])
    assert "one label (solo)" in reason and "sub-folders" in reason, reason
    assert one_label_reason(["solo", "duet"]) is None
