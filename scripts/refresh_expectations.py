"""Set the reference values of lib/expectations.json to the last full run's figures.

Run after a full `make run-all` whose figures should become the new reference (for example after
a change that moves every figure on purpose, such as a new phase reconstruction). Directions
(``better``) and tolerances are kept; expectations on booleans (``expected``) are left alone and
reported when the run disagrees with them. `make check` then compares later runs with this one.

Usage: ``.venv/bin/python scripts/refresh_expectations.py``
"""

from __future__ import annotations

import sys

from lib.checks import EXPECTATIONS_PATH, resolve, stage_metrics_path
from lib.fileio import load_json, save_json


def main() -> int:
    expectations = load_json(EXPECTATIONS_PATH)
    changed, disagreeing = 0, []
    for notebook, figures in expectations.items():
        path = stage_metrics_path(notebook)
        if not path.exists():
            print(f"no metrics for {notebook} ({path}): run `make run-all` first", file=sys.stderr)
            return 1
        record = load_json(path)
        for expectation in figures:
            value = resolve(record, expectation["figure"])
            if "expected" in expectation:
                if value != expectation["expected"]:
                    disagreeing.append(
                        f"{notebook} {expectation['figure']}: expected {expectation['expected']}, ran {value}"
                    )
                continue
            new = round(float(value), 4)
            if new != expectation["reference"]:
                print(f"{notebook} {expectation['figure']}: {expectation['reference']} -> {new}")
                expectation["reference"] = new
                changed += 1
    save_json(EXPECTATIONS_PATH, expectations, overwrite=True)
    print(f"{changed} reference value(s) updated")
    for line in disagreeing:
        print(f"left alone (a boolean expectation): {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
