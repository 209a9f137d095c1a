"""Every stage on a folder of audio as `make run-all DATASET=<folder>` runs it (smoke mode), 04 and 05 included.

The folder is generated (tests/music_folder.py: melodies in five formats and rates, two labels,
five broken files) under the gitignored data/; the run writes to its own outputs folder, and the
notes' outputs stay untouched.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np

from lib.core import paths
from lib.models.judge import ENOUGH_CLIPS_PER_LABEL
from tests.music_folder import write_flat_folder, write_music_folder

NOTEBOOKS = sorted(str(path) for path in (paths.PROJ_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


STAGES = (
    "00_data",
    "01_autoencoder",
    "02_latent_manipulation",
    "03_vae",
    "04_control",
    "05_genres",
    "06_recordings",
)


def run_every_stage(folder, **limits: str) -> tuple[dict[str, dict], object]:
    """`make run-all DATASET=<folder>` in smoke mode: preparation, every notebook, the report; ``limits``
    sets LML_TRAIN_CLIPS and LML_EVALUATION_CLIPS (e.g. ``train="80"``). Returns (each stage's metrics, the
    folder's outputs folder)."""
    environment = {**os.environ, "LML_SMOKE": "1", paths.DATASET_ENV_VAR: str(folder)}
    for role, variable in paths.SPLIT_CLIPS_ENV_VARS.items():
        environment[variable] = limits.get(role, "")
    outputs = paths.PROJ_ROOT / "outputs" / "smoke" / "datasets" / paths.dataset_slug(str(folder))
    for command in (["-m", "lib.data.dataset"], ["-m", "lib.lab.run_notebooks", *NOTEBOOKS], ["-m", "lib.lab.report"]):
        finished = subprocess.run(
            [sys.executable, *command], env=environment, cwd=paths.PROJ_ROOT, capture_output=True, text=True
        )
        assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    return {name: json.loads((outputs / "metrics" / f"{name}.json").read_text()) for name in STAGES}, outputs


def test_every_stage_runs_on_a_folder_of_music(monkeypatch):
    folder = write_music_folder(paths.PROJ_ROOT / "data" / "smoke-music")
    notes_metrics = paths.PROJ_ROOT / "outputs" / "smoke" / "metrics" / "00_data.json"
    notes_before = notes_metrics.stat().st_mtime_ns if notes_metrics.exists() else None
    # Splits past their limits (90 training and 30 test clips, here 80 and 24) are held as the same seeded
    # sample in every stage, which says so in its metrics; the 4 s phrases (36 and 12) stay whole.
    metrics, outputs = run_every_stage(folder, train="80", evaluation="24")
    environment = {**os.environ, "LML_SMOKE": "1", paths.DATASET_ENV_VAR: str(folder)}
    timings = json.loads((outputs / "metrics" / "run_notebooks.json").read_text())
    hours = json.loads((paths.data_dir(smoke=True, dataset=str(folder)) / "collection.json").read_text())["hours"]
    for name in STAGES:  # a folder's run states its time per hour of audio, and its peak memory
        assert timings[name]["hours_of_audio"] == round(hours, 3) > 0
        assert math.isclose(timings[name]["seconds_per_hour"], timings[name]["seconds"] / hours, rel_tol=0.01)
        assert 100 < timings[name]["peak_resident_mib"] < 24 * 1024
    sampled = {"train": {"clips": 80, "of": 90}, **{split: {"clips": 24, "of": 30} for split in ("valid", "test")}}
    for name in STAGES[:5]:
        assert metrics[name]["sampled_splits"] == sampled, name
    assert metrics["05_genres"]["sampled_splits"] == {}
    for name in ("03_vae", "04_control"):  # generated clips are compared with every real clip, judged in passes
        assert metrics[name]["judged_clips"] == {"train": 90, "test": 30}, name
    assert metrics["00_data"]["clips"] == {"train": 90, "valid": 30, "test": 30, "heldout": 0}
    assert metrics["01_autoencoder"]["clips"] == 24

    data = metrics["00_data"]
    assert data["labels"] == ["keys", "winds"] and data["files"] == 10 and data["files_skipped"] == 5
    assert data["skipped_by_kind"] == {
        "truncated": 1,
        "not an audio file extension": 1,
        "broken symbolic link": 1,
        "format not supported": 1,
        "silent": 1,
    }
    assert data["oracle_inversion"]["log_mel_distance_db"] < 1.5

    stage1 = metrics["01_autoencoder"]
    assert {row["method"] for row in stage1["rows"]} == {"autoencoder", "pca", "pca_refined", "oracle", "opus", "mp3"}
    assert all(finite(row["log_mel_distance_db"]) for row in stage1["rows"])
    assert stage1["heldout_rows"] == [] and stage1["heldout_clips"] == 0
    # Quality, not only finiteness: on the folder's test files (never trained on, not the calibration
    # files) the codec is no worse than PCA at any size, and no size beats the oracle.
    distance = {(row["method"], row["latent_dim"]): row["log_mel_distance_db"] for row in stage1["rows"]}
    sizes = sorted(size for method, size in distance if method == "autoencoder")
    for size in sizes:
        assert distance["autoencoder", size] <= distance["pca", size] + 0.05, (size, distance)
        assert distance["autoencoder", size] > distance["oracle", None], (size, distance)
    assert stage1["targets"]["never_worse_than_pca_test"] and stage1["targets"]["rate_distortion_keeps_falling"]

    edits = metrics["02_latent_manipulation"]
    assert {"louder", "brighter", "keys_to_winds"} <= set(edits["attribute_vectors"])
    assert edits["arithmetic_example_f0_hz"] is None
    assert edits["attribute_vectors"]["louder"]["rms_change_db_mean"] > 0  # the measured vector makes clips louder
    assert set(edits["attribute_maps"]) == {"octave_up"} and edits["octave_up_against_real"] is None

    generation = metrics["03_vae"]
    assert all(finite(row["frechet_distance"]) for row in generation["generators"].values())
    # The judge: above chance on the labels where it has enough clips to learn them (piano against flute
    # melodies), and its pitch head (each clip's dominant pitch class, of 12) above chance too.
    judge = generation["classifier"]
    labels = len(data["labels"])
    if data["clips"]["train"] >= ENOUGH_CLIPS_PER_LABEL * labels:
        assert judge["family_accuracy"] > 1 / labels, judge
        assert judge["pitch_accuracy"] > 1 / 12, judge
    else:
        assert 0 <= judge["family_accuracy"] <= 1
    assert (
        generation["generators"]["real_floor"]["frechet_distance"] < generation["generators"]["vae"]["frechet_distance"]
    )

    control = metrics["04_control"]
    # The same record as on the notes; what needs a pitch condition is skipped part by part, with the reason.
    assert set(control) == {
        "comparisons",
        "conditional",
        "disentanglement",
        "instrument",
        "judged_clips",
        "label_judge",
        "melody",
        "octave_up",
        "sampled_splits",
        "targets",
        "training",
        "transfer",
        "unconditional",
    }
    assert all("pitch condition" in control[part]["skipped"] for part in ("octave_up", "instrument", "melody"))
    assert control["conditional"]["conditions"]["labels"] == ["keys", "winds"]
    # Value-sensitive: the mixture prior beats N(0, I); requested loudness comes out louder under every label
    # (a decoder that ignores its conditions scores 0); a label swap keeps more of the source's harmony
    # than a random clip of the target label.
    unconditional = control["unconditional"]
    assert unconditional["vae"]["frechet_distance"] < unconditional["vae_standard_prior"]["frechet_distance"]
    assert min(control["conditional"]["attribute_spearman"]["loudness_db"].values()) >= 0.5
    transfer = control["transfer"]
    assert transfer["condition_swap"]["chroma_correlation"] > transfer["random_target_clip"]["chroma_correlation"]
    assert transfer["pairs"] > 0 and 0 <= transfer["condition_swap"]["target_share"] <= 1
    # The label judge (clip descriptors) hears keys from winds in the test files, and every label-level
    # figure has its verdict beside the stage-3 judge's.
    label_judge = control["label_judge"]
    assert label_judge["accuracy_clips"] >= 0.75 and label_judge["files"] >= 2, label_judge  # chance: 0.5
    assert set(label_judge["label_shares"]) >= {"vae", "real_floor", "cvae_label_prior"}
    assert 0 <= transfer["condition_swap"]["target_share_by_label_judge"] <= 1
    assert 0 <= control["conditional"]["label_accuracy_by_label_judge"] <= 1
    # Notebook 05 on the folder's own labels, cut into 4 s phrases: stage 1 per label, the label judge,
    # label-conditioned generation and transfer between the labels, with value-sensitive checks.
    phrases = metrics["05_genres"]
    assert phrases["genres"] == ["keys", "winds"] and phrases["phrase_seconds"] == 4.0
    assert all(phrases["clips_by_genre"][label]["test"] > 0 for label in ("keys", "winds"))
    by_method = {
        (r["genre"], r["method"], r["latent_dim"]): r["log_mel_distance_db"] for r in phrases["reconstruction"]
    }
    assert all(by_method[label, "oracle", None] < by_method[label, "pca", 4] for label in ("keys", "winds"))
    assert phrases["judge_accuracy"] >= 0.75, phrases["judge"]  # keys against winds; chance 0.5
    transfer_phrases = phrases["transfer"]
    assert transfer_phrases["pairs"] > 0 and 0 <= transfer_phrases["condition_swap"]["target_share"] <= 1
    assert (  # the content measure: the source's own reconstruction keeps its rhythm, a random phrase does not
        transfer_phrases["source_reconstruction"]["onset_correlation"]
        > transfer_phrases["random_target_phrase"]["onset_correlation"] + 0.3
    )
    executed_05 = json.dumps(json.loads((outputs / "notebooks" / "05_genres.ipynb").read_text())["cells"])
    assert "the genre-conditioned decoder listens to the genre: True" in executed_05
    # Whole recordings on the folder (notebook 06) with its own autoencoder: the codec sits between the
    # oracle and PCA through the same clips, and the sequence model predicts the next clip better than
    # repeating the last one (a model that ignored its context could not).
    recordings = metrics["06_recordings"]
    assert recordings["model"]["name"] == "autoencoder" and recordings["dataset"] == paths.shown(str(folder))
    whole = recordings["codec"]["distance_db"]
    assert whole["oracle"] < whole["recording codec"] <= whole["pca, same clips"] + 0.5
    assert recordings["prediction"]["1"]["sequence_model"] < recordings["prediction"]["1"]["repeat_last_frame"]
    assert all(finite(value) for value in recordings["generation"]["frechet_distance"].values())
    # The lab report of this smoke run: every executed page linked, and pages that read like a report
    # (no stderr, no absolute paths, no per-epoch logs, results filled in).
    index = (outputs / "report" / "index.html").read_text()
    for name in ("00_data", "01_autoencoder", "02_latent_manipulation", "03_vae", "04_control", "05_genres"):
        assert f"href='{name}.html'" in index and (outputs / "report" / f"{name}.html").exists()
        executed = json.loads((outputs / "notebooks" / f"{name}.ipynb").read_text())
        outputs_text = json.dumps([cell.get("outputs", []) for cell in executed["cells"]])
        streams = [o for cell in executed["cells"] for o in cell.get("outputs", []) if o["output_type"] == "stream"]
        assert not [o for o in streams if o["name"] == "stderr"], f"{name} writes to stderr"
        assert str(paths.PROJ_ROOT) not in outputs_text, f"{name} shows an absolute path"
        assert "Epoch 1/" not in outputs_text, f"{name} logs every epoch"
        assert "\\r" not in outputs_text, f"{name} keeps every state of a progress bar"
        results = next(cell for cell in executed["cells"] if "results" in cell["metadata"].get("tags", []))
        assert f"Results of {name}" in json.dumps(results["outputs"])
    assert "not executed" not in index
    after = notes_metrics.stat().st_mtime_ns if notes_metrics.exists() else None
    assert after == notes_before, "a folder run replaced the notes' outputs"

    # The explorer app (`make explore DATASET=<folder>`) opens on the folder's autoencoder.
    monkeypatch.setenv("LML_SMOKE", "1")
    monkeypatch.setenv(paths.DATASET_ENV_VAR, str(folder))
    from lib.lab.explorer import default_explorer

    explorer = default_explorer(clips=3)
    assert list(explorer.attributes) == ["louder", "octave_up map"] and len(explorer.labels) == 3
    assert all(label.startswith(("keys/", "winds/")) for label in explorer.labels)
    # and the condition explorer on notebook 04's model: label and measured attributes.
    from lib.lab.explorer import LabelExplorer, LabelSettings, default_conditional_explorer

    conditions = default_conditional_explorer(clips=2)
    assert isinstance(conditions, LabelExplorer) and conditions.codec.space.labels == ("keys", "winds")
    other = next(label for label in ("keys", "winds") if label != conditions.rows[0]["label"])
    _, own, _ = conditions.render(LabelSettings(0))
    _, moved, _ = conditions.render(LabelSettings(0, label=other))
    assert not np.allclose(own, moved)

    # Whole recordings (`lml compress` / `lml decompress`) with the folder's own autoencoder: a test file
    # of the folder comes back at its length, nearer to itself than to another file of the folder.
    from lib.data.collection import load_collection
    from lib.measure.recording_report import distance_db, read_file

    prepared = load_collection(paths.data_dir(dataset=str(folder)))
    test_files = sorted({row["file"] for row in prepared.manifest if row["split"] == "test"})
    others = sorted({row["file"] for row in prepared.manifest if row["file"] not in test_files})
    source, other = folder / test_files[0], folder / others[0]
    compressed, back = outputs / "recordings" / "song.lml", outputs / "recordings" / "song.wav"
    for path in (compressed, back):
        path.unlink(missing_ok=True)
    for command in (
        ["compress", str(source), str(compressed), "--dataset", str(folder), "--quiet"],
        ["decompress", str(compressed), str(back), "--quiet"],
        ["info", str(compressed)],
    ):
        finished = subprocess.run(
            [sys.executable, "-m", "lib.lab.cli", *command],
            env=environment,
            cwd=paths.PROJ_ROOT,
            capture_output=True,
            text=True,
        )
        assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "autoencoder of" in finished.stdout
    original, _ = read_file(source, 16_000)
    decoded, _ = read_file(back, 16_000)
    assert abs(len(decoded) - len(original)) <= 1
    assert distance_db(original, decoded, sample_rate=16_000) < distance_db(
        read_file(other, 16_000)[0], decoded, sample_rate=16_000
    )


def test_every_stage_runs_on_a_folder_of_one_label():
    """A folder without sub-folders: every notebook runs; what needs two labels is skipped part by part."""
    folder = write_flat_folder(paths.PROJ_ROOT / "data" / "smoke-flat")
    metrics, outputs = run_every_stage(folder)
    assert metrics["00_data"]["labels"] == ["smoke-flat"] and metrics["00_data"]["files"] == 8
    # Stage 2's louder vector is the same clips 6 dB louder: it makes the decoded clips louder, not brighter
    # (the quietest-to-loudest clips of these recordings made them 0.4 dB quieter).
    louder = metrics["02_latent_manipulation"]["attribute_vectors"]["louder"]
    assert louder["rms_change_db_mean"] > 3.0, louder
    assert metrics["02_latent_manipulation"]["hybrids_50_50"]["pairs"] > 0
    control = metrics["04_control"]
    for part in ("label_judge", "transfer"):
        assert "one label (smoke-flat)" in control[part]["skipped"], control[part]
    assert not {"label_judge_at_least_0_8_on_held_out_files", "transfer_target_share_at_least_0_6"} & set(
        control["targets"]
    )
    assert min(control["conditional"]["attribute_spearman"]["loudness_db"].values()) >= 0.5  # requests still heard
    phrases = metrics["05_genres"]
    assert phrases["genres"] == ["smoke-flat"] and phrases["judge_accuracy"] is None
    for part in ("judge", "conditional", "transfer"):
        assert "one label" in phrases[part]["skipped"], phrases[part]
    by_method = {(r["method"], r["latent_dim"]): r["log_mel_distance_db"] for r in phrases["reconstruction"]}
    assert by_method["oracle", None] < by_method["pca", 4]
    recordings = metrics["06_recordings"]
    assert recordings["generation"]["judge_accuracy"] is None
    assert "judged_as_requested_at_least_0_7" not in recordings["targets"]
    assert recordings["prediction"]["1"]["sequence_model"] < recordings["prediction"]["1"]["repeat_last_frame"]
    page = (outputs / "report" / "05_genres.html").read_text()
    assert "Parts skipped on this dataset" in page
