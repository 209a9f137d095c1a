"""How much the whole-recording codec's clip overlap costs and buys, at a fixed rate of numbers per second.

Usage: ``LML_DATASET=genres .venv/bin/python scripts/recording_hops.py [HOP_SAMPLES ...]``
(after notebook 01 has trained the dataset's model; default hops: the default eighth-of-a-clip
overlap and three smaller overlaps).

At a fixed rate, a smaller overlap leaves more numbers per clip (latent size
``rate x hop / sample rate``) but fewer frames to cross-fade seams over. For each hop, every test
file goes through ``lml``'s round trip; writes ``<outputs>/metrics/recording_hops.json``: per hop the
latent size, the log-mel distance (whole files, and on the spans of the isolated clips' four grids
that ``lml report`` uses) and the seam ratio (spectral flux at clip boundaries over elsewhere).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from lib.core.fileio import save_json
from lib.core.paths import DATASET_ENV_VAR, metrics_path
from lib.lab.cli import _model
from lib.measure import recording_report as report
from lib.models.recording import default_clip_hop, latent_size_for_rate

NUMBERS_PER_SECOND = 32.0


def measure_hop(model, files: list, hop: int) -> dict:
    """Mean figures of the recording codec over ``files`` with clips every ``hop`` samples."""
    codec = model.codec
    config = codec.representation.config
    rate = config.sample_rate
    size = latent_size_for_rate(config, NUMBERS_PER_SECOND, codec.latent_dim, hop)
    rows = []
    for path in files:
        waveform, _ = report.read_file(path, rate)
        back = report.recording_round_trip(codec, waveform, latent_size=size, clip_hop_samples=hop)
        spans = {}
        for share in report.GRID_OFFSETS:
            offset = int(round(share * config.clip_samples))
            end = offset + (len(waveform) - offset) // config.clip_samples * config.clip_samples
            spans[f"{share:g}"] = report.distance_db(waveform[offset:end], back[offset:end], sample_rate=rate)
        boundaries = report.clip_boundaries(len(waveform), config.clip_samples, hop)
        rows.append(
            {
                "distance_db": report.distance_db(waveform, back, sample_rate=rate),
                "spans": spans,
                "seam_ratio": report.seam_ratio(back, boundaries, sample_rate=rate),
            }
        )
    return {
        "clip_hop_samples": hop,
        "overlap_frames": (config.clip_samples - hop) // config.hop_length + 1,
        "latent_size": size,
        "numbers_per_second": size * rate / hop,
        "distance_db": float(np.mean([row["distance_db"] for row in rows])),
        "distance_db_on_isolated_spans": {
            grid: float(np.mean([row["spans"][grid] for row in rows])) for grid in rows[0]["spans"]
        },
        "seam_ratio": float(np.mean([row["seam_ratio"] for row in rows])),
    }


def main(arguments: list[str]) -> int:
    model = _model(os.environ.get(DATASET_ENV_VAR) or "genres", None, None)
    config = model.codec.representation.config
    files = [path for path, _ in model.trained.files("test")]
    default = default_clip_hop(config)
    frames = default // config.hop_length
    hops = [int(value) for value in arguments] or [(frames + extra) * config.hop_length for extra in (0, 3, 5, 7)]
    results = []
    for hop in hops:
        results.append(measure_hop(model, files, hop))
        print({key: value for key, value in results[-1].items() if key != "distance_db_on_isolated_spans"}, flush=True)
    content = {
        "model": {"name": model.name, "fingerprint": model.fingerprint},
        "files": len(files),
        "numbers_per_second_requested": NUMBERS_PER_SECOND,
        "default_clip_hop_samples": default,
        "hops": results,
    }
    path = save_json(metrics_path("recording_hops"), content, overwrite=True)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
