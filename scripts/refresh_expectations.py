"""Make the last full run the reference of lib/expectations.json, through the ratchet.

Run after a full `make run-all` (and `make run-all DATASET=genres`) whose figures should become
the reference, for example after a change that moves figures on purpose. Tolerances are kept
(they come from the spread over seeds: ``scripts/measure_spread.py``). A figure that improved
beyond its tolerance takes the new reference; one within its tolerance keeps the old one; one
that got worse beyond its tolerance, and a target that was true and is not, are refused unless
named with a reason (``--accept-worse KEY "why"``), which ``docs/accepted_tradeoffs.json`` records
and the README and the report show (:mod:`lib.lab.ratchet`).

Usage::

    .venv/bin/python scripts/refresh_expectations.py [--accept-worse KEY "why" ...]
"""

from __future__ import annotations

import argparse
import copy
import sys

from lib.core.fileio import load_json
from lib.core.paths import DEFAULT_DATASET, SHIPPED_DATASETS, metrics_path
from lib.lab import checks, ratchet


def candidate_from_run(current: dict, datasets: tuple[str, ...] = SHIPPED_DATASETS) -> tuple[dict, list[str]]:
    """The expectations with every watched figure's reference set to the last run's value.

    A section whose metrics are missing is kept as it is (and named in the returned notes); a
    target that is no longer true is left out of the candidate (the ratchet then asks why).
    """
    candidate, notes = copy.deepcopy(current), []
    for section in datasets:
        for notebook, expectations in candidate.get(section, {}).items():
            path = metrics_path(notebook, dataset=section if section in SHIPPED_DATASETS else DEFAULT_DATASET)
            if not path.exists():
                notes.append(f"{section}/{notebook}: no metrics at {path}, kept as it is")
                continue
            record, kept = load_json(path), []
            for expectation in expectations:
                if "flaky" in expectation:
                    kept.append(expectation)  # listed, not checked: no reference to move
                    continue
                try:
                    value = checks.evaluate(record, expectation["figure"])
                except (KeyError, TypeError):
                    continue  # a figure the run lacks: the ratchet reports it as no longer watched
                if "expected" in expectation:
                    if value is True:
                        kept.append(expectation)
                    continue
                kept.append({**expectation, "reference": float(f"{float(value):.4g}")})
            candidate[section][notebook] = kept
    return candidate, notes


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ratchet.add_accept_option(parser)
    options = parser.parse_args(arguments)
    current = ratchet.flat_to_sections(load_json(checks.EXPECTATIONS_PATH))
    candidate, notes = candidate_from_run(current)
    for line in notes:
        print(line)
    return ratchet.refresh(candidate, dict(options.accept_worse))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
