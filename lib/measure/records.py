"""The metrics records the stages write: their keys and their targets, built here, shown by the notebooks.

Each stage's notebook measures; the functions below turn those measurements into the record that
goes to ``outputs/metrics/<notebook>.json`` and into the targets the issues set, so the record's
shape lives in one place (``make check``, the README's tables and the tests read these keys).

Stage 4 (``04_control``): the generators judged on equal terms (``unconditional``), the
conditional model's requests, and, on the notes, edits, transfer, an instrument and a melody; on
any other dataset, attribute sweeps and label transfer. A part that cannot run on a dataset is
recorded as ``{"skipped": reason}``.
"""

from __future__ import annotations

from lib.measure.evaluation import family_shares_within


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
    ``vector_effects``: the same edits by attribute vectors; ``pitch_shuffled``: the control whose
    pitch conditions were shuffled; ``instrument`` and ``melody``: their pitch checks (``within``)
    with what was played. Returns (parts of the record, targets).
    """
    octave, swap = disentanglement["pitch +12"], disentanglement["family swap"]
    parts = {
        "conditional": _conditional(conditional, loudness_spearman),
        "octave_up": {"condition": _edit(octave), "attribute_vector": _edit(vector_effects["pitch +12"])},
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
) -> tuple[dict, dict[str, bool]]:
    """Stage 4's control parts and targets on any labelled dataset (a folder, the genre collections).

    ``attribute_spearman``: per attribute ("loudness_db", "brightness_octaves" …), per label, the
    rank correlation between requested and measured; ``transfer``: the label transfers
    (``condition_swap``, ``random_target_clip`` … with target share and onset and chroma correlation);
    ``conditions``: the condition space as a dict; ``needs_pitch``: why the note-only parts are
    skipped on this dataset. Returns (parts of the record, targets).
    """
    swap, random_clip = transfer["condition_swap"], transfer["random_target_clip"]
    parts = {
        "conditional": _conditional(
            conditional,
            loudness_spearman,
            attribute_spearman=attribute_spearman,
            attribute_sweeps=sweeps,
            conditions=conditions,
        ),
        "octave_up": {"skipped": needs_pitch},
        "transfer": {**transfer, "clips": transfer_clips, "pairs": transfer_pairs},
        "disentanglement": {"skipped": needs_pitch + "; the label swap is measured under transfer"},
        "instrument": {"skipped": needs_pitch},
        "melody": {"skipped": needs_pitch},
    }
    targets = {
        "label_requests_judged_as_requested_at_least_0_8": conditional["label_accuracy"] >= 0.8,
        "loudness_spearman_at_least_0_9_every_label": min(attribute_spearman["loudness_db"].values()) >= 0.9,
        "brightness_spearman_at_least_0_9_every_label": min(attribute_spearman["brightness_octaves"].values()) >= 0.9,
        "conditional_frechet_within_2x_real_floor": conditional["frechet_distance"] <= 2 * real_floor,
        "transfer_target_share_at_least_0_6": swap["target_share"] >= 0.6,
        "transfer_keeps_more_than_a_random_target_clip": bool(
            swap["onset_correlation"] > random_clip["onset_correlation"]
            and swap["chroma_correlation"] > random_clip["chroma_correlation"]
        ),
    }
    return parts, targets


def control_record(
    unconditional: dict,
    control: tuple[dict, dict[str, bool]],
    *,
    mixture_selection: dict,
    clips: int,
    real_family_shares: dict[str, float],
    training: dict,
) -> dict:
    """Stage 4's whole record: the generators, the control parts (:func:`note_control` or
    :func:`label_control`), training figures, the comparisons and every target."""
    parts, control_targets = control
    return {
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
