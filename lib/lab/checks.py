"""``make check``: compare a full run's figures with committed expectations, and fail on regressions.

``lib/expectations.json`` has a section per dataset the reference run covers (``notes``,
``genres``), one for every dataset (``every_dataset``: facts that hold on any folder of music too)
and one for the benchmark (``bench``). Each lists, per metrics file, the watched figures::

    {"notes": {"01_autoencoder": [
        {"figure": "rows[method=autoencoder,latent_dim=8].log_mel_distance_db - rows[...].log_mel_distance_db",
         "reference": -3.05, "better": "lower", "tolerance": 0.12, "spread": {"runs": 3, "min": -3.1, "max": -3.0}},
        {"figure": "targets.beats_pca_at_every_size", "expected": true}]},
     "bench": {"bench": [
        {"figure": "realtime.autoencoder.end_to_end", "reference": 126, "better": "higher", "factor": 3}]}}

A figure is an expression (:func:`evaluate`): a path of dotted keys with ``[field=value,...]``
selectors, ``A / B`` or ``A - B`` of two paths (a figure beside the same run's yardstick), or
``min_ratio(A, B)`` / ``max_ratio(A, B)`` of two records with the same keys. ``better`` is
``lower``, ``higher`` or ``near`` (either way counts); ``tolerance`` is absolute and comes from the
spread measured over several seeds (``scripts/measure_spread.py``, recorded in ``spread``);
``factor`` (the benchmark) allows a machine that many times slower or larger. A target that was
true in the reference run but false in another seed's run is listed with ``flaky`` (why) and not
checked: its figures are.

``python -m lib.lab.checks`` checks the chosen dataset's run (``LML_DATASET``): the notes with notebook
05 (which ``make run-all`` runs on the genre collections), the genre collections, or a folder
(``every_dataset`` only), plus the benchmark when ``make bench`` has written its file. It prints
every figure that failed and a count per metrics file (``--all``: every figure), and exits 1 when
any figure regressed or is missing.

:func:`claim` is the check cells' assertion: it prints ``<text>: True`` and raises when false.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.core.fileio import load_json
from lib.core.paths import (
    DEFAULT_CLIP_SECONDS,
    DEFAULT_DATASET,
    PROJ_ROOT,
    SHIPPED_DATASETS,
    clip_seconds_choice,
    dataset_choice,
    metrics_path,
)

EXPECTATIONS_PATH = PROJ_ROOT / "lib" / "expectations.json"
EVERY_DATASET, BENCH = "every_dataset", "bench"
BENCH_FILES = ("bench", "bench_preparation")
_SELECTOR = re.compile(r"^(?P<key>[^\[]*)\[(?P<match>[^\]]+)\]$")
_FUNCTION = re.compile(r"^(?P<name>min_ratio|max_ratio)\((?P<first>[^,]+),\s*(?P<second>[^)]+)\)$")


class ClaimFailedError(AssertionError):
    """A check cell's claim is false."""


def claim(text: str, holds: Any) -> None:
    """Print ``<text>: <holds>`` (the line nbval compares) and raise :class:`ClaimFailedError` when false.

    Check cells use it so that a false line fails the notebook in every run, not only under nbval.
    """
    holds = bool(holds)
    print(f"{text}: {holds}")
    if not holds:
        raise ClaimFailedError(text)


def resolve(record: Any, figure: str) -> Any:
    """The value at ``figure`` (dotted keys, ``[field=value,...]`` list selectors) in a metrics record.

    Raises KeyError naming the part of the path that does not exist.
    """
    value = record
    parts = _split_path(figure)
    while parts:
        part = parts.pop(0)
        if isinstance(value, dict):  # the longest key that exists: keys may hold dots (a grid offset "0.25")
            for extra in range(len(parts), 0, -1):
                joined = ".".join([part, *parts[:extra]])
                if joined in value:
                    part, parts = joined, parts[extra:]
                    break
        selector = _SELECTOR.match(part)
        key = selector.group("key") if selector else part
        if key:
            if not isinstance(value, dict) or key not in value:
                raise KeyError(f"{figure}: no {key!r}")
            value = value[key]
        if selector:
            wanted = dict(pair.split("=", 1) for pair in selector.group("match").split(","))
            matches = [
                item
                for item in (value if isinstance(value, list) else [])
                if isinstance(item, dict) and all(_same(item.get(k), v) for k, v in wanted.items())
            ]
            if len(matches) != 1:
                raise KeyError(f"{figure}: {len(matches)} records match [{selector.group('match')}]")
            value = matches[0]
    return value


def _split_path(figure: str) -> list[str]:
    """Dotted parts of a path; dots inside ``[...]`` (``implementation=lib.inversion``) do not split."""
    parts, depth, current = [], 0, ""
    for character in figure:
        depth += {"[": 1, "]": -1}.get(character, 0)
        if character == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += character
    return [*parts, current]


def _same(value: Any, text: str) -> bool:
    """Does a record's field equal a selector's text? Numbers compare as numbers (8 matches 8.0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(text) == float(value)
        except ValueError:
            return False
    return str(value) == text


def evaluate(record: Any, expression: str) -> Any:
    """The value of a watched expression: a path, ``A / B``, ``A - B``, ``min_ratio(A, B)`` or
    ``max_ratio(A, B)`` (the lowest / highest ``A[k] / B[k]`` over B's keys with ``B[k] > 0``)."""
    function = _FUNCTION.match(expression)
    if function:
        first, second = resolve(record, function.group("first").strip()), resolve(record, function.group("second"))
        ratios = [first[key] / value for key, value in second.items() if value > 0]
        if not ratios:
            raise KeyError(f"{expression}: no keys to compare")
        return min(ratios) if function.group("name") == "min_ratio" else max(ratios)
    for operator in (" / ", " - "):
        if operator in expression:
            first, second = (resolve(record, part.strip()) for part in expression.split(operator, 1))
            if operator == " - ":
                return first - second
            return first / second if second else math.inf
    return resolve(record, expression)


@dataclass
class CheckResult:
    """One expectation against one run."""

    notebook: str
    figure: str
    expected: str  # what was asked, in words
    value: Any  # what the run holds (None when missing)
    passed: bool


def describe(expectation: dict) -> str:
    """What an expectation asks, in a few characters: ``= True``, ``≤ 4.1 (±0.3)``, ``≥ 126 (÷3)``."""
    if "flaky" in expectation:
        return "(flaky: not checked)"
    if "expected" in expectation:
        return f"= {expectation['expected']}"
    better, reference = expectation["better"], expectation["reference"]
    if better not in ("lower", "higher", "near"):
        raise ValueError(f"{expectation['figure']}: 'better' must be lower, higher or near, got {better!r}")
    bound = {"lower": "≤", "higher": "≥", "near": "≈"}[better]
    if "factor" in expectation:
        return f"{bound} {reference:.4g} ({'×' if better == 'lower' else '÷'}{expectation['factor']:g})"
    return f"{bound} {reference:.4g} (±{expectation['tolerance']:.3g})"


def within(expectation: dict, value: Any) -> bool:
    """Does ``value`` meet a numeric or boolean expectation?"""
    if "expected" in expectation:
        return value == expectation["expected"]
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        return False
    better, reference = expectation["better"], expectation["reference"]
    if "factor" in expectation:  # machine-dependent figures: a factor either way that is allowed
        factor = expectation["factor"]
        low, high = reference / factor, reference * factor
        return {"lower": value <= high, "higher": value >= low, "near": low <= value <= high}[better]
    tolerance = expectation["tolerance"] + 1e-9 * max(1.0, abs(reference))  # float rounding of the reference
    return {
        "lower": value <= reference + tolerance,
        "higher": value >= reference - tolerance,
        "near": abs(value - reference) <= tolerance,
    }[better]


def check_expectation(notebook: str, record: dict | None, expectation: dict) -> CheckResult:
    """Compare one figure of ``record`` (a notebook's metrics, or None when absent) with its expectation."""
    figure, wanted = expectation["figure"], describe(expectation)
    if record is None:
        return CheckResult(notebook, figure, wanted, None, False)
    try:
        value = evaluate(record, figure)
    except (KeyError, TypeError, ZeroDivisionError):
        return CheckResult(notebook, figure, wanted, None, False)
    return CheckResult(notebook, figure, wanted, value, within(expectation, value))


# Metrics files written on request, not by `make run-all`: `lml report` (`make recordings`).
ON_REQUEST = frozenset({"recordings"})


def notebook_dataset(notebook: Path) -> str | None:
    """The dataset a notebook always works on (metadata ``latent_music_lab.dataset``), or None."""
    if not notebook.exists():
        return None
    metadata = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    return metadata.get("latent_music_lab", {}).get("dataset")


def stage_dataset(notebook: Path, dataset: str | None = None) -> str:
    """The dataset whose outputs a notebook writes in a run of ``dataset`` (default ``LML_DATASET``).

    A notebook with a dataset of its own (notebook 05: the genre collections) works on it in the notes'
    run and in its own; on a folder it works on the folder (notebook 05 on the folder's labels).
    """
    dataset = dataset_choice() if dataset is None else dataset
    own = notebook_dataset(notebook)
    return own if own and dataset in (DEFAULT_DATASET, own) else dataset


def section_name(dataset: str) -> str | None:
    """The section of the expectations for a dataset: its own name if shipped (at its reference clip
    length, 1 s), else None (a folder, or the genres cut at another ``CLIP_SECONDS``)."""
    at_reference_length = dataset != dataset_choice() or clip_seconds_choice() == DEFAULT_CLIP_SECONDS
    shipped = dataset in SHIPPED_DATASETS and at_reference_length
    return dataset if shipped else None


@dataclass
class Watch:
    """The expectations of one metrics file, and where that file is."""

    section: str
    notebook: str
    expectations: list[dict]
    path: Path


def watches(expectations: dict, dataset: str | None = None) -> Iterator[Watch]:
    """Every (section, metrics file) that a run of ``dataset`` is checked against.

    The notes' run also covers the stages that run on a dataset of their own (notebook 05 on the
    genre collections); a folder gets ``every_dataset`` only; the benchmark section, and files that a
    command other than ``make run-all`` writes (:data:`ON_REQUEST`), are included when their file exists.
    """
    dataset = dataset_choice() if dataset is None else dataset
    own = section_name(dataset)
    if own is not None:
        for notebook, figures in expectations.get(own, {}).items():
            path = metrics_path(notebook, dataset=dataset)
            if notebook in ON_REQUEST and not path.exists():
                continue
            yield Watch(own, notebook, figures, path)
        if own == DEFAULT_DATASET:
            for section, notebooks in expectations.items():
                for notebook, figures in notebooks.items() if section in SHIPPED_DATASETS else ():
                    if section != own and notebook_dataset(PROJ_ROOT / "notebooks" / f"{notebook}.ipynb") == section:
                        yield Watch(section, notebook, figures, metrics_path(notebook, dataset=section))
    for notebook, figures in expectations.get(EVERY_DATASET, {}).items():
        path = metrics_path(notebook, dataset=dataset)
        if path.exists() and "skipped" in load_json(path):
            continue  # a stage the dataset cannot run says so in its own file
        yield Watch(EVERY_DATASET, notebook, figures, path)
    if own == DEFAULT_DATASET:
        for notebook, figures in expectations.get(BENCH, {}).items():
            path = metrics_path(notebook, dataset=DEFAULT_DATASET)
            if path.exists():
                yield Watch(BENCH, notebook, figures, path)


def run_checks(
    expectations: dict[str, list[dict]], metrics_folder_of: Callable[[str], Path] | None = None
) -> list[CheckResult]:
    """Check a section's expectations (notebook -> figures) against the files ``metrics_folder_of`` names."""
    results = []
    for notebook, figures in expectations.items():
        path = Path(metrics_folder_of(notebook)) if metrics_folder_of else metrics_path(notebook)
        record = load_json(path) if path.exists() else None
        results.extend(
            check_expectation(notebook, record, expectation) for expectation in figures if checked(expectation)
        )
    return results


def check_run(expectations: dict, dataset: str | None = None) -> list[CheckResult]:
    """Every check that applies to the chosen dataset's last run (see :func:`watches`)."""
    results = []
    for watch in watches(expectations, dataset):
        record = load_json(watch.path) if watch.path.exists() else None
        name = f"{watch.section}/{watch.notebook}"
        results.extend(
            check_expectation(name, record, expectation) for expectation in watch.expectations if checked(expectation)
        )
    return results


def checked(expectation: dict) -> bool:
    """Is this expectation checked? A *flaky* target (true in the reference run, false in another
    seed's) is listed, with its record, but watched through its figures only."""
    return "flaky" not in expectation


def dumps_expectations(document: dict) -> str:
    """An expectations document as JSON with one expectation per line (a diff shows which figure moved)."""
    lines = ["{"]
    sections = list(document.items())
    for section_index, (section, notebooks) in enumerate(sections):
        lines.append(f"  {json.dumps(section)}: {{")
        items = list(notebooks.items())
        for notebook_index, (notebook, expectations) in enumerate(items):
            lines.append(f"    {json.dumps(notebook)}: [")
            lines += [
                f"      {json.dumps(expectation, ensure_ascii=False)}" + ("," if index < len(expectations) - 1 else "")
                for index, expectation in enumerate(expectations)
            ]
            lines.append("    ]" + ("," if notebook_index < len(items) - 1 else ""))
        lines.append("  }" + ("," if section_index < len(sections) - 1 else ""))
    return "\n".join([*lines, "}"]) + "\n"


def format_table(results: list[CheckResult], *, every_row: bool = True) -> str:
    """A plain-text table: notebook, figure, expectation, value, ok / REGRESSED / MISSING."""
    lines = [f"{'notebook':<28} {'figure':<80} {'expected':<24} {'value':>10}  status"]
    for result in results:
        if result.passed and not every_row:
            continue
        value = result.value
        shown_value = "—" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
        status = "ok" if result.passed else "MISSING" if value is None else "REGRESSED"
        lines.append(f"{result.notebook:<28} {result.figure:<80} {result.expected:<24} {shown_value:>10}  {status}")
    return "\n".join(lines)


def summary(results: list[CheckResult]) -> str:
    """One line per metrics file: how many of its watched figures are within their expectations."""
    counts: dict[str, list[int]] = {}
    for result in results:
        passed_total = counts.setdefault(result.notebook, [0, 0])
        passed_total[0] += result.passed
        passed_total[1] += 1
    return "\n".join(f"  {name:<30} {passed} of {total}" for name, (passed, total) in counts.items())


def main(arguments: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if arguments is None else arguments
    dataset = dataset_choice()
    results = check_run(load_json(EXPECTATIONS_PATH), dataset)
    failed = [r for r in results if not r.passed]
    if failed or "--all" in arguments:
        print(format_table(results, every_row="--all" in arguments))
    if section_name(dataset) is None:
        print(
            f"DATASET={dataset} (clips of {clip_seconds_choice():g} s) has no reference run: "
            "only the facts that hold on any dataset are checked"
        )
    print(summary(results))
    print(f"figures within their expectations: {len(results) - len(failed)} of {len(results)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
