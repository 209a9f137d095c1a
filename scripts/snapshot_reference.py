"""Make the last full run the README's reference run: copy its metrics into docs/reference_run/.

Run after a `make run-all` on a fresh clone (and `make run-all DATASET=genres`, whose metrics go to
docs/reference_run/genres/); then `scripts/results_table.py --reference --write
README.md` regenerates the README's results from the snapshot, and `tests/test_readme.py` keeps
the two in step. ``about.json`` records when and on what machine the run happened.

``--genres-only OUTPUTS``: copy only the genre collections' metrics, from another clone's
``OUTPUTS/datasets/genres/metrics`` (a run of ``make run-all DATASET=genres`` there), and leave
the notes' reference as it is.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from pathlib import Path

from PIL import Image

from lib.core.fileio import load_json, save_json
from lib.core.paths import PROJ_ROOT, metrics_path, outputs_dir

REFERENCE_FOLDER = PROJ_ROOT / "docs" / "reference_run"
FIGURES_FOLDER = PROJ_ROOT / "docs" / "figures"
README_FIGURES = ("01_rate_distortion.png", "04_generated_grid.png")  # shown in the README, small PNGs


def machine() -> str:
    """CPU model, cores, memory and GPU presence, in words."""
    model = platform.processor() or platform.machine()
    cpuinfo = "/proc/cpuinfo"
    if os.path.exists(cpuinfo):
        with open(cpuinfo) as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        model = names[0] if names else model
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {memory_gib:.0f} GiB RAM, no GPU used"


def copy_genres(source) -> list[str]:
    """Replace docs/reference_run/genres/ with the metrics files in ``source``."""
    (REFERENCE_FOLDER / "genres").mkdir(parents=True, exist_ok=True)
    for stale in (REFERENCE_FOLDER / "genres").glob("*.json"):
        stale.unlink()
    copied = []
    for path in sorted(source.glob("*.json")):
        shutil.copyfile(path, REFERENCE_FOLDER / "genres" / path.name)
        copied.append(path.name)
    return copied


def main() -> int:
    if sys.argv[1:2] == ["--genres-only"]:
        source = Path(sys.argv[2]) / "datasets" / "genres" / "metrics"
        if not list(source.glob("*.json")):
            print(f"no metrics in {source}: run `make run-all DATASET=genres` there first", file=sys.stderr)
            return 1
        print(json.dumps({"copied to genres/": copy_genres(source)}, indent=1))
        return 0
    source = outputs_dir(smoke=False) / "metrics"
    files = sorted(source.glob("*.json"))
    if not files:
        print(f"no metrics in {source}: run `make run-all` first", file=sys.stderr)
        return 1
    REFERENCE_FOLDER.mkdir(parents=True, exist_ok=True)
    for stale in REFERENCE_FOLDER.glob("*.json"):
        stale.unlink()
    for path in files:
        shutil.copyfile(path, REFERENCE_FOLDER / path.name)
    genres = outputs_dir(smoke=False, dataset="genres") / "metrics"  # the folder path's reference (README)
    if genres.exists():
        copy_genres(genres)
    FIGURES_FOLDER.mkdir(parents=True, exist_ok=True)
    for name in README_FIGURES:  # shrunk to 640 px and 256 colours: the repo stays small
        with Image.open(outputs_dir(smoke=False) / "figures" / name) as image:
            image.thumbnail((640, 640))
            image.convert("RGB").quantize(256).save(FIGURES_FOLDER / name, optimize=True)
    timings = load_json(metrics_path("run_notebooks", smoke=False))
    date = max(entry["finished"] for entry in timings.values())[:10]
    save_json(REFERENCE_FOLDER / "about.json", {"date": date, "machine": machine()}, overwrite=True)
    print(json.dumps({"copied": [p.name for p in files], "date": date, "machine": machine()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
