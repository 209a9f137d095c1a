"""``make check``: compare a full run's figures with committed expectations, and fail on regressions.

``lib/expectations.json`` lists, per notebook, the figures that matter with the value of a
reference run, which way is better and how far a run may fall behind before it counts as a
regression (absolute tolerance)::

    {"01_autoencoder": [
        {"figure": "rows[method=autoencoder,latent_dim=8].log_mel_distance_db",
         "reference": 4.09, "better": "lower", "tolerance": 0.4},
        {"figure": "targets.beats_pca_at_every_size", "expected": true}]}

A figure path is dotted keys; ``[field=value,...]`` picks the element of a list of records whose
fields match. ``better`` is ``lower``, ``higher`` or ``near`` (either way counts). Running
``python -m lib.checks`` prints one table row per figure and exits 1 when any figure regressed,
is missing, or its metrics file is absent. A stage with a dataset of its own (notebook 05, the
genre collections) is read from that dataset's outputs.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.fileio import load_json
from lib.paths import DEFAULT_DATASET, PROJ_ROOT, dataset_choice, metrics_path

EXPECTATIONS_PATH = PROJ_ROOT / "lib" / "expectations.json"
_SELECTOR = re.compile(r"^(?P<key>[^\[]*)\[(?P<match>[^\]]+)\]$")


def resolve(record: Any, figure: str) -> Any:
    """The value at ``figure`` (dotted keys, ``[field=value,...]`` list selectors) in a metrics record.

    Raises KeyError naming the part of the path that does not exist.
    """
    value = record
    for part in figure.split("."):
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


def _same(value: Any, text: str) -> bool:
    """Does a record's field equal a selector's text? Numbers compare as numbers (8 matches 8.0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(text) == float(value)
        except ValueError:
            return False
    return str(value) == text


@dataclass
class CheckResult:
    """One expectation against one run."""

    notebook: str
    figure: str
    expected: str  # what was asked, in words
    value: Any  # what the run holds (None when missing)
    passed: bool


def check_expectation(notebook: str, record: dict | None, expectation: dict) -> CheckResult:
    """Compare one figure of ``record`` (a notebook's metrics, or None when absent) with its expectation."""
    figure = expectation["figure"]
    if "expected" in expectation:
        wanted = f"= {expectation['expected']}"
    else:
        better, reference, tolerance = expectation["better"], expectation["reference"], expectation["tolerance"]
        if better not in ("lower", "higher", "near"):
            raise ValueError(f"{notebook} {figure}: 'better' must be lower, higher or near, got {better!r}")
        bound = {"lower": "≤", "higher": "≥", "near": "≈"}[better]
        wanted = (
            f"{bound} {reference:g} ± {tolerance:g}" if better == "near" else f"{bound} {reference:g} (±{tolerance:g})"
        )
    if record is None:
        return CheckResult(notebook, figure, wanted, None, False)
    try:
        value = resolve(record, figure)
    except KeyError:
        return CheckResult(notebook, figure, wanted, None, False)
    if "expected" in expectation:
        return CheckResult(notebook, figure, wanted, value, value == expectation["expected"])
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        return CheckResult(notebook, figure, wanted, value, False)
    passed = {
        "lower": value <= reference + tolerance,
        "higher": value >= reference - tolerance,
        "near": abs(value - reference) <= tolerance,
    }[better]
    return CheckResult(notebook, figure, wanted, value, passed)


def stage_metrics_path(notebook: str) -> Path:
    """A stage's metrics file: the notes' outputs, or the stage's own dataset's (notebook 05: genres)."""
    from lib.report import notebook_dataset

    source = PROJ_ROOT / "notebooks" / f"{notebook}.ipynb"
    return metrics_path(notebook, dataset=notebook_dataset(source) if source.exists() else None)


def run_checks(expectations: dict[str, list[dict]], metrics_folder_of=stage_metrics_path) -> list[CheckResult]:
    """Check every expectation against the metrics files that ``metrics_folder_of(notebook)`` names."""
    results = []
    for notebook, figures in expectations.items():
        path = Path(metrics_folder_of(notebook))
        record = load_json(path) if path.exists() else None
        results.extend(check_expectation(notebook, record, expectation) for expectation in figures)
    return results


def format_table(results: list[CheckResult]) -> str:
    """A plain-text table: notebook, figure, expectation, value, ok / REGRESSED / MISSING."""
    lines = [f"{'notebook':<24} {'figure':<66} {'expected':<22} {'value':>10}  status"]
    for result in results:
        value = result.value
        shown = "—" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
        status = "ok" if result.passed else "MISSING" if value is None else "REGRESSED"
        lines.append(f"{result.notebook:<24} {result.figure:<66} {result.expected:<22} {shown:>10}  {status}")
    return "\n".join(lines)


def main() -> int:
    if dataset_choice() != DEFAULT_DATASET:
        print(f"lib/expectations.json covers the notes dataset only: nothing to check for DATASET={dataset_choice()}")
        return 0
    results = run_checks(load_json(EXPECTATIONS_PATH))
    print(format_table(results))
    failed = [r for r in results if not r.passed]
    print(f"\nfigures within their expectations: {len(results) - len(failed)} of {len(results)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
