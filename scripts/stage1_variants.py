"""Stage 1 variants measured quickly: train one autoencoder as notebook 01 does, with a few settings changed.

Usage::

    .venv/bin/python scripts/stage1_variants.py NAME [--sizes 32 64 128] [--width 1024] [--epochs 80]
        [--dropout 0.1] [--layers 2] [--learning-rate 2e-3] [--batch-size 256] [--no-linear-path]
        [--no-augment] [--basis 1024] [--seed 0]

``LML_DATASET`` chooses the data (the notes by default, ``genres``, or a folder). The model trains on
the same clips, augmented copies, mel-weighted loss and cosine schedule as notebook 01's, in a run
folder of its own (``<outputs>/models/stage1_variants/NAME``), and is measured by the log-mel distance
on magnitudes (before Griffin-Lim, about 0.1 dB below notebook 01's figures) of the test split and,
on the notes, of the held-out programs notebook 01 reports (25 and 71), at each of its sizes, beside
PCA. No calibration and no per-clip choice: the trained model as it stands. Each run appends its
record to ``<outputs>/variants/stage1_variants.json`` (beside, not among, the stages' metrics files).

The issue-24 scratch comparisons (a model for 8 and 16 numbers alone, the shared model without them)
were made this way.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from lib.core import paths
from lib.core.fileio import load_json, save_json
from lib.data import augment
from lib.data import dataset as datasets
from lib.models.autoencoder import (
    AutoencoderConfig,
    build_autoencoder,
    loss_weighting,
    mel_bin_weights,
    truncate_latents,
)
from lib.models.codec import magnitude_distance_db, run_model
from lib.models.training import TrainingConfig, coefficient_pairs, fit_or_load
from lib.spectral.basis import SpectralBasis

CALIBRATION_PROGRAMS = (6, 42)  # notebook 01's: left out of the held-out figures
BETWEEN_OFFSETS = (0.25, 0.5, 0.75)  # notebook 01's windows between clips (a folder)


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the variant's name (its run folder and its record)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128], help="nested latent sizes")
    parser.add_argument("--width", type=int, default=1024, help="units per hidden layer")
    parser.add_argument("--epochs", type=int, default=80, help="epochs of the cosine schedule")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--layers", type=int, default=2, help="hidden layers in the encoder and in the decoder")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="first rate of the cosine schedule")
    parser.add_argument("--batch-size", type=int, default=256, help="clips per step")
    parser.add_argument("--basis", type=int, default=1024, help="PCA coefficients the networks read and write")
    parser.add_argument("--no-linear-path", action="store_true", help="plain Dense maps instead of PCA + residuals")
    parser.add_argument("--no-augment", action="store_true", help="no mixtures and pitch shifts")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def distances(encoder, decoder, basis: SpectralBasis, representation, spectrograms: np.ndarray, sizes) -> dict:
    """Log-mel distance (dB, magnitudes) of the model and of PCA at each size on spectrograms (n, bins, frames)."""
    latents = np.asarray(run_model(encoder, basis.transform(spectrograms)), dtype=np.float32)
    figures = {}
    for size in sizes:
        decoded = basis.inverse(np.asarray(run_model(decoder, truncate_latents(latents, size))))
        figures[size] = {
            "autoencoder": magnitude_distance_db(representation, spectrograms, decoded),
            "pca": magnitude_distance_db(representation, spectrograms, basis.reconstruct(spectrograms, size)),
        }
    return figures


def main(argv: list[str]) -> int:
    options = arguments(argv)
    dataset = datasets.load_dataset()
    representation = dataset.representation
    waveforms, rows, spectrograms = {}, {}, {}
    for split in ("train", "valid", "test", "heldout"):
        waveforms[split], rows[split] = dataset.split(split)
        spectrograms[split] = representation.forward(waveforms[split])
    reported = np.array([row.get("program") not in CALIBRATION_PROGRAMS for row in rows["heldout"]], dtype=bool)
    spectrograms["heldout"] = spectrograms["heldout"][reported] if len(reported) else spectrograms["heldout"]
    basis = SpectralBasis.fit(spectrograms["train"], options.basis, seed=options.seed)
    coefficients = {split: basis.transform(spectrograms[split]) for split in ("train", "valid")}
    extra_clips = augment.training_extras(
        waveforms["train"],
        rows["train"],
        seed=options.seed,
        clip_seconds=dataset.config.clip_seconds,
        mix_and_shift=not options.no_augment,
        between_offsets=list(BETWEEN_OFFSETS),
    )
    extra = basis.transform(representation.forward(extra_clips)) if len(extra_clips) else np.zeros((0, basis.size))
    training = np.concatenate([coefficients["train"], extra]).astype(np.float32)
    config = representation.config
    bin_weights = mel_bin_weights(config.sample_rate, config.n_fft, config.frequency_bins)
    weighting = loss_weighting(basis.components, bin_weights, config.frames)
    model_config = AutoencoderConfig(
        basis_size=basis.size,
        latent_dim=max(options.sizes),
        hidden_width=options.width,
        hidden_layers=options.layers,
        nested_sizes=tuple(sorted(options.sizes)),
        linear_path=not options.no_linear_path,
        dropout=options.dropout,
    )
    std = coefficients["train"].std(axis=0)
    started = time.perf_counter()
    result = fit_or_load(
        lambda: build_autoencoder(model_config, std, seed=options.seed, loss_weighting=weighting),
        coefficient_pairs(training, weighting),
        coefficient_pairs(coefficients["valid"], weighting),
        run_folder=paths.models_dir() / "stage1_variants" / options.name,
        config=TrainingConfig(
            epochs=options.epochs,
            batch_size=options.batch_size,
            learning_rate=options.learning_rate,
            seed=options.seed,
            schedule="cosine",
        ),
        settings={"model": model_config.to_dict(), "data": dataset.fingerprint(), "augment": not options.no_augment},
    )
    encoder, decoder = result.model.get_layer("encoder"), result.model.get_layer("decoder")
    record = {
        "name": options.name,
        "dataset": paths.dataset_choice(),
        "options": vars(options),
        "seconds": time.perf_counter() - started,
        "epochs_run": len(result.history.get("loss", [])),
        "magnitude_distances_db": {
            split: distances(encoder, decoder, basis, representation, spectrograms[split], model_config.nested_sizes)
            for split in ("test", "heldout")
            if len(spectrograms[split])
        },
    }
    path = paths.outputs_dir() / "variants" / "stage1_variants.json"
    earlier = load_json(path) if path.exists() else []
    save_json(path, [*earlier, record], overwrite=True)
    for split, figures in record["magnitude_distances_db"].items():
        for size, row in figures.items():
            print(f"{options.name} {split} {size:>4}: autoencoder {row['autoencoder']:.3f} dB, PCA {row['pca']:.3f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
