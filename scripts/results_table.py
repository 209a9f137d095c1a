"""Print the headline figures of outputs/metrics/*.json as Markdown tables (for the README).

Every number the README quotes is printed by this script from the files a run wrote, so the
README can be refreshed after any run: ``.venv/bin/python scripts/results_table.py``.
"""

from __future__ import annotations

import json
import sys

from lib.paths import metrics_path


def load(name: str) -> dict | None:
    path = metrics_path(name)
    return json.loads(path.read_text()) if path.exists() else None


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.{digits}f}"
    return str(int(value)) if digits == 0 or isinstance(value, int) else f"{value:.{digits}f}"


def main() -> int:
    data = load("00_data")
    if data:
        oracle = data["oracle_inversion"]
        counts = ", ".join(f"{split} {count}" for split, count in data["clips"].items())
        print(
            f"Dataset: {sum(data['clips'].values())} clips ({counts}) of {data['clip_seconds']} s at "
            f"{data['sample_rate']} Hz, "
            f"{data['programs']} programs, built in {data['build_seconds']} s."
        )
        print(
            f"Oracle inversion ({oracle['griffin_lim_iterations']} Griffin-Lim iterations, {oracle['clips']} test "
            f"clips): log-mel {oracle['log_mel_distance_db']:.2f} dB, spectral convergence "
            f"{oracle['spectral_convergence']:.3f}; zero phase {data['zero_phase_log_mel_distance_db']:.1f} dB.\n"
        )
    stage1 = load("01_autoencoder")
    if stage1:
        print("| method | latent | compression | kbps | log-mel dB | MR-STFT | spectral conv. |")
        print("|---|---|---|---|---|---|---|")
        for row in stage1["rows"]:
            print(
                f"| {row['method']} | {fmt(row['latent_dim'], 0)} | {fmt(row['compression_ratio'], 1)}x | "
                f"{fmt(row['bitrate_kbps'], 3)} | {fmt(row['log_mel_distance_db'])} | "
                f"{fmt(row['multi_resolution_stft'])} | {fmt(row['spectral_convergence'], 3)} |"
            )
        held = {(r["method"], r["latent_dim"]): r["log_mel_distance_db"] for r in stage1["heldout_rows"]}
        print("\nHeld-out programs (log-mel dB): " + ", ".join(f"{m} {k}: {v:.2f}" for (m, k), v in held.items()))
        print(
            f"Targets: {stage1['targets']}; training {stage1['training']['epochs_run']} epochs, "
            f"{stage1['training']['seconds']:.0f} s\n"
        )
    stage2 = load("02_latent_manipulation")
    if stage2:
        for name, effect in stage2["attribute_vectors"].items():
            extra = effect.get("real_family_centroid_difference_hz")
            print(
                f"- {name}: f0 shift median {effect['f0_shift_semitones_median']:+.1f} semitones, "
                f"RMS {effect['rms_change_db_mean']:+.1f} dB, centroid {effect['centroid_change_hz_mean']:+.0f} Hz"
                + (f" (real family difference {extra:+.0f} Hz)" if extra is not None else "")
            )
        hybrid = stage2["hybrids_50_50"]
        print(
            f"- 50-50 hybrids ({hybrid['pairs']} pairs): parents {hybrid['parent_to_parent_db']:.1f} dB apart; "
            f"spherical hybrid {hybrid['spherical']['hybrid_to_first_db']:.1f} / "
            f"{hybrid['spherical']['hybrid_to_second_db']:.1f} dB from each parent\n"
        )
    stage3 = load("03_vae")
    if stage3:
        print(
            f"Judge: pitch accuracy {stage3['classifier']['pitch_accuracy']:.3f}, "
            f"family accuracy {stage3['classifier']['family_accuracy']:.3f}\n"
        )
        print("| generator | Fréchet distance | NDB/K | pitch entropy (bits) | family entropy (bits) |")
        print("|---|---|---|---|---|")
        for name, row in stage3["generators"].items():
            print(
                f"| {name} | {row['frechet_distance']:.2f} | {row['ndb_over_k']:.2f} | "
                f"{row['pitch_entropy']:.2f} | {row['family_entropy']:.2f} |"
            )
        rec = stage3["reconstruction"]
        print(
            f"\nVAE reconstruction {rec['vae_log_mel_distance_db']:.2f} dB vs autoencoder (first "
            f"{rec['latent_dim']}) {rec['autoencoder_same_size_log_mel_distance_db']:.2f} dB; "
            f"active units {stage3['training']['active_units']}; targets {stage3['targets']}"
        )
    stage4 = load("04_control")
    if stage4:
        print_stage4(stage4)
    return 0


def print_stage4(stage4: dict) -> None:
    """Stage 4: unconditional generators, requests, edits, transfer and the playable results."""
    unconditional = stage4["unconditional"]
    chosen = {name: row["chosen_components"] for name, row in unconditional["mixture_selection"].items()}
    print(f"\nStage 4 ({unconditional['clips']} clips per generator; mixture components chosen: {chosen})\n")
    print("| generator | Fréchet distance | NDB/K | nearest training clip (median) | smallest family share / real |")
    print("|---|---|---|---|---|")
    real = unconditional["real_family_shares"]
    for name in (
        "vae",
        "cvae_label_prior",
        "ae_mixture",
        "ae_noise",
        "pca_gaussian",
        "vae_standard_prior",
        "real_floor",
        "real_test_roundtrip",
    ):
        row = unconditional.get(name)
        if row is None:
            continue
        ratio = min(row["family_shares"][family] / share for family, share in real.items() if share > 0)
        print(
            f"| {name} | {row['frechet_distance']:.1f} | {row['ndb_over_k']:.2f} | "
            f"{row['nearest_train_distance']:.2f} | {ratio:.2f} |"
        )
    conditional = stage4["conditional"]
    print(
        f"\nRequests ({conditional['requests']}): judge pitch {conditional['pitch_accuracy']:.3f}, "
        f"pyin within 50 cents "
        f"{conditional['pitch_within_50_cents']:.3f}, judge family {conditional['family_accuracy']:.3f}, loudness "
        f"Spearman (min over families) {conditional['loudness_spearman_min']:.2f}, Fréchet "
        f"{conditional['frechet_distance']:.1f} (real floor {conditional['real_floor']:.1f})"
    )
    print("\n| edit | within 50 cents | f0 shift (median) | judged family share | RMS change dB (median) |")
    print("|---|---|---|---|---|")
    edits = {
        "octave up: condition": stage4["octave_up"]["condition"],
        "octave up: attribute vector": stage4["octave_up"]["attribute_vector"],
        "transfer: condition swap": stage4["transfer"]["condition_swap"],
        "transfer: attribute vector": stage4["transfer"]["attribute_vector"],
        "transfer: pitch-shuffled control": stage4["transfer"]["pitch_shuffled_control"],
    }
    for name, row in edits.items():
        print(
            f"| {name} | {row['within_50_cents']:.2f} | {row['pitch_shift_semitones_median']:+.1f} | "
            f"{row['family_share']:.2f} | {row['rms_change_db']:+.1f} |"
        )
    instrument, melody = stage4["instrument"], stage4["melody"]
    print(
        f"\nInstrument: {instrument['samples']} samples, {instrument['within']:.0%} within 50 cents of their key; "
        f"melody ({melody['source']}, {melody['notes']} notes): {melody['within']:.0%} of "
        f"{melody['notes_measured']} measured notes within 50 cents"
    )
    print(f"Targets: {stage4['targets']}")


if __name__ == "__main__":
    sys.exit(main())
