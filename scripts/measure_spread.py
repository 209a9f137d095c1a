"""Write lib/expectations.json: every figure the README quotes, with a tolerance from measured spread.

The figures are the ones the README's generator reads (:func:`lib.lab.figures.quoted_figures`), in
their watched form (:func:`lib.lab.figures.watched_forms`), plus those watched before. Each figure's
reference is the mean of the reference run (``docs/reference_run/``, seed 0, which the README
quotes) and the other seeds' runs (``make run-all SEED=n`` in clones of the same commit); its
tolerance comes from their spread (:func:`tolerances`), and is never less than the figure's
resolution (:func:`lib.lab.figures.tolerance_floor`). A target that is true in every run is expected
to stay true; one that is true in the reference but false in another seed's run is *flaky*: it is
listed, and watched through its figures only. The benchmark's figures get a factor, not a spread
(one machine's speed says nothing about another's).

Usage::

    .venv/bin/python scripts/measure_spread.py /tmp/seed1/outputs /tmp/seed2/outputs [--write]
    .venv/bin/python scripts/measure_spread.py /tmp/genres-seed1/outputs --sections genres --only-new [--write]
    .venv/bin/python scripts/measure_spread.py --widen-with /tmp/rerun/outputs --sections notes [--write]

Each argument is another run's outputs folder (its ``metrics/`` for the notes and its
``datasets/genres/metrics/`` for the genre collections). Without ``--write`` it prints what it
would change and a leave-one-out estimate: how many figures of each run would fall outside
tolerances measured on the other runs.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import results_table

from lib.core.fileio import load_json
from lib.lab import checks, figures, ratchet

SPREAD_FACTOR = 3.0  # times the range over the runs measured (about 5 standard deviations for three runs)
POOLED_Z = 5.0  # times the pooled standard deviation (a normal figure falls outside once in 40,000 runs)
MIN_FAMILY = 3  # figures in a family before its own pooled spread is used
SECTIONS = ("notes", "genres")  # the sections measured from runs (the benchmark's come from its factors)
BENCH_SPEED_FACTOR = 3.0  # a machine this many times slower than the reference still passes
BENCH_MEMORY_FACTOR = 1.5  # memory moves less than speed between machines
BENCH_TIME_FACTOR = 2.0  # wall times of the notebooks and of the benchmark
# Whole recordings reuse a codec trained by an earlier stage: the runs behind notebook 06's figures
# varied its own seed, not the codec's, and `lml report` has one run. A figure that depends on the
# codec alone is therefore given at least the tolerance of the closest figure over the seeds that
# retrained that codec: its distance beside PCA (or beside isolated clips) that of the same model's
# distance beside PCA at the nearest size; the window judge's accuracy (a judge in the codec's latent)
# that of the stage's own label judge. Rules: (section, stem, figure pattern) -> (section, stem, pattern).
_DISTANCE = (
    r"(recording codec(, no search)?|distance_db_with_more_iterations|isolated_distance_db\.[\d.]+|"
    r"isolated_mean_over_grids_db) - "
)
_GENRE_CODEC = ("genres", "01_autoencoder", r"^rows\[method=autoencoder,latent_dim=32\]\.log_mel_distance_db - ")
BORROWED_SPREAD = [
    (
        ("notes", "06_recordings", _DISTANCE),
        (
            "genres",
            "05_genres",
            r"^reconstruction\[genre=\w+,method=autoencoder,latent_dim=64\]\.log_mel_distance_db - ",
        ),
    ),
    (("genres", "06_recordings", _DISTANCE), _GENRE_CODEC),
    (("genres", "recordings", _DISTANCE), _GENRE_CODEC),
    (
        ("notes", "06_recordings", r"^generation\.judge_accuracy$"),
        ("genres", "05_genres", r"^judge\.accuracy_on_reconstructions$"),
    ),
    (
        ("genres", "06_recordings", r"^generation\.judge_accuracy$"),
        ("genres", "03_vae", r"^classifier\.family_accuracy$"),
    ),
]


# Facts that hold on any dataset, a folder of the user's music included (checked by every `make check`).
EVERY_DATASET = {
    "01_autoencoder": ["targets.never_worse_than_pca_test", "targets.rate_distortion_keeps_falling"],
}


def renders(reference: Path) -> dict[str, list]:
    """Per section, the README's renderers of that section's figures (each over a run's metrics by stem)."""
    bench_preparation = results_table.load_folder(reference).get("bench_preparation")
    genre_data = results_table.load_folder(reference / "genres").get("00_data")
    bench = [lambda runs: results_table.performance_block(runs["bench"])]
    if bench_preparation and genre_data:
        bench.append(lambda runs: results_table.folder_stage0(genre_data, runs["bench_preparation"]))
    return {
        "notes": [
            results_table.results_block,
            lambda runs: results_table.recordings_stage_block({"default": runs["06_recordings"]}),
        ],
        "genres": [
            lambda runs: results_table.genres_block(runs, None),
            lambda runs: results_table.genre_stage_block(runs["05_genres"]),
            lambda runs: results_table.recordings_stage_block({"genres": runs["06_recordings"]}),
            lambda runs: results_table.recordings_block(runs["recordings"]),
        ],
        "bench": bench,
    }


def _rounded(value: float) -> float:
    return float(f"{value:.4g}")


def numeric(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def bench_expectation(figure: str, reference) -> dict | None:
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


@dataclass
class Observed:
    """One watched figure's value in the reference run and in the other runs that hold it."""

    section: str
    stem: str
    expression: str
    reference: object
    others: list


def values_in(runs: list[dict], stem: str, expression: str) -> list:
    """The value of ``expression`` in each run's ``stem`` record that holds it."""
    values = []
    for run in runs:
        try:
            values.append(checks.evaluate(run[stem], expression))
        except (KeyError, TypeError):
            continue
    return values


def observe(runs_by_section: dict[str, list[dict]], sections: tuple[str, ...] = SECTIONS) -> list[Observed]:
    """Every watched figure of the notes and the genre collections, in the first run of each section's
    list (the reference) and in the others: the README's quoted figures, then those watched before."""
    current = ratchet.flat_to_sections(load_json(checks.EXPECTATIONS_PATH)) if checks.EXPECTATIONS_PATH.exists() else {}
    observed, seen = [], set()
    for section in sections:
        reference, *others = runs_by_section[section]
        quoted = []
        for render in renders(results_table.REFERENCE_FOLDER)[section]:
            try:
                quoted += figures.quoted_figures(render, reference)
            except KeyError:  # a run that lacks a stage (not run yet) quotes nothing of it
                continue
        before = [  # watched before, unless now watched in another form (beside its yardstick)
            (stem, e["figure"])
            for stem, expectations in current.get(section, {}).items()
            for e in expectations
            if figures.watched_forms(stem, e["figure"]) == [e["figure"]]
        ]
        for stem, expression in [*figures.expressions(quoted), *before]:
            if (section, stem, expression) in seen or stem not in reference:
                continue
            seen.add((section, stem, expression))
            value = checks.evaluate(reference[stem], expression)
            observed.append(Observed(section, stem, expression, value, values_in(others, stem, expression)))
    return observed


def tolerances(observed: list[Observed], names: dict[str, set[str]]) -> dict[tuple[str, str, str], float]:
    """Each numeric figure's tolerance: SPREAD_FACTOR times its own range, POOLED_Z times the standard
    deviation pooled over its family, or its floor, whichever is largest.

    Three runs alone make a shaky estimate (a figure whose three values happen to agree gets little
    room), so where a figure has a family of at least MIN_FAMILY members (the same measure of other
    generators, genres, sizes or strengths: :func:`lib.lab.figures.spread_group`), their spreads are
    pooled, in absolute terms and relative to each value, and the smaller of the two is used (a
    family whose members differ in scale, like the noise sweep, does not give its smallest member the
    largest member's room). Counts and settings that must not move keep no tolerance. ``names``: per
    section, the keys that name things in its records (:func:`lib.lab.figures.record_names`).
    """
    families: dict[str, list[tuple[float, float]]] = {}
    for item in observed:
        values = [item.reference, *[v for v in item.others if numeric(v)]]
        if (
            numeric(item.reference)
            and len(values) >= 2
            and figures.tolerance_floor(item.expression, item.reference) > 0
        ):
            family = figures.spread_group(item.stem, item.expression, names[item.section])
            families.setdefault(family, []).append(
                (statistics.variance(values), statistics.fmean(abs(v) for v in values))
            )
    result = {}
    for item in observed:
        if not numeric(item.reference):
            continue
        values = [item.reference, *[v for v in item.others if numeric(v)]]
        floor = figures.tolerance_floor(item.expression, item.reference)
        tolerance = max(SPREAD_FACTOR * (max(values) - min(values)), floor)
        members = families.get(figures.spread_group(item.stem, item.expression, names[item.section]), [])
        if floor > 0 and len(members) >= MIN_FAMILY:
            absolute = math.sqrt(statistics.fmean(variance for variance, _ in members))
            scaled = [variance / scale**2 for variance, scale in members if scale > 0]
            relative = math.sqrt(statistics.fmean(scaled)) * abs(item.reference) if scaled else absolute
            tolerance = max(tolerance, POOLED_Z * min(absolute, relative))
        result[item.section, item.stem, item.expression] = max(tolerance, borrowed_tolerance(item))
    return result


def borrowed_tolerance(item: Observed) -> float:
    """The tolerance a figure of whole recordings borrows (:data:`BORROWED_SPREAD`); 0 if none."""
    current = ratchet.flat_to_sections(load_json(checks.EXPECTATIONS_PATH)) if checks.EXPECTATIONS_PATH.exists() else {}
    for (section, stem, pattern), (source_section, source_stem, source_pattern) in BORROWED_SPREAD:
        if (item.section, item.stem) != (section, stem) or not re.search(pattern, item.expression):
            continue
        found = [
            expectation["tolerance"]
            for expectation in current.get(source_section, {}).get(source_stem, [])
            if re.search(source_pattern, expectation["figure"]) and "tolerance" in expectation
        ]
        if not found:
            raise ValueError(
                f"{item.stem}:{item.expression} borrows from {source_section}/{source_stem}, which has none"
            )
        return max(found)
    return 0.0


def expectation_of(item: Observed, tolerance: float | None) -> tuple[dict | None, str | None]:
    """The expectation of one observed figure (None: a false target), and a note for a flaky target."""
    if isinstance(item.reference, bool):
        if not item.reference:
            return None, None
        if all(value is True for value in item.others):
            return {"figure": item.expression, "expected": True}, None
        note = f"true in the reference, false in {item.others.count(False)} of {len(item.others)} other run(s)"
        return {"figure": item.expression, "flaky": note}, f"{item.stem} {item.expression}: {note}"
    values = [item.reference, *[value for value in item.others if numeric(value)]]
    expectation = {
        "figure": item.expression,
        "reference": _rounded(statistics.fmean(values)),  # the centre of the runs, not one lucky or unlucky run
        "better": figures.direction(item.expression),
        "tolerance": _rounded(tolerance),
        "spread": {"runs": len(values), "min": _rounded(min(values)), "max": _rounded(max(values))},
    }
    return expectation, None


def section_runs(folders: list[Path]) -> dict[str, list[dict]]:
    """Per section, the metrics of the reference run (first) and of each other run's outputs folder."""
    reference = results_table.REFERENCE_FOLDER
    return {
        "notes": [results_table.load_folder(reference), *[results_table.load_folder(f / "metrics") for f in folders]],
        "genres": [
            results_table.load_folder(reference / "genres"),
            *[results_table.load_folder(f / "datasets" / "genres" / "metrics") for f in folders],
        ],
    }


def names_of(runs_by_section: dict[str, list[dict]]) -> dict[str, set[str]]:
    """Per section, the keys that name things in its reference run's records."""
    return {section: figures.record_names(runs[0].values()) for section, runs in runs_by_section.items()}


def build(
    run_outputs: list[Path], sections: tuple[str, ...] = SECTIONS, *, only_new: bool = False
) -> tuple[dict, list[str]]:
    """The whole expectations file, and the flaky targets.

    Only ``sections`` are measured from the runs; any other section of :data:`SECTIONS` keeps its
    current expectations (the runs that measured it are not at hand, and a section measured from
    the reference alone would lose the spread its tolerances came from). With ``only_new``, a
    measured section keeps every expectation it has and gains those of the figures it did not watch
    yet (a stage that now runs on that dataset, a target that turned true).
    """
    current = ratchet.flat_to_sections(load_json(checks.EXPECTATIONS_PATH)) if checks.EXPECTATIONS_PATH.exists() else {}
    document: dict[str, dict[str, list[dict]]] = {
        section: current[section] for section in SECTIONS if section not in sections and section in current
    }
    flaky: list[str] = []
    runs = section_runs(run_outputs)
    observed = observe(runs, sections)
    tolerance_of = tolerances(observed, names_of(runs))
    watched = {
        (section, stem, expectation["figure"])
        for section, notebooks in current.items()
        for stem, expectations in notebooks.items()
        for expectation in expectations
    }
    for item in observed:
        if only_new and (item.section, item.stem, item.expression) in watched:
            continue
        expectation, note = expectation_of(item, tolerance_of.get((item.section, item.stem, item.expression)))
        if note:
            flaky.append(note)
        if expectation:
            document.setdefault(item.section, {}).setdefault(item.stem, []).append(expectation)
    if only_new:
        for section in sections:
            for stem, expectations in current.get(section, {}).items():
                document.setdefault(section, {}).setdefault(stem, [])[:0] = expectations
    bench_runs = results_table.load_folder(results_table.REFERENCE_FOLDER)
    for render in renders(results_table.REFERENCE_FOLDER)["bench"]:
        for stem, figure in figures.quoted_figures(render, bench_runs):
            expectation = bench_expectation(figure, checks.evaluate(bench_runs[stem], figure))
            figures_of = document.setdefault("bench", {}).setdefault(stem, [])
            if expectation and all(existing["figure"] != figure for existing in figures_of):
                figures_of.append(expectation)
    document[checks.EVERY_DATASET] = {
        stem: [{"figure": figure, "expected": True} for figure in names] for stem, names in EVERY_DATASET.items()
    }
    return document, flaky


def leave_one_out(run_outputs: list[Path], sections: tuple[str, ...] = SECTIONS) -> str:
    """For each run (reference included), how many figures fall outside tolerances measured without it
    (either side): an estimate of how often a new machine's run would fail `make check`."""
    runs = section_runs(run_outputs)
    labels = ["reference run", *[str(folder) for folder in run_outputs]]
    lines = []
    for left_out, label in enumerate(labels):
        kept = {
            section: [run for index, run in enumerate(found) if index != left_out] for section, found in runs.items()
        }
        observed = observe(kept, sections)
        tolerance_of = tolerances(observed, names_of(kept))
        outside, total, worst = 0, 0, []
        for item in observed:
            if not numeric(item.reference):
                continue
            try:
                value = checks.evaluate(runs[item.section][left_out][item.stem], item.expression)
            except (KeyError, TypeError):
                continue
            tolerance = tolerance_of[item.section, item.stem, item.expression]
            centre = statistics.fmean([item.reference, *[v for v in item.others if numeric(v)]])
            total += 1
            if abs(value - centre) > tolerance + 1e-9:
                outside += 1
                worst.append(f"{item.stem}:{item.expression} {item.reference:.4g} -> {value:.4g} (±{tolerance:.3g})")
        lines.append(f"  leaving out the {label}: {outside} of {total} figures outside (either side)")
        lines += [f"    {line}" for line in worst[:12]]
    return "\n".join(lines)


def widen(document: dict, run_outputs: Path, sections: tuple[str, ...]) -> tuple[dict, list[str]]:
    """Widen the expectations of ``sections`` to one more run's outputs (a run on another machine,
    or a rerun here that fell outside). A figure outside its tolerance on the worse side (as `make
    check` judges it) gets SPREAD_FACTOR times its distance from the reference, and its ``spread``
    the new value; a target expected True that is false in the run becomes flaky (the ratchet asks
    why). Returns the document and one line per change.
    """
    runs = section_runs([run_outputs])
    changes = []
    for section in sections:
        run = runs[section][1]
        for stem, expectations in document.get(section, {}).items():
            for index, expectation in enumerate(expectations):
                try:
                    value = checks.evaluate(run[stem], expectation["figure"])
                except (KeyError, TypeError):
                    continue
                if expectation.get("expected") is True and value is False:
                    note = f"expected True, false in a later run ({run_outputs})"
                    expectations[index] = {"figure": expectation["figure"], "flaky": note}
                    changes.append(f"{section}/{stem}:{expectation['figure']}: now flaky")
                elif "tolerance" in expectation and numeric(value) and not checks.within(expectation, value):
                    distance = abs(value - expectation["reference"])
                    if distance > expectation["tolerance"]:
                        expectation["tolerance"] = _rounded(SPREAD_FACTOR * distance)
                        spread = expectation.setdefault("spread", {"runs": 1, "min": value, "max": value})
                        spread["runs"] += 1
                        spread["min"], spread["max"] = (
                            _rounded(min(spread["min"], value)),
                            _rounded(max(spread["max"], value)),
                        )
                        changes.append(
                            f"{section}/{stem}:{expectation['figure']}: {value:.4g} against "
                            f"{expectation['reference']:.4g}, tolerance now {expectation['tolerance']:g}"
                        )
    return document, changes


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="other seeds' outputs folders")
    parser.add_argument("--write", action="store_true", help="replace lib/expectations.json (through the ratchet)")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="measure only these sections from the runs; the others keep their expectations",
    )
    parser.add_argument(
        "--widen-with",
        type=Path,
        help="keep every expectation, widened to this run's outputs where it falls outside (see widen())",
    )
    parser.add_argument(
        "--only-new",
        action="store_true",
        help="keep every current expectation; measure only the figures not watched yet",
    )
    ratchet.add_accept_option(parser)
    options = parser.parse_args(arguments)
    sections = tuple(options.sections)
    if options.widen_with:
        current = ratchet.flat_to_sections(load_json(checks.EXPECTATIONS_PATH))
        document, changes = widen(current, options.widen_with, sections)
        print("\n".join(changes) or "every figure of that run lies within its expectations")
        return ratchet.refresh(document, dict(options.accept_worse)) if options.write else 0
    document, flaky = build(options.runs, sections, only_new=options.only_new)
    counts = {section: sum(len(e) for e in notebooks.values()) for section, notebooks in document.items()}
    print(f"watched figures by section: {counts}")
    for line in flaky:
        print(f"flaky target (not watched as a boolean): {line}")
    if options.runs:
        print(leave_one_out(options.runs, sections))
    if options.write:
        return ratchet.refresh(document, dict(options.accept_worse))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
