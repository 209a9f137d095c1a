"""The metrics records the stages write: their keys and their targets, built here, shown by the notebooks.

Each stage's notebook measures; the functions below turn those measurements into the record that
goes to ``outputs/metrics/<notebook>.json`` and into the targets the issues set, so the record's
shape lives in one place (``make check``, the README's tables and the tests read these keys).

Stage 0 (``00_data``): the dataset, its representation and the oracle inversion. Stage 1
(``01_autoencoder``): the rate-distortion rows (test split and held-out programs) beside PCA, Opus and
the oracle, the residual shares' calibration and training. Stage 2 (``02_latent_manipulation``): noise,
attribute vectors, hybrids. Stage 3 (``03_vae``): the generators judged on equal terms, the VAE's
reconstruction and the judge. Stage 4 (``04_control``): the generators again (``unconditional``), the
conditional model's requests, and, on the notes, edits, transfer, an instrument and a melody; on any
other dataset, attribute sweeps and label transfer. Stage 5 (``05_genres``): the genre phrases' codec,
judge, genre-conditioned generation and transfer. Stage 6 (``06_recordings``): whole recordings and the
sequence model. A part that cannot run on a dataset is recorded as ``{"skipped": reason}``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lib.measure.evaluation import MEASURABLE_DB, family_shares_within

RATE_DISTORTION_COLUMNS = (
    "method",
    "latent_dim",
    "compression_ratio",
    "bitrate_kbps",
    "log_mel_distance_db",
    "pca_same_size_db",
    "multi_resolution_stft",
    "spectral_convergence",
    "snr_db",
    "si_sdr_db",
    "pca_coded_share",
    "refined_share",
    "chosen_magnitude_db",
    "coded_magnitude_db",
)


def json_rows(frame: pd.DataFrame, columns: tuple[str, ...] = RATE_DISTORTION_COLUMNS) -> list[dict]:
    """A table's rows as JSON-ready dicts of ``columns`` (NaN, for a figure a method lacks, becomes None)."""
    return [
        {key: (None if isinstance(value, float) and np.isnan(value) else value) for key, value in row.items()}
        for row in frame[list(columns)].to_dict(orient="records")
    ]


def compression_targets(
    results: pd.DataFrame, heldout: pd.DataFrame | None, *, oracle_db: float, converged: bool
) -> dict[str, bool]:
    """Stage 1's targets from the rate-distortion rows (``method``, ``latent_dim``, ``compression_ratio``,
    ``bitrate_kbps``, ``log_mel_distance_db``) of the test split and, where the dataset has them
    (the notes' new instruments), of the held-out programs; ``oracle_db``: Griffin-Lim on the true
    magnitudes, the floor."""
    autoencoder = results[results["method"] == "autoencoder"].set_index("latent_dim")
    pca = results[results["method"] == "pca"].set_index("latent_dim")
    opus = results[results["method"] == "opus"].iloc[0]
    at_100x = autoencoder[autoencoder["compression_ratio"] >= 100]
    curve = np.diff(autoencoder["log_mel_distance_db"].to_numpy())
    targets = {
        "beats_pca_at_every_size": bool((autoencoder["log_mel_distance_db"] < pca["log_mel_distance_db"]).all()),
        "never_worse_than_pca_test": bool((autoencoder["log_mel_distance_db"] <= pca["log_mel_distance_db"]).all()),
        "within_1_5_db_of_oracle_at_100x": bool((at_100x["log_mel_distance_db"] - oracle_db <= 1.5).any()),
        "rate_distortion_keeps_falling": bool((curve < 0).all() and curve[-1] <= -MEASURABLE_DB),
        "training_converged": bool(converged),
        "beats_lowest_opus_at_lower_bitrate": bool(
            (
                (autoencoder["bitrate_kbps"] <= opus["bitrate_kbps"])
                & (autoencoder["log_mel_distance_db"] < opus["log_mel_distance_db"])
            ).any()
        ),
    }
    if heldout is not None:
        held_autoencoder = heldout[heldout["method"] == "autoencoder"].set_index("latent_dim")["log_mel_distance_db"]
        held_pca = heldout[heldout["method"] == "pca"].set_index("latent_dim")["log_mel_distance_db"]
        targets["never_worse_than_pca_heldout"] = bool((held_autoencoder <= held_pca).all())
        small = [size for size in (8, 16) if size in held_autoencoder.index]
        targets["heldout_1db_better_at_8_16"] = bool(small) and bool(
            (held_autoencoder[small] <= held_pca[small] - 1.0).all()
        )
    return targets


def calibration_summary(shrinkage, *, clips: int) -> dict:
    """The residual shares a linear-path codec applies (a :class:`lib.models.codec.Shrinkage`), and on what."""
    return {
        "calibrated_on": shrinkage.calibrated_on,
        "clips": clips,
        "encoder_shares": {str(size): share for size, share in shrinkage.encoder.items()},
        "decoder_shares": {str(size): share for size, share in shrinkage.decoder.items()},
        "magnitude_distances_db": {str(size): row for size, row in shrinkage.distances.items()},
    }


def compression_record(
    results: pd.DataFrame,
    heldout: pd.DataFrame,
    targets: dict[str, bool],
    *,
    clips: int,
    heldout_clips: int,
    heldout_programs: list[int],
    griffin_lim_iterations: int,
    calibration: dict,
    training: dict,
) -> dict:
    """Stage 1's whole record: the rows on the test split and the held-out programs, targets, calibration, training."""
    return {
        "split": "test",
        "clips": clips,
        "griffin_lim_iterations": griffin_lim_iterations,
        "rows": json_rows(results),
        "heldout_rows": json_rows(heldout),
        "heldout_clips": heldout_clips,
        "heldout_programs": heldout_programs,
        "targets": targets,
        "calibration": calibration,
        "training": training,
    }


def vae_record(
    generators: dict,
    classifier: dict,
    *,
    vae_db: float,
    autoencoder_db: float,
    latent_dim: int,
    generated_clips: int,
    temperature: float,
    training: dict,
) -> dict:
    """Stage 3's record and targets: the generators (``vae``, ``ae_noise``, ``pca_gaussian``,
    ``real_floor`` … with ``frechet_distance`` and ``ndb_over_k``), the judge's accuracies, and the
    VAE's reconstruction (log-mel dB) beside the autoencoder's at the same latent size."""
    vae = generators["vae"]
    targets = {
        "frechet_vae_lt_ae_noise_lt_pca_gaussian": bool(
            vae["frechet_distance"]
            < generators["ae_noise"]["frechet_distance"]
            < generators["pca_gaussian"]["frechet_distance"]
        ),
        "vae_frechet_within_2x_real_floor": bool(
            vae["frechet_distance"] <= 2 * generators["real_floor"]["frechet_distance"]
        ),
        "vae_ndb_over_k_at_most_0_2": bool(vae["ndb_over_k"] <= 0.2),
        "vae_reconstruction_within_1_db_of_autoencoder": bool(vae_db - autoencoder_db <= 1.0),
        "classifier_pitch_accuracy_at_least_0_9": bool(classifier["pitch_accuracy"] >= 0.9),
    }
    return {
        "classifier": classifier,
        "generators": generators,
        "generated_clips": generated_clips,
        "generation_temperature": temperature,
        "reconstruction": {
            "vae_log_mel_distance_db": vae_db,
            "autoencoder_same_size_log_mel_distance_db": autoencoder_db,
            "latent_dim": latent_dim,
        },
        "training": training,
        "targets": targets,
    }


def transfer_method(transfer: dict) -> str:
    """The transfer a label-transfer record's targets judge: the matched swap (the latent moved between the
    labels' ex-post Gaussians, then decoded under the target label) where the record has it, else the plain
    condition swap (records made before the matched swap, and the notes' family swap)."""
    return "matched_swap" if "matched_swap" in transfer else "condition_swap"


def genre_targets(
    reconstruction: list[dict], *, judge_accuracy: float | None, requested_share: float | None, transfer: dict
) -> dict[str, bool]:
    """Stage 5's targets: the codec never worse than PCA in any genre at any size (``reconstruction``
    rows: ``genre``, ``method``, ``latent_dim``, ``log_mel_distance_db``), the genre judge, generation
    on request, and transfer beside a random phrase of the target genre. A part that did not run (a
    dataset of one label: ``None``, or ``transfer`` ``{"skipped": reason}``) has no target."""
    pca = {
        (row["genre"], row["latent_dim"]): row["log_mel_distance_db"]
        for row in reconstruction
        if row["method"] == "pca"
    }
    targets = {
        "autoencoder_never_worse_than_pca": all(
            row["log_mel_distance_db"] <= pca[row["genre"], row["latent_dim"]]
            for row in reconstruction
            if row["method"] == "autoencoder"
        )
    }
    if judge_accuracy is not None:
        targets["judge_accuracy_at_least_0_8"] = bool(judge_accuracy >= 0.8)
    if requested_share is not None:
        targets["requested_genre_share_at_least_0_7"] = bool(requested_share >= 0.7)
    if "skipped" not in transfer:
        swap, random_phrase = transfer[transfer_method(transfer)], transfer["random_target_phrase"]
        targets["transfer_target_share_at_least_0_6"] = bool(swap["target_share"] >= 0.6)
        targets["transfer_keeps_more_than_a_random_target_phrase"] = bool(
            swap["onset_correlation"] > random_phrase["onset_correlation"]
            and swap["chroma_correlation"] > random_phrase["chroma_correlation"]
        )
    return targets


def generation_targets(unconditional: dict, real_family_shares: dict[str, float]) -> dict[str, bool]:
    """Stage 4's targets for the unconditional VAE (its chosen prior) beside the baselines.

    ``unconditional`` maps generator names (``vae``, ``ae_noise``, ``pca_gaussian``, ``real_floor``,
    ``real_test_roundtrip`` …) to their scores: ``frechet_distance``, ``ndb_over_k``,
    ``family_shares``, ``nearest_train_distance``.
    """
    best = unconditional["vae"]
    baselines = min(unconditional["ae_noise"]["frechet_distance"], unconditional["pca_gaussian"]["frechet_distance"])
    return {
        "vae_frechet_below_ae_noise_and_pca_gaussian": bool(best["frechet_distance"] < baselines),
        "vae_frechet_within_2x_real_floor": bool(
            best["frechet_distance"] <= 2 * unconditional["real_floor"]["frechet_distance"]
        ),
        "vae_ndb_over_k_at_most_0_2": bool(best["ndb_over_k"] <= 0.2),
        "vae_no_family_dropped": family_shares_within(best["family_shares"], real_family_shares),
        "vae_no_memorisation": bool(
            best["nearest_train_distance"] >= unconditional["real_test_roundtrip"]["nearest_train_distance"]
        ),
    }


def generation_comparisons(unconditional: dict) -> dict[str, bool]:
    """Not targets, but the questions stage 4 answers: does the VAE beat the same mixture on the plain
    autoencoder's latents (the RAE paper's strong baseline), and does the label prior beat the VAE?"""
    vae = unconditional["vae"]["frechet_distance"]
    return {
        "vae_frechet_below_ae_mixture": bool(vae < unconditional["ae_mixture"]["frechet_distance"]),
        "cvae_label_prior_frechet_below_vae": bool(unconditional["cvae_label_prior"]["frechet_distance"] < vae),
    }


def _conditional(conditional: dict, loudness_spearman: dict[str, float], **more) -> dict:
    """The conditional model's requests, with loudness followed per family or label (and its minimum)."""
    return {
        **conditional,
        "loudness_spearman_min": min(loudness_spearman.values()),
        "loudness_spearman": loudness_spearman,
        **more,
    }


def _edit(effects: dict) -> dict:
    """An edit's effects, its two headline figures first."""
    return {"within_50_cents": effects["within_50_cents"], "rms_change_db": effects["rms_change_db"], **effects}


def _transfer(effects: dict) -> dict:
    """A family transfer's effects under the names the record uses."""
    return {"target_family_share": effects["family_share"], "pitch_kept": effects["within_50_cents"], **effects}


def note_control(
    conditional: dict,
    loudness_spearman: dict[str, float],
    disentanglement: dict[str, dict],
    vector_effects: dict[str, dict],
    pitch_shuffled: dict,
    *,
    edit_clips: int,
    instrument: dict,
    melody: dict,
    real_floor: float,
) -> tuple[dict, dict[str, bool]]:
    """Stage 4's control parts and targets on the notes.

    ``conditional``: the requests' figures (pitch and family accuracy, Fréchet distance …);
    ``disentanglement``: each condition edit's effects ("pitch +12", "family swap" …);
    ``vector_effects``: the same edits by attribute vectors (and "pitch +12 map" by stage 2's octave-up
    map, where there is one); ``pitch_shuffled``: the control whose
    pitch conditions were shuffled; ``instrument`` and ``melody``: their pitch checks (``within``)
    with what was played. Returns (parts of the record, targets).
    """
    octave, swap = disentanglement["pitch +12"], disentanglement["family swap"]
    parts = {
        "conditional": _conditional(conditional, loudness_spearman),
        "octave_up": {
            "condition": _edit(octave),
            "attribute_vector": _edit(vector_effects["pitch +12"]),
            **({"attribute_map": _edit(vector_effects["pitch +12 map"])} if "pitch +12 map" in vector_effects else {}),
        },
        "transfer": {
            "condition_swap": _transfer(swap),
            "attribute_vector": _transfer(vector_effects["family swap"]),
            "pitch_shuffled_control": _transfer(pitch_shuffled),
            "clips": edit_clips,
        },
        "disentanglement": disentanglement,
        "instrument": instrument,
        "melody": {key: value for key, value in melody.items() if key != "cents"},
    }
    targets = {
        "conditional_pitch_accuracy_at_least_0_9": conditional["pitch_accuracy"] >= 0.9,
        "conditional_pitch_within_50_cents_at_least_0_9": conditional["pitch_within_50_cents"] >= 0.9,
        "conditional_family_accuracy_at_least_0_9": conditional["family_accuracy"] >= 0.9,
        "loudness_spearman_at_least_0_9_every_family": min(loudness_spearman.values()) >= 0.9,
        "conditional_frechet_within_2x_real_floor": conditional["frechet_distance"] <= 2 * real_floor,
        "octave_up_within_50_cents_at_least_0_9": octave["within_50_cents"] >= 0.9,
        "octave_up_loudness_within_3_db": abs(octave["rms_change_db"]) <= 3.0,
        "transfer_target_family_share_at_least_0_8": swap["family_share"] >= 0.8,
        "transfer_pitch_kept_at_least_0_9": swap["within_50_cents"] >= 0.9,
        "pitch_shuffled_control_fails_pitch_check": pitch_shuffled["within_50_cents"] < 0.5,
        "instrument_samples_at_their_keys_at_least_0_9": instrument["within"] >= 0.9,
        "melody_follows_score_at_least_0_9": melody["within"] >= 0.9,
    }
    return parts, targets


def label_control(
    conditional: dict,
    loudness_spearman: dict[str, float],
    attribute_spearman: dict[str, dict[str, float]],
    sweeps: dict,
    conditions: dict,
    transfer: dict,
    *,
    transfer_clips: int,
    transfer_pairs: int,
    real_floor: float,
    needs_pitch: str,
    label_judge: dict,
) -> tuple[dict, dict[str, bool]]:
    """Stage 4's control parts and targets on any labelled dataset (a folder, the genre collections).

    ``attribute_spearman``: per attribute ("loudness_db", "brightness_octaves" …), per label, the
    rank correlation between requested and measured; ``transfer``: the label transfers
    (``condition_swap``, ``random_target_clip`` … with target share and onset and chroma correlation);
    ``conditions``: the condition space as a dict; ``needs_pitch``: why the note-only parts are
    skipped on this dataset; ``label_judge``: :func:`lib.measure.label_judge.accuracy_figures` with
    ``label_shares`` (per generator, the share of its clips the label judge puts in each label) and
    ``real_label_shares``. The label-level targets are the label judge's (the stage-3 judge's
    figures stay in the record beside them). On a dataset of one label, ``label_judge`` and ``transfer``
    are ``{"skipped": reason}`` and their targets are left out. Returns (parts of the record, targets).
    """
    parts = {
        "conditional": _conditional(
            conditional,
            loudness_spearman,
            attribute_spearman=attribute_spearman,
            attribute_sweeps=sweeps,
            conditions=conditions,
        ),
        "octave_up": {"skipped": needs_pitch},
        "transfer": transfer
        if "skipped" in transfer
        else {**transfer, "clips": transfer_clips, "pairs": transfer_pairs},
        "disentanglement": {"skipped": needs_pitch + "; the label swap is measured under transfer"},
        "instrument": {"skipped": needs_pitch},
        "melody": {"skipped": needs_pitch},
    }
    targets = {
        "loudness_spearman_at_least_0_9_every_label": min(attribute_spearman["loudness_db"].values()) >= 0.9,
        "brightness_spearman_at_least_0_9_every_label": min(attribute_spearman["brightness_octaves"].values()) >= 0.9,
        "conditional_frechet_within_2x_real_floor": conditional["frechet_distance"] <= 2 * real_floor,
    }
    if "skipped" not in label_judge:  # a dataset of one label has no label judge, nothing to request or move
        targets = {
            "label_judge_at_least_0_8_on_held_out_files": label_judge["accuracy_files"] >= 0.8,
            "label_requests_judged_as_requested_at_least_0_8": conditional["label_accuracy_by_label_judge"] >= 0.8,
            "vae_every_label_within_2x_of_its_real_share": family_shares_within(
                label_judge["label_shares"]["vae"], label_judge["real_label_shares"]
            ),
            **targets,
        }
    if "skipped" not in transfer:
        swap, random_clip = transfer[transfer_method(transfer)], transfer["random_target_clip"]
        targets["transfer_target_share_at_least_0_6"] = swap["target_share_by_label_judge"] >= 0.6
        targets["transfer_keeps_more_than_a_random_target_clip"] = bool(
            swap["onset_correlation"] > random_clip["onset_correlation"]
            and swap["chroma_correlation"] > random_clip["chroma_correlation"]
        )
    return parts, targets


def control_record(
    unconditional: dict,
    control: tuple[dict, dict[str, bool]],
    *,
    mixture_selection: dict,
    clips: int,
    real_family_shares: dict[str, float],
    training: dict,
    label_judge: dict,
) -> dict:
    """Stage 4's whole record: the generators, the control parts (:func:`note_control` or
    :func:`label_control`), the label judge (``{"skipped": reason}`` on the notes), training figures,
    the comparisons and every target."""
    parts, control_targets = control
    return {
        "label_judge": label_judge,
        "comparisons": generation_comparisons(unconditional),
        "unconditional": {
            **unconditional,
            "mixture_selection": mixture_selection,
            "clips": clips,
            "real_family_shares": real_family_shares,
        },
        **parts,
        "training": training,
        "targets": {**generation_targets(unconditional, real_family_shares), **control_targets},
    }


def genre_record(
    genres: list[str],
    labels: dict[str, np.ndarray],
    reconstruction: list[dict],
    transfer: dict,
    *,
    phrase_seconds: float,
    phrase_hop_seconds: float,
    scores_by_genre: dict[str, int],
    judge: dict,
    conditional: dict,
    transfer_pairs: int,
    training: dict,
) -> dict:
    """Stage 5's whole record and its targets (:func:`genre_targets`).

    ``labels``: each split's phrase labels [shape=(n,)]; ``judge``: the judge's figures, its accuracy on
    held-out phrases as ``accuracy_clips``; ``conditional``: genre-conditioned generation
    (``requested_genre_share`` overall and by genre, Fréchet distances beside the real floor by genre);
    ``transfer``: condition swap, mean vector and the controls. On a dataset of one label the judge,
    generation and transfer are ``{"skipped": reason}`` (``judge_accuracy`` is then None).
    """
    judge_accuracy = None if "skipped" in judge else judge["accuracy_clips"]
    targets = genre_targets(
        reconstruction,
        judge_accuracy=judge_accuracy,
        requested_share=None if "skipped" in conditional else conditional["requested_genre_share"],
        transfer=transfer,
    )
    return {
        "genres": list(genres),
        "phrase_seconds": phrase_seconds,
        "phrase_hop_seconds": phrase_hop_seconds,
        "clips": {split: len(split_labels) for split, split_labels in labels.items()},
        "clips_by_genre": {
            genre: {split: int(np.sum(split_labels == genre)) for split, split_labels in labels.items()}
            for genre in genres
        },
        "scores_by_genre": scores_by_genre,
        "judge_accuracy": judge_accuracy,
        "judge": {key: value for key, value in judge.items() if key != "accuracy_clips"},
        "reconstruction": reconstruction,
        "conditional": conditional,
        "transfer": transfer if "skipped" in transfer else {**transfer, "pairs": transfer_pairs},
        "training": training,
        "targets": targets,
    }


def data_record(
    dataset,
    info: dict,
    *,
    name: str,
    oracle: dict,
    griffin_lim_iterations: int,
    oracle_clips: int,
    inversion_seconds: float,
    zero_phase_db: float,
) -> dict:
    """Stage 0's record: the dataset (a :class:`lib.data.clips.ClipDataset`, ``info`` its build or
    preparation summary), its representation, and the oracle inversion's figures (Griffin-Lim on the
    true magnitudes of ``oracle_clips`` test clips, beside zero phase)."""
    counts = dataset.counts()
    representation = dataset.representation
    record = {
        "dataset": name,
        "sample_rate": dataset.config.sample_rate,
        "clip_seconds": dataset.config.clip_seconds,
        "clips": {split: counts[split] for split in ("train", "valid", "test", "heldout")},
        "labels": list(dataset.labels),
        "representation": {"shape": list(representation.shape), **vars(representation.config)},
        "oracle_inversion": {
            "griffin_lim_iterations": griffin_lim_iterations,
            "clips": oracle_clips,
            **oracle,
            "clips_per_second": oracle_clips / inversion_seconds,
        },
        "zero_phase_log_mel_distance_db": zero_phase_db,
    }
    if dataset.kind == "notes":
        return record | {
            "programs": len(dataset.config.programs),
            "heldout_programs": list(dataset.config.heldout_programs),
            "build_seconds": info["build_seconds"],
        }
    return record | {
        "files": info["files"],
        "hours": info["hours"],
        "files_skipped": len(info["skipped"]),
        "skipped_by_kind": info["skipped_by_kind"],
        "preparation_seconds": info["last_preparation_seconds"],
    }


def manipulation_record(
    noise_sweep: list[dict],
    attribute_vectors: dict,
    hybrids: dict,
    explained_share: np.ndarray,
    arithmetic_f0: np.ndarray | None,
    *,
    attribute_maps: dict | None = None,
    octave_up_against_real: dict | None = None,
) -> dict:
    """Stage 2's record: the noise sweep, the attribute vectors' and maps' effects, 50/50 hybrids, the
    principal directions' explained shares, the arithmetic example's f0 (Hz: result and real target) and,
    with note labels, how near the octave-up edits land to the real notes an octave up (None without)."""
    return {
        "noise_sweep": noise_sweep,
        "attribute_vectors": attribute_vectors,
        "attribute_maps": attribute_maps or {},
        "octave_up_against_real": octave_up_against_real,
        "hybrids_50_50": hybrids,
        "principal_directions_explained_share": np.asarray(explained_share).tolist(),
        "arithmetic_example_f0_hz": None
        if arithmetic_f0 is None
        else {"result": float(arithmetic_f0[0]), "real_target": float(arithmetic_f0[1])},
    }


def recordings_targets(
    codec_summary: dict,
    prediction: dict,
    generation: dict[str, float],
    requested_share: float | None,
    *,
    seam_target: float,
) -> dict[str, bool]:
    """Stage 6's targets: seams of the whole-recording codec, the sequence model's predictions against
    repeat-last and the training mean at every horizon, its windows' Fréchet distance against
    independent samples and the real floor, and its pieces judged as the requested label (not on a
    dataset of one label: ``requested_share`` None)."""
    targets = {
        "seams_within_10_percent": codec_summary["seam_ratio"]["recording codec"] <= seam_target,
        "prediction_beats_both_baselines_at_every_horizon": all(
            row["sequence_model"] < min(row["repeat_last_frame"], row["training_mean"]) for row in prediction.values()
        ),
        "generated_below_independent_samples": generation["sequence_model"] < generation["independent_samples"],
        "generated_within_2x_real_floor": generation["sequence_model"] <= 2 * generation["real_floor"],
    }
    if requested_share is not None:
        targets["judged_as_requested_at_least_0_7"] = requested_share >= 0.7
    return targets


def recordings_record(
    *,
    dataset: str,
    model: dict,
    song: dict,
    codec_summary: dict,
    sequence_model: dict,
    prediction: dict,
    generation: dict,
    seam_target: float,
) -> dict:
    """Stage 6's whole record and its targets (:func:`recordings_targets`).

    ``prediction``: per horizon (clips ahead), the error of the sequence model and of its baselines;
    ``generation``: the generated windows' ``frechet_distance`` (sequence model, independent samples,
    real floor …), ``requested_label_share`` (None on a dataset of one label) and what was generated.
    """
    targets = recordings_targets(
        codec_summary,
        prediction,
        generation["frechet_distance"],
        generation["requested_label_share"],
        seam_target=seam_target,
    )
    return {
        "dataset": dataset,
        "model": model,
        "song": song,
        "codec": codec_summary,
        "sequence_model": sequence_model,
        "prediction": {str(horizon): row for horizon, row in prediction.items()},
        "generation": generation,
        "targets": targets,
    }
