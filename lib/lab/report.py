"""The lab report: a results cell at the top of each stage, and ``make report`` (standalone HTML).

* :func:`show_results` draws a stage's results in its notebook: every target of its metrics file
  with ✓ or ✗, and the figures that ``lib/expectations.json`` watches, with the reference run's
  value beside (for the notes). :func:`fill_results_cell` writes the same into an executed
  notebook's cell tagged ``results`` once the run is over, so the cell at the top shows *this*
  run's numbers.
* :func:`build_report` converts the executed notebooks to standalone HTML (nbconvert) and writes
  an index page that links every page, with each stage's results and its figures: results can
  be browsed and shared without Jupyter.

Usage: ``python -m lib.lab.report`` (``make report``) for the chosen dataset and mode.
"""

from __future__ import annotations

import html
import os
import shutil
import sys
from pathlib import Path

import nbformat

from lib.core.fileio import atomic_write_bytes, load_json
from lib.core.paths import PROJ_ROOT, dataset_choice, metrics_path, outputs_dir, shown
from lib.lab import checks
from lib.lab.checks import stage_dataset
from lib.lab.ratchet import load_tradeoffs, shown_figure

RESULTS_TAG = "results"


def _figure_rows(notebook: str, record: dict, *, dataset: str) -> tuple[list[str], int]:
    """Table rows for the figures ``make check`` watches in this record, failures first, and how
    many of them are within their expectations."""
    expectations = [
        expectation
        for watch in checks.watches(load_json(checks.EXPECTATIONS_PATH), dataset)
        if watch.notebook == notebook
        for expectation in watch.expectations
    ]
    results = [
        checks.check_expectation(notebook, record, expectation)
        for expectation in expectations
        if checks.checked(expectation)
    ]
    rows = []
    for result in sorted(results, key=lambda result: result.passed):
        value = result.value
        shown_value = "—" if value is None else f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))
        rows.append(
            f"<tr><td><code>{html.escape(result.figure)}</code></td><td>{shown_value}</td>"
            f"<td>{html.escape(result.expected)}</td><td>{'✓' if result.passed else '✗'}</td></tr>"
        )
    return rows, sum(result.passed for result in results)


def tradeoffs_html(notebook: str | None = None, *, dataset: str | None = None) -> str:
    """The accepted trade-offs (``docs/accepted_tradeoffs.json``) as an HTML table: all, or one stage's;
    with ``dataset``, that dataset's only (none for a folder: trade-offs belong to the reference runs)."""
    entries = [
        entry
        for entry in load_tradeoffs()
        if (notebook is None or entry["notebook"] == notebook) and (dataset is None or entry["section"] == dataset)
    ]
    if not entries:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(entry['notebook'])}</td><td><code>{html.escape(shown_figure(entry))}</code></td>"
        f"<td>{html.escape(str(entry['old']))}</td><td>{html.escape(str(entry['new']))}</td>"
        f"<td>{html.escape(entry['reason'])}</td><td>{html.escape(entry['commit'])}</td></tr>"
        for entry in entries
    )
    head = "<tr><th>stage</th><th>figure</th><th>before</th><th>after</th><th>why</th><th>commit</th></tr>"
    return f"<p>Accepted trade-offs (figures that got worse on purpose)</p><table>{head}{rows}</table>"


def results_html(notebook: str, record: dict | None, *, dataset: str | None = None) -> str:
    """The results of one stage as HTML: targets with ✓/✗, the parts it skipped on this dataset (a
    record's ``{"skipped": reason}`` parts), then the watched figures."""
    dataset = dataset_choice() if dataset is None else dataset
    if record is None:
        return f"<p><b>No results yet</b> for {html.escape(notebook)}: run the notebook to the end.</p>"
    if "skipped" in record:
        return f"<p><b>Skipped</b> on this dataset: {html.escape(record['skipped'])}</p>"
    parts = [f"<p><b>Results of {html.escape(notebook)}</b> (dataset {html.escape(shown(dataset))})</p>"]
    targets = record.get("targets", {})
    if targets:
        reached = sum(bool(value) for value in targets.values())
        items = "".join(
            f"<tr><td>{'✓' if value else '✗'}</td><td><code>{html.escape(name)}</code></td></tr>"
            for name, value in targets.items()
        )
        parts.append(f"<p>Targets reached: {reached} of {len(targets)}</p><table>{items}</table>")
    skipped = {name: part["skipped"] for name, part in record.items() if isinstance(part, dict) and "skipped" in part}
    if skipped:
        items = "".join(
            f"<li><code>{html.escape(name)}</code>: {html.escape(reason)}</li>" for name, reason in skipped.items()
        )
        parts.append(f"<p>Parts skipped on this dataset, and why:</p><ul>{items}</ul>")
    rows, passed = _figure_rows(notebook, record, dataset=dataset)
    if rows:
        head = "<tr><th>figure</th><th>this run</th><th>expected</th><th>within</th></tr>"
        parts.append(
            f"<details><summary>Watched figures (<code>lib/expectations.json</code>): {passed} of {len(rows)} "
            f"within their expectations</summary><table>{head}{''.join(rows)}</table></details>"
        )
    parts.append(tradeoffs_html(notebook, dataset=dataset))
    return "".join(parts)


def show_results(notebook: str, dataset: str | None = None) -> None:
    """Display a stage's results in its notebook (the last finished run's, until this one ends).

    ``dataset``: whose results; by default the dataset the notebook works on in this run
    (:func:`lib.lab.checks.stage_dataset`: notebook 05 in the notes' run shows the genre collections').
    """
    from IPython.display import HTML, display

    dataset = dataset or stage_dataset(PROJ_ROOT / "notebooks" / f"{notebook}.ipynb")
    path = metrics_path(notebook, dataset=dataset)
    display(HTML(results_html(notebook, load_json(path) if path.exists() else None, dataset=dataset)))


def tidy_streams(document: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Merge each cell's consecutive stream outputs and keep, on every line, only the text after
    its last carriage return: a progress bar's dozens of updates become its final state, as a
    terminal or Jupyter shows it."""
    for cell in document.cells:
        merged = []
        for output in cell.get("outputs", []):
            previous = merged[-1] if merged else None
            if output.output_type == "stream" and previous is not None and previous.output_type == "stream":
                if previous.name == output.name:
                    previous.text += output.text
                    continue
            merged.append(output)
        for output in merged:
            if output.output_type == "stream":
                lines = output.text.split("\n")
                output.text = "\n".join(line.rstrip("\r").split("\r")[-1] for line in lines)
        if "outputs" in cell:
            cell.outputs = merged
    return document


def fill_results_cell(executed: Path, notebook: str, dataset: str | None = None) -> bool:
    """Put this run's results into the executed notebook's cell tagged ``results``, and tidy its
    progress bars (:func:`tidy_streams`). ``dataset``: the stage's own dataset, if it has one.

    Returns False when the notebook has no such cell.
    """
    path = metrics_path(notebook, dataset=dataset)
    record = load_json(path) if path.exists() else None
    document = tidy_streams(nbformat.read(executed, as_version=4))
    cells = [cell for cell in document.cells if RESULTS_TAG in cell.get("metadata", {}).get("tags", [])]
    if cells:
        cells[0].outputs = [
            nbformat.v4.new_output("display_data", data={"text/html": results_html(notebook, record, dataset=dataset)}),
        ]
    atomic_write_bytes(executed, nbformat.writes(document).encode("utf-8"), overwrite=True, announce=False)
    return bool(cells)


def build_report(notebooks_folder: Path, report_folder: Path, *, names: list[str] | None = None) -> Path:
    """Convert every executed notebook in ``notebooks_folder`` to HTML in ``report_folder``, copy
    the figures, and write ``index.html`` linking them all; returns the index's path.

    ``names`` lists the stage notebooks expected (by stem); one that was skipped or never run
    is listed on the index with the reason.
    """
    from nbconvert import HTMLExporter

    executed = sorted(notebooks_folder.glob("*.ipynb"))
    if not executed and not names:
        raise FileNotFoundError(f"no executed notebooks in {shown(notebooks_folder)}: run `make run-all` first")
    report_folder.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    sections = []
    stems = sorted({path.stem for path in executed} | set(names or []))
    for stem in stems:
        source = notebooks_folder / f"{stem}.ipynb"
        own = stage_dataset(source) if source.exists() else None  # a stage with a dataset of its own
        metrics = metrics_path(stem, dataset=own)
        record = load_json(metrics) if metrics.exists() else None
        if source.exists():
            body, _ = exporter.from_notebook_node(tidy_streams(nbformat.read(source, as_version=4)))
            atomic_write_bytes(report_folder / f"{stem}.html", body.encode("utf-8"), overwrite=True, announce=False)
            title = f"<h2><a href='{stem}.html'>{html.escape(stem)}</a></h2>"
        else:
            title = f"<h2>{html.escape(stem)} (not executed)</h2>"
        figures = sorted((outputs_dir(dataset=own) / "figures").glob(f"{stem[:2]}_*.png"))
        (report_folder / "figures").mkdir(exist_ok=True)
        for figure in figures:
            shutil.copyfile(figure, report_folder / "figures" / figure.name)
        images = "".join(f"<img src='figures/{f.name}' style='max-width:48%;margin:4px'/>" for f in figures)
        sections.append(title + results_html(stem, record, dataset=own) + images)
    sections.append(recordings_html(report_folder))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>latent music lab: report</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{padding:2px 8px;"
        "text-align:left}table{border-collapse:collapse}tr:nth-child(even){background:#f3f3f3}</style>"
        f"</head><body><h1>latent music lab: report</h1><p>dataset {html.escape(shown(dataset_choice()))}</p>"
        + "".join(sections)
        + tradeoffs_html(dataset=dataset_choice())
        + "</body></html>"
    )
    index = report_folder / "index.html"
    atomic_write_bytes(index, page.encode("utf-8"), overwrite=True, announce=False)
    return index


def recordings_html(report_folder: Path) -> str:
    """A link to the whole-recordings listening page of ``lml report`` (the genres' and this dataset's),
    with its summary line, where one was written; the command that writes it otherwise."""
    links = []
    for dataset in dict.fromkeys([dataset_choice(), "genres"]):
        page = outputs_dir(dataset=dataset) / "recordings" / "index.html"
        metrics = metrics_path("recordings", dataset=dataset)
        if page.exists() and metrics.exists():
            summary = load_json(metrics)["summary"]
            relative = os.path.relpath(page, report_folder)
            distance = summary["distance_db"]["recording codec"]
            links.append(
                f"<li><a href='{html.escape(relative)}'>{html.escape(shown(dataset))}</a>: {summary['files']} files, "
                f"{summary['numbers_per_second']:.1f} numbers per second, log-mel distance {distance:.2f} dB</li>"
            )
    if not links:
        return "<h2>Whole recordings</h2><p>No listening page yet: <code>make recordings</code> writes one.</p>"
    return "<h2>Whole recordings (<code>make recordings</code>)</h2><ul>" + "".join(links) + "</ul>"


def main() -> int:
    """``python -m lib.lab.report``: the report of the chosen dataset's last run."""
    stems = [path.stem for path in sorted((PROJ_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    try:
        index = build_report(outputs_dir() / "notebooks", outputs_dir() / "report", names=stems)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"report: {shown(index)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
