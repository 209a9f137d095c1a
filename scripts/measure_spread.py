"""Write lib/expectations.json: every figure the README quotes, with a tolerance from measured spread.

The figures are the ones the README's generator reads (:func:`lib.figures.quoted_figures`), in
their watched form (:func:`lib.figures.watched_forms`). The reference values are the reference
run's (``docs/reference_run/``, seed 0, which the README quotes); the tolerance of each is
``SPREAD_FACTOR`` times the range of its values over the reference run and the other seeds' runs
(``make run-all SEED=n`` in clones of the same commit), and never less than the figure's
resolution (:func:`lib.figures.tolerance_floor`). A target that is true in every run is expected
to stay true; one that is true in the reference but false in another seed's run is *flaky*: it is
listed, and watched through its figures only. The benchmark's figures get a factor, not a spread
(one machine's speed says nothing about another's).

Usage::

    .venv/bin/python scripts/measure_spread.py /tmp/seed1/outputs /tmp/seed2/outputs [--write]

Each argument is another run's outputs folder (its ``metrics/`` for the notes and its
``datasets/genres/metrics/`` for the genre collections). Without ``--write`` it prints what it
would change and a leave-one-out estimate: how many figures of each run would fall outside
tolerances measured on the other runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_table

from lib import checks, figures, ratchet
from lib.fileio import load_json

SPREAD_FACTOR = 2.5  # times the range over the runs measured (about 4 standard deviations for three runs)
BENCH_SPEED_FACTOR = 3.0  # a machine this many times slower than the reference still passes
BENCH_MEMORY_FACTOR = 1.5  # memory moves less than speed between machines
BENCH_TIME_FACTOR = 2.0  # wall times of the notebooks and of the benchmark
# Facts that hold on any dataset, a folder of the user's music included (checked by every `make check`).
EVERY_DATASET = {
    "01_autoencoder": ["targets.never_worse_than_pca_test", "targets.rate_distortion_keeps_falling"],
}


def renders(reference: Path) -> dict[str, list[tuple[str, object]]]:
    """Per section: (metrics folder relative to a run's outputs, README renderer over that folder's files)."""
    bench_preparation = results_table.load_folder(reference).get("bench_preparation")
    genre_data = results_table.load_folder(reference / "genres").get("00_data")
    return {
        "notes": [("metrics", results_table.results_block)],
        "genres": [
            ("datasets/genres/metrics", lambda runs: results_table.genres_block(runs, None)),
            ("datasets/genres/metrics", lambda runs: results_table.genre_stage_block(runs["05_genres"])),
        ],
        "bench": [
            ("metrics", lambda runs: results_table.performance_block(runs["bench"])),
            ("metrics", lambda runs: results_table.folder_stage0(genre_data, runs["bench_preparation"]))
            if bench_preparation and genre_data
            else ("metrics", lambda runs: None),
        ],
    }


def reference_folder(section: str) -> Path:
    return results_table.REFERENCE_FOLDER / ("genres" if section == "genres" else "")


def _rounded(value: float) -> float:
    return float(f"{value:.4g}")


def numeric(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def bench_expectation(stem: str, figure: str, reference) -> dict | None:
    """The benchmark's expectation for one of its figures (None: a description, not a figure)."""
    if figure.startswith("machine.") or figure == "griffin_lim_sweep_repeats":
        return None
    if isinstance(reference, bool):
        return {"figure": figure, "expected": reference} if reference else None
    if "log_mel_distance_db" in figure:  # the same arithmetic on the same clips on any machine
        return {"figure": figure, "reference": _rounded(reference), "better": "near", "tolerance": 0.02}
    if figures.MACHINE_DEPENDENT.search(figure):
        if "memory" in figure or "rss" in figure:
            return {
                "figure": figure,
                "reference": _rounded(reference),
                "better": "lower",
                "factor": BENCH_MEMORY_FACTOR,
            }
        if "seconds" in figure:
            return {"figure": figure, "reference": _rounded(reference), "better": "lower", "factor": BENCH_TIME_FACTOR}
        return {"figure": figure, "reference": _rounded(reference), "better": "higher", "factor": BENCH_SPEED_FACTOR}
    return {"figure": figure, "reference": reference, "better": "near", "tolerance": 0}


def measured(stem: str, expression: str, reference, others: list) -> tuple[dict | None, str | None]:
    """The expectation of one watched figure from its reference and other runs' values.

    Returns (expectation or None, a note: why a target is not watched as a boolean).
    """
    if isinstance(reference, bool):
        if not reference:
            return None, None
        if all(value is True for value in others):
            return {"figure": expression, "expected": True}, None
        note = f"true in the reference, false in {others.count(False)} of {len(others)} other run(s)"
        return {"figure": expression, "flaky": note}, f"{stem} {expression}: {note}"
    values = [reference, *[value for value in others if numeric(value)]]
    spread = max(values) - min(values)
    tolerance = max(SPREAD_FACTOR * spread, figures.tolerance_floor(expression, reference))
    expectation = {
        "figure": expression,
        "reference": _rounded(reference),
        "better": figures.direction(expression),
        "tolerance": _rounded(tolerance),
        "spread": {"runs": len(values), "min": _rounded(min(values)), "max": _rounded(max(values))},
    }
    return expectation, None


def values_in(runs: list[dict], stem: str, expression: str) -> list:
    """The value of ``expression`` in each run's ``stem`` record that holds it."""
    values = []
    for run in runs:
        try:
            values.append(checks.evaluate(run[stem], expression))
        except (KeyError, TypeError):
            continue
    return values


def build(run_outputs: list[Path]) -> tuple[dict, list[str]]:
    """The whole expectations file, and the flaky targets."""
    reference_root = results_table.REFERENCE_FOLDER
    document: dict[str, dict[str, list[dict]]] = {}
    flaky: list[str] = []
    for section, parts in renders(reference_root).items():
        reference_runs = results_table.load_folder(reference_folder(section))
        if section == "bench":
            reference_runs = results_table.load_folder(reference_root)
        for relative, render in parts:
            quoted = figures.quoted_figures(render, reference_runs)
            others = [results_table.load_folder(root / relative) for root in run_outputs]
            for stem, figure in quoted if section == "bench" else figures.expressions(quoted):
                record = reference_runs[stem]
                if section == "bench":
                    expectation = bench_expectation(stem, figure, checks.evaluate(record, figure))
                    note = None
                else:
                    values = values_in(others, stem, figure)
                    expectation, note = measured(stem, figure, checks.evaluate(record, figure), values)
                if note:
                    flaky.append(note)
                if expectation:
                    figures_of = document.setdefault(section, {}).setdefault(stem, [])
                    if all(existing["figure"] != expectation["figure"] for existing in figures_of):
                        figures_of.append(expectation)
    # Figures watched before that the README does not quote keep being watched (nothing drops silently).
    current = ratchet.flat_to_sections(load_json(checks.EXPECTATIONS_PATH)) if checks.EXPECTATIONS_PATH.exists() else {}
    for section in ("notes", "genres"):
        reference_runs = results_table.load_folder(reference_folder(section))
        relative = "datasets/genres/metrics" if section == "genres" else "metrics"
        others = [results_table.load_folder(root / relative) for root in run_outputs]
        for stem, expectations in current.get(section, {}).items():
            figures_of = document.setdefault(section, {}).setdefault(stem, [])
            known = {expectation["figure"] for expectation in figures_of}
            for old in expectations:
                if old["figure"] in known:
                    continue
                values = values_in(others, stem, old["figure"])
                expectation, note = measured(
                    stem, old["figure"], checks.evaluate(reference_runs[stem], old["figure"]), values
                )
                if note:
                    flaky.append(note)
                if expectation:
                    figures_of.append(expectation)
    document[checks.EVERY_DATASET] = {
        stem: [{"figure": figure, "expected": True} for figure in names] for stem, names in EVERY_DATASET.items()
    }
    return document, flaky


def leave_one_out(run_outputs: list[Path]) -> str:
    """For each run (reference included), how many figures fall outside tolerances measured without it."""
    folders = [results_table.REFERENCE_FOLDER.parent / "reference_run", *run_outputs]
    lines = []
    for left_out, _ in enumerate(folders):
        kept = [folder for index, folder in enumerate(folders) if index != left_out]
        outside, total = 0, 0
        for section, relative in (("notes", "metrics"), ("genres", "datasets/genres/metrics")):
            quoted = []
            reference_runs = results_table.load_folder(reference_folder(section))
            for _, render in renders(results_table.REFERENCE_FOLDER)[section]:
                quoted += figures.quoted_figures(render, reference_runs)
            root_of = {
                folder: (folder / ("genres" if section == "genres" else ""))
                if folder.name == "reference_run"
                else folder / relative
                for folder in folders
            }
            runs = {folder: results_table.load_folder(root_of[folder]) for folder in folders}
            for stem, expression in figures.expressions(quoted):
                values = {}
                for folder in folders:
                    try:
                        values[folder] = checks.evaluate(runs[folder][stem], expression)
                    except (KeyError, TypeError):
                        pass
                if folders[left_out] not in values or not numeric(values[folders[left_out]]):
                    continue
                base = [values[folder] for folder in kept if folder in values and numeric(values[folder])]
                if not base:
                    continue
                spread = max(base) - min(base)
                tolerance = max(SPREAD_FACTOR * spread, figures.tolerance_floor(expression, base[0]))
                expectation = {"figure": expression, "reference": base[0], "better": "near", "tolerance": tolerance}
                total += 1
                outside += not checks.within(expectation, values[folders[left_out]])
        lines.append(f"  leaving out {folders[left_out]}: {outside} of {total} figures outside (either side)")
    return "\n".join(lines)


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="other seeds' outputs folders")
    parser.add_argument("--write", action="store_true", help="replace lib/expectations.json (through the ratchet)")
    ratchet.add_accept_option(parser)
    options = parser.parse_args(arguments)
    document, flaky = build(options.runs)
    counts = {section: sum(len(e) for e in notebooks.values()) for section, notebooks in document.items()}
    print(f"watched figures by section: {counts}")
    for line in flaky:
        print(f"flaky target (not watched as a boolean): {line}")
    if options.runs:
        print(leave_one_out(options.runs))
    if options.write:
        return ratchet.refresh(document, dict(options.accept_worse))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
