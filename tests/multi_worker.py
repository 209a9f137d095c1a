"""One worker of a two-process ``MultiWorkerMirroredStrategy`` run on 127.0.0.1 (used by the tests).

    python -m tests.multi_worker INDEX PORT_0,PORT_1 OUTPUT_FOLDER

Sets ``TF_CONFIG`` for worker ``INDEX``, trains a small autoencoder for a few epochs with
``lib.models.training.fit_or_load`` under ``LML_DISTRIBUTION=multi-worker``, and writes the final
weights and the loss history to ``OUTPUT_FOLDER/worker_INDEX.npz``. Every worker builds the same
synthetic data (low-rank coefficients plus noise, seeded), as machines with the same prepared
dataset would, then adds a little noise of its own: two workers that trained separately would
end apart, so identical weights show that their updates were synchronised.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(arguments: list[str]) -> int:
    index, ports, output = int(arguments[0]), arguments[1].split(","), Path(arguments[2])
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
    )
    os.environ["LML_DISTRIBUTION"] = "multi-worker"
    import numpy as np

    from lib.models import distribute
    from lib.models.autoencoder import AutoencoderConfig, build_autoencoder
    from lib.models.training import TrainingConfig, fit_or_load

    strategy = distribute.make_strategy()  # before any other TensorFlow operation
    rng = np.random.default_rng(0)
    config = AutoencoderConfig(basis_size=32, latent_dim=8, hidden_width=64, hidden_layers=1, nested_sizes=(4, 8))
    mixing = rng.standard_normal((6, config.basis_size)).astype(np.float32)
    coefficients = rng.standard_normal((320, 6)).astype(np.float32) @ mixing
    coefficients += 0.05 * rng.standard_normal(coefficients.shape).astype(np.float32)
    train, valid = coefficients[:256], coefficients[256:]
    train = train + 0.01 * np.random.default_rng(100 + index).standard_normal(train.shape).astype(np.float32)
    std = coefficients.std(axis=0)
    result = fit_or_load(
        lambda: build_autoencoder(config, std, seed=0),
        (train, train),
        (valid, valid),
        run_folder=output / f"run_{index}",  # each machine has its own disk
        config=TrainingConfig(epochs=4, batch_size=32, learning_rate=3e-3, patience=10),
        settings={"test": "multi-worker"},
        strategy=strategy,
    )
    weights = {f"weight_{number}": value for number, value in enumerate(result.model.get_weights())}
    np.savez(
        output / f"worker_{index}.npz",
        loss=np.asarray(result.history["loss"]),
        val_loss=np.asarray(result.history["val_loss"]),
        replicas=np.asarray(distribute.describe(strategy)["replicas"]),
        predictions=result.model.predict(valid, verbose=0),
        **weights,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
