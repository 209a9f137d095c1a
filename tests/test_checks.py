"""`make check`: figure paths, tolerances in each direction, missing figures, the committed expectations."""

from __future__ import annotations

import copy
import json
import sys

import numpy as np
import pytest

from lib.core.paths import PROJ_ROOT
from lib.lab import checks, figures, ratchet

sys.path.insert(0, str(PROJ_ROOT / "scripts"))
import measure_spread
import refresh_expectations
import results_table

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


def test_expressions_compare_a_figure_with_the_same_runs_yardstick():
    record = {
        "rows": RECORD["rows"],
        "generators": {"vae": {"frechet_distance": 30.0}, "real_floor": {"frechet_distance": 20.0}},
        "shares": {"a": 0.2, "b": 0.8},
        "real": {"a": 0.5, "b": 0.5},
    }
    assert checks.evaluate(record, "generators.vae.frechet_distance / generators.real_floor.frechet_distance") == 1.5
    assert checks.evaluate(record, "rows[method=autoencoder].db - rows[method=pca].db") == -5.0
    assert checks.evaluate(record, "min_ratio(shares, real)") == 0.4
    assert checks.evaluate(record, "max_ratio(shares, real)") == 1.6
    # A selector's value may hold dots (a module name): they do not split the path.
    sweep = {"sweep": [{"implementation": "lib.inversion", "iterations": 16, "db": 0.3}]}
    assert checks.evaluate(sweep, "sweep[implementation=lib.inversion,iterations=16].db") == 0.3


def test_a_factor_bounds_machine_dependent_figures_both_ways():
    speed = {"figure": "judge.accuracy", "reference": 100.0, "better": "higher", "factor": 3}
    assert checks.within(speed, 40.0) and not checks.within(speed, 30.0) and checks.within(speed, 1000.0)
    memory = {"figure": "judge.accuracy", "reference": 100.0, "better": "lower", "factor": 1.5}
    assert checks.within(memory, 140.0) and not checks.within(memory, 160.0)


def test_claim_prints_the_line_and_raises_when_false(capsys):
    checks.claim("the codec beats PCA", True)
    assert capsys.readouterr().out == "the codec beats PCA: True\n"
    with pytest.raises(checks.ClaimFailedError, match="the oracle"):
        checks.claim("the oracle is the floor", np.float64(1.0) < 0.5)
    assert capsys.readouterr().out == "the oracle is the floor: False\n"


def test_the_readme_generator_is_traced_to_the_figures_it_reads():
    def render(runs):
        stage = runs["01_autoencoder"]
        best = min(row["db"] for row in stage["rows"] if row["method"] != "oracle")
        return f"{best} {stage['judge'].get('accuracy')} {sum(stage['counts'].values())} {stage['targets']['ok']}"

    runs = {"01_autoencoder": {**RECORD, "counts": {"train": 3, "test": 1}, "targets": {"ok": True}}}
    assert figures.quoted_figures(render, runs) == [
        ("01_autoencoder", "rows[method=autoencoder,latent_dim=8].db"),
        ("01_autoencoder", "rows[method=pca,latent_dim=8].db"),
        ("01_autoencoder", "judge.accuracy"),
        ("01_autoencoder", "counts.train"),
        ("01_autoencoder", "counts.test"),
        ("01_autoencoder", "targets.ok"),
    ]


def test_watched_forms_use_the_runs_own_yardsticks():
    assert figures.watched_forms("03_vae", "generators.vae.frechet_distance") == [
        "generators.vae.frechet_distance / generators.real_floor.frechet_distance"
    ]
    assert figures.watched_forms("03_vae", "generators.real_floor.frechet_distance") == [
        "generators.real_floor.frechet_distance"
    ]
    codec = "rows[method=autoencoder,latent_dim=8].log_mel_distance_db"
    assert figures.watched_forms("01_autoencoder", codec) == [
        f"{codec} - rows[method=pca,latent_dim=8].log_mel_distance_db"
    ]
    assert figures.direction(f"{codec} - rows[method=pca,latent_dim=8].log_mel_distance_db") == "lower"
    assert figures.direction("rows[method=pca,latent_dim=8].log_mel_distance_db") == "near"
    assert figures.direction("conditional.pitch_accuracy") == "higher"
    ratio = "generators.vae.frechet_distance / generators.real_floor.frechet_distance"
    assert figures.direction(ratio) == "lower"  # the generator's side decides, not the yardstick's
    assert figures.direction("generators.real_floor.frechet_distance") == "near"
    shares = "min_ratio(unconditional.vae.family_shares, unconditional.real_family_shares)"
    assert figures.direction(shares) == "higher"
    assert figures.watched_forms("run_notebooks", "01_autoencoder.seconds") == []


# The committed expectations, against the committed reference run.
EXPECTATIONS = json.loads(checks.EXPECTATIONS_PATH.read_text())
REFERENCE = results_table.REFERENCE_FOLDER


def test_committed_expectations_name_real_notebooks_and_valid_rules():
    notebooks = {path.stem for path in (PROJ_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert set(EXPECTATIONS) == {"notes", "genres", "every_dataset", "bench"}
    for section, stages in EXPECTATIONS.items():
        assert set(stages) <= notebooks | set(checks.BENCH_FILES) | checks.ON_REQUEST, section
        for figures_of in stages.values():
            for expectation in figures_of:
                checks.describe(expectation)  # raises on an unknown direction
                assert (
                    "expected" in expectation
                    or "flaky" in expectation  # a target true in the reference, false in another seed: listed
                    or expectation.get("tolerance", expectation.get("factor", -1)) >= 0
                )


@pytest.mark.parametrize("section", ["notes", "genres", "bench"])
def test_the_reference_run_is_within_its_own_expectations(section):
    folder = REFERENCE / "genres" if section == "genres" else REFERENCE
    results = checks.run_checks(EXPECTATIONS[section], lambda name: folder / f"{name}.json")
    failed = [result for result in results if not result.passed]
    assert results and not failed, checks.format_table(failed)


@pytest.mark.parametrize(("section", "folder"), [("notes", REFERENCE), ("genres", REFERENCE / "genres")])
def test_every_figure_the_readme_quotes_is_watched(section, folder):
    runs = results_table.load_folder(folder)
    blocks = measure_spread.renders(REFERENCE)[section]  # the README's blocks of that section, whole recordings too
    quoted = [pair for block in blocks for pair in figures.quoted_figures(block, runs)]
    watched = {(stem, e["figure"]) for stem, figures_of in EXPECTATIONS[section].items() for e in figures_of}
    unwatched = [pair for pair in figures.expressions(quoted) if pair not in watched]
    false_targets = [pair for pair in unwatched if pair[1].startswith(("targets.", "comparisons."))]
    missing = [pair for pair in unwatched if pair not in false_targets]
    assert not missing, f"README figures without an expectation (run scripts/measure_spread.py): {missing[:5]}"
    # A target is watched when it is true in the reference, unless it is listed as flaky (at its
    # threshold, true in some seeds and not others: watched through the figure it thresholds).
    flaky = {
        (entry["notebook"], entry["figure"])
        for entry in ratchet.load_tradeoffs()
        if entry.get("new") == "flaky" and entry.get("section") == section
    }
    for stem, figure in false_targets:
        assert (stem, figure) in flaky or checks.evaluate(runs[stem], figure) is not True, (stem, figure)


def test_make_check_picks_the_sections_of_the_chosen_dataset(tmp_path, monkeypatch):
    expectations = {
        "notes": {"01_autoencoder": [{"figure": "judge.accuracy", "expected": 1}]},
        "genres": {"05_genres": [{"figure": "judge.accuracy", "expected": 1}], "03_vae": []},
        "every_dataset": {"01_autoencoder": [{"figure": "targets.beats_pca", "expected": True}]},
        "bench": {"bench": [{"figure": "judge.accuracy", "reference": 1, "better": "higher", "factor": 2}]},
    }
    sections = lambda dataset: sorted({(w.section, w.notebook) for w in checks.watches(expectations, dataset)})  # noqa: E731
    assert sections("notes") == [
        ("every_dataset", "01_autoencoder"),
        ("genres", "05_genres"),
        ("notes", "01_autoencoder"),
    ]
    assert sections("genres") == [("every_dataset", "01_autoencoder"), ("genres", "03_vae"), ("genres", "05_genres")]
    assert sections(str(tmp_path)) == [("every_dataset", "01_autoencoder")]


def test_a_file_written_on_request_is_checked_once_it_exists(tmp_path, monkeypatch):
    expectations = {"genres": {"06_recordings": [], "recordings": [{"figure": "targets.seams", "expected": True}]}}
    monkeypatch.setattr(checks, "metrics_path", lambda notebook, dataset=None, **_: tmp_path / f"{notebook}.json")
    watched = lambda: sorted(w.notebook for w in checks.watches(expectations, "genres"))  # noqa: E731
    assert watched() == ["06_recordings"]  # `make run-all` does not write `lml report`'s file
    (tmp_path / "recordings.json").write_text('{"targets": {"seams": false}}')
    assert watched() == ["06_recordings", "recordings"]
    assert [r.passed for r in checks.check_run(expectations, "genres") if r.notebook.endswith("recordings")] == [False]


# The ratchet.
OLD = {
    "notes": {
        "01_autoencoder": [
            {"figure": "codec_db", "reference": 4.0, "better": "lower", "tolerance": 0.2},
            {"figure": "accuracy", "reference": 0.9, "better": "higher", "tolerance": 0.02},
            {"figure": "targets.beats_pca", "expected": True},
        ]
    }
}


def _proposal(codec_db: float, accuracy: float = 0.9, beats_pca: bool = True) -> dict:
    proposal = copy.deepcopy(OLD)
    figures_of = proposal["notes"]["01_autoencoder"]
    figures_of[0]["reference"], figures_of[1]["reference"] = codec_db, accuracy
    if not beats_pca:
        del figures_of[2]
    return proposal


def test_the_ratchet_refuses_a_worse_figure_and_accepts_it_with_a_reason():
    refused = ratchet.apply(OLD, _proposal(codec_db=4.5))
    assert len(refused.refused) == 1 and "codec_db: 4.0 -> 4.5" in refused.refused[0]
    assert refused.document["notes"]["01_autoencoder"][0]["reference"] == 4.0  # nothing moved

    accepted = ratchet.apply(OLD, _proposal(codec_db=4.5), {"codec_db": "a fair price for generalisation"})
    assert not accepted.refused and accepted.document["notes"]["01_autoencoder"][0]["reference"] == 4.5
    (entry,) = accepted.accepted
    assert (entry["figure"], entry["old"], entry["new"]) == ("codec_db", 4.0, 4.5)
    assert entry["reason"] == "a fair price for generalisation" and entry["commit"]


def test_the_ratchet_locks_in_improvements_and_ignores_noise():
    proposal = _proposal(codec_db=4.15, accuracy=0.89)
    for figure, tolerance in zip(proposal["notes"]["01_autoencoder"], (0.05, 0.01)):
        figure["tolerance"] = tolerance  # runs that the old reference and tolerance already hold
    noise = ratchet.apply(OLD, proposal)
    assert not noise.refused and not noise.improved
    assert [e.get("reference") for e in noise.document["notes"]["01_autoencoder"][:2]] == [4.0, 0.9]
    better = ratchet.apply(OLD, _proposal(codec_db=3.5))
    assert better.improved and better.document["notes"]["01_autoencoder"][0]["reference"] == 3.5


def test_a_kept_reference_widens_its_tolerance_to_hold_the_new_runs_only_with_a_reason():
    proposal = _proposal(codec_db=4.15)
    proposal["notes"]["01_autoencoder"][0]["tolerance"] = 0.1  # the new runs: 4.15 +- 0.1
    refused = ratchet.apply(OLD, proposal)  # 4.0 +- 0.25 would hold them: a looser check, so say why
    assert len(refused.refused) == 1 and "codec_db: tolerance 0.2 -> 0.25" in refused.refused[0]
    assert refused.document["notes"]["01_autoencoder"][0]["tolerance"] == 0.2
    widened = ratchet.apply(OLD, proposal, {"codec_db": "the spread over three seeds is wider"})
    (kept, *_) = widened.document["notes"]["01_autoencoder"]
    assert not widened.refused and kept["reference"] == 4.0 and kept["tolerance"] == pytest.approx(0.25)
    (entry,) = widened.accepted
    assert (entry["figure"], entry["what"], entry["old"]) == ("codec_db", "tolerance", 0.2)
    assert entry["new"] == pytest.approx(0.25) and ratchet.shown_figure(entry) == "codec_db (tolerance)"
    proposal["notes"]["01_autoencoder"][0].update(reference=4.05, tolerance=0.05)
    narrow = ratchet.apply(OLD, proposal)
    assert not narrow.refused and not narrow.accepted  # within the old tolerance: nothing to say
    assert narrow.document["notes"]["01_autoencoder"][0]["tolerance"] == 0.2  # never narrower than the old
    proposal["notes"]["01_autoencoder"][0].update(reference=3.85, tolerance=0.3)  # better, spread 3.55-4.15
    (kept, *_) = ratchet.apply(OLD, proposal, {"codec_db": "wider spread"}).document["notes"]["01_autoencoder"]
    assert kept["reference"] == 4.0 and kept["tolerance"] == pytest.approx(0.2)  # the worse edge, 4.15, is held


def test_a_flaky_target_is_listed_not_checked_and_the_ratchet_asks_why_it_stopped_being_expected():
    flaky = {"figure": "targets.beats_pca", "flaky": "true in the reference, false in 1 of 2 other run(s)"}
    assert not checks.run_checks({"01": [flaky]}, lambda name: "/nonexistent.json")
    proposal = _proposal(codec_db=4.0)
    proposal["notes"]["01_autoencoder"][2] = flaky
    assert "now flaky" in ratchet.apply(OLD, proposal).refused[0]
    assert not ratchet.apply(OLD, proposal, {"targets.beats_pca": "noisy on other seeds"}).refused


def test_the_ratchet_refuses_a_target_that_turned_false_and_a_figure_that_stopped_being_watched():
    result = ratchet.apply(OLD, _proposal(codec_db=4.0, beats_pca=False))
    assert result.refused == ["notes/01_autoencoder:targets.beats_pca: no longer watched (was True)"]
    assert any(e["figure"] == "targets.beats_pca" for e in result.document["notes"]["01_autoencoder"])
    reason = {"notes/01_autoencoder:targets.beats_pca": "PCA got better too"}
    assert not ratchet.apply(OLD, _proposal(codec_db=4.0, beats_pca=False), reason).refused


def test_a_refresh_writes_nothing_when_refused_and_records_what_it_accepted(tmp_path, monkeypatch, capsys):
    path = tmp_path / "expectations.json"
    path.write_text(json.dumps(OLD))
    monkeypatch.setattr(ratchet, "TRADEOFFS_PATH", tmp_path / "tradeoffs.json")
    assert ratchet.refresh(_proposal(codec_db=4.5), {}, expectations_path=path) == 1
    assert json.loads(path.read_text()) == OLD and not (tmp_path / "tradeoffs.json").exists()
    assert "--accept-worse" in capsys.readouterr().out
    assert ratchet.refresh(_proposal(codec_db=4.5), {"codec_db": "why"}, expectations_path=path) == 0
    assert json.loads(path.read_text())["notes"]["01_autoencoder"][0]["reference"] == 4.5
    assert json.loads((tmp_path / "tradeoffs.json").read_text())[0]["reason"] == "why"


def test_committed_tradeoffs_say_what_moved_and_why():
    for entry in ratchet.load_tradeoffs():
        assert {"section", "notebook", "figure", "old", "new", "reason", "commit", "date"} <= set(entry)
        assert len(entry["reason"]) > 20, entry


def test_a_skip_fails_under_ci(pytester, monkeypatch):
    pytester.makeconftest((PROJ_ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile("import pytest\n\ndef test_needs_a_tool():\n    pytest.skip('the tool is missing')\n")
    monkeypatch.setenv("CI", "true")
    under_ci = pytester.runpytest_subprocess()
    under_ci.assert_outcomes(failed=1)
    assert "skipped under CI=true" in under_ci.stdout.str()
    monkeypatch.delenv("CI")
    pytester.runpytest_subprocess().assert_outcomes(skipped=1)


def test_check_outputs_refuse_a_false_claim(tmp_path, monkeypatch):
    import nbformat
    import sync_check_outputs

    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('the codec beats PCA:', False)")
    cell.metadata["tags"] = [sync_check_outputs.CHECK_TAG]
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="the codec beats PCA: True\n")]
    notebook.cells.append(cell)
    path = tmp_path / "stage.ipynb"
    nbformat.write(notebook, path)
    before = path.read_text()

    def fake_run(source, folder):  # the executed copy holds the false line
        executed = nbformat.read(source, as_version=4)
        executed.cells[0].outputs = [
            nbformat.v4.new_output("stream", name="stdout", text="the codec beats PCA: False\n")
        ]
        nbformat.write(executed, folder / source.name)

    monkeypatch.setattr(sync_check_outputs, "run_notebook", fake_run)
    with pytest.raises(sync_check_outputs.FalseClaimError, match="the codec beats PCA: False"):
        sync_check_outputs.sync(path)
    assert path.read_text() == before


def test_refresh_moves_references_and_leaves_flaky_targets_alone(tmp_path, monkeypatch):
    record = {"judge": {"accuracy": 0.91}, "targets": {"beats_pca": True, "sometimes": False}}
    (tmp_path / "01_autoencoder.json").write_text(json.dumps(record))
    monkeypatch.setattr(refresh_expectations, "metrics_path", lambda notebook, dataset: tmp_path / f"{notebook}.json")
    flaky = {"figure": "targets.sometimes", "flaky": "false in another seed's run"}
    current = {
        "notes": {
            "01_autoencoder": [
                {"figure": "judge.accuracy", "reference": 0.97, "better": "higher", "tolerance": 0.03},
                {"figure": "targets.beats_pca", "expected": True},
                flaky,
            ]
        }
    }
    candidate, notes = refresh_expectations.candidate_from_run(current, datasets=("notes",))
    moved, target, kept = candidate["notes"]["01_autoencoder"]
    assert moved["reference"] == 0.91 and target == {"figure": "targets.beats_pca", "expected": True}
    assert kept == flaky and "reference" not in kept and not notes
