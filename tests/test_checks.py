"""`make check`: figure paths, tolerances in each direction, missing figures, the committed expectations."""

from __future__ import annotations

import json

import pytest

from lib import checks
from lib.paths import PROJ_ROOT

RECORD = {
    "rows": [
        {"method": "autoencoder", "latent_dim": 8.0, "db": 4.0},
        {"method": "pca", "latent_dim": 8.0, "db": 9.0},
        {"method": "oracle", "latent_dim": None, "db": 0.4},
    ],
    "targets": {"beats_pca": True},
    "judge": {"accuracy": 0.97},
}


def test_resolve_walks_keys_and_selects_records():
    assert checks.resolve(RECORD, "rows[method=pca,latent_dim=8].db") == 9.0
    assert checks.resolve(RECORD, "rows[method=oracle].db") == 0.4
    assert checks.resolve(RECORD, "judge.accuracy") == 0.97
    with pytest.raises(KeyError, match="0 records match"):
        checks.resolve(RECORD, "rows[method=mp3].db")
    with pytest.raises(KeyError, match="2 records match"):
        checks.resolve(RECORD, "rows[latent_dim=8].db")
    with pytest.raises(KeyError, match="no 'missing'"):
        checks.resolve(RECORD, "judge.missing")


@pytest.mark.parametrize(
    ("expectation", "passed"),
    [
        ({"figure": "rows[method=autoencoder].db", "reference": 3.8, "better": "lower", "tolerance": 0.3}, True),
        ({"figure": "rows[method=autoencoder].db", "reference": 3.5, "better": "lower", "tolerance": 0.3}, False),
        ({"figure": "judge.accuracy", "reference": 1.0, "better": "higher", "tolerance": 0.05}, True),
        ({"figure": "judge.accuracy", "reference": 1.0, "better": "higher", "tolerance": 0.01}, False),
        ({"figure": "rows[method=pca].db", "reference": 9.2, "better": "near", "tolerance": 0.1}, False),
        ({"figure": "rows[method=pca].db", "reference": 9.05, "better": "near", "tolerance": 0.1}, True),
        ({"figure": "targets.beats_pca", "expected": True}, True),
        ({"figure": "targets.beats_pca", "expected": False}, False),
        ({"figure": "targets.nothing", "expected": True}, False),
    ],
)
def test_each_direction_and_tolerance(expectation, passed):
    assert checks.check_expectation("01", RECORD, expectation).passed is passed


def test_missing_metrics_fail_and_the_table_says_why(tmp_path):
    (tmp_path / "present.json").write_text(json.dumps(RECORD))
    expectations = {
        "present": [{"figure": "judge.accuracy", "reference": 1.0, "better": "higher", "tolerance": 0.01}],
        "absent": [{"figure": "judge.accuracy", "reference": 1.0, "better": "higher", "tolerance": 0.5}],
    }
    results = checks.run_checks(expectations, lambda name: tmp_path / f"{name}.json")
    assert [r.passed for r in results] == [False, False]
    table = checks.format_table(results)
    assert "REGRESSED" in table and "MISSING" in table


def test_committed_expectations_name_real_notebooks_and_valid_rules():
    expectations = json.loads(checks.EXPECTATIONS_PATH.read_text())
    notebooks = {path.stem for path in (PROJ_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert set(expectations) <= notebooks
    for figures in expectations.values():
        for expectation in figures:
            assert "expected" in expectation or (
                expectation["better"] in ("lower", "higher", "near") and expectation["tolerance"] >= 0
            )
