"""Which figures a run is judged by, and in which form: the catalogue behind ``make check``.

The README's results are generated from a run's metrics files (``scripts/results_table.py``).
:func:`quoted_figures` runs that generator over a metrics record that records every number it
reads, so the list of figures the README quotes is never written by hand: a figure added to the
README is a figure ``make check`` must watch (``tests/test_checks.py`` fails until
``scripts/measure_spread.py`` gives it an expectation).

Each quoted figure is then watched in the form that depends least on the run's own yardsticks
(:func:`watched_form`): a generator's Fréchet distance as a ratio to the same run's real floor, a
codec's distance as its difference to the same run's PCA at the same size, a family's share of
samples as the lowest and highest ratio to its real share (the form the README shows). Times and
speeds depend on the machine: they are watched only by the benchmark's own section, as ratios to
the reference machine's figures (:data:`MACHINE_DEPENDENT`).

Imports: only the standard library (the layer below :mod:`lib.lab.checks`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

# Fields that name a record in a list (``rows[method=pca,latent_dim=8]``), not a figure.
IDENTITY_FIELDS = frozenset(
    {"method", "latent_dim", "genre", "implementation", "init", "iterations", "strength", "temperature"}
)
# Files whose every number is a time or a machine's description.
MACHINE_FILES = frozenset({"run_notebooks", "about"})
# Keys whose numbers are times, speeds or memory: they move from machine to machine.
MACHINE_DEPENDENT = re.compile(
    r"(seconds|per_second|realtime|real_time|hours_per_minute|peak_memory|peak_rss|rss_after|finished|"
    r"clips_per_second|date)"
)


class _TracedDict(dict):
    """A dict that reports the path of every number (or boolean) read from it."""

    def __init__(self, data: dict, path: str, log: Callable[[str], None]) -> None:
        super().__init__(data)
        self._path, self._log = path, log

    def _wrap(self, key: Any, value: Any) -> Any:
        path = f"{self._path}.{key}" if self._path else str(key)
        return _traced(value, path, self._log)

    def __getitem__(self, key):
        return self._wrap(key, super().__getitem__(key))

    def get(self, key, default=None):
        return self._wrap(key, super().__getitem__(key)) if key in self else default

    def items(self):
        return [(key, self._wrap(key, value)) for key, value in super().items()]

    def values(self):
        return [self._wrap(key, value) for key, value in super().items()]


def _selector(record: dict) -> str:
    """``[field=value,...]`` of a list element, from its identity fields (or its position)."""
    fields = [(key, value) for key, value in record.items() if key in IDENTITY_FIELDS]
    text = ",".join(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}" for key, value in fields)
    return f"[{text}]"


def _traced(value: Any, path: str, log: Callable[[str], None]) -> Any:
    if isinstance(value, dict):
        return _TracedDict(value, path, log)
    if isinstance(value, list):
        if value and all(isinstance(item, dict) for item in value):
            return [_TracedRecord(item, f"{path}{_selector(item)}", log) for item in value]
        return value
    if isinstance(value, bool | int | float) and value is not None:
        log(path)
    return value


class _TracedRecord(_TracedDict):
    """A list element: its identity fields are read without counting as figures."""

    def _wrap(self, key: Any, value: Any) -> Any:
        if key in IDENTITY_FIELDS:
            return value
        return super()._wrap(key, value)


def quoted_figures(render: Callable[[dict], Any], runs: dict[str, dict]) -> list[tuple[str, str]]:
    """(metrics file stem, figure path) of every number ``render(runs)`` reads, in reading order.

    ``runs`` maps a metrics file's stem (``01_autoencoder``) to its record; paths use
    :func:`lib.lab.checks.resolve`'s syntax (``rows[method=pca,latent_dim=8].log_mel_distance_db``).
    """
    seen: dict[tuple[str, str], None] = {}

    def log(path: str) -> None:
        stem, _, figure = path.partition(".")
        if figure:
            seen.setdefault((stem, figure), None)

    render(_TracedDict(runs, "", log))
    return list(seen)


def machine_dependent(stem: str, figure: str) -> bool:
    """Is this figure a time, a speed or a memory size (it moves with the machine)?"""
    return stem in MACHINE_FILES or bool(MACHINE_DEPENDENT.search(figure))


_GENERATOR = re.compile(r"^(?P<group>generators|unconditional)\.(?P<name>\w+)\.frechet_distance$")
_SHARES = re.compile(r"^unconditional\.(?P<name>\w+)\.family_shares\.\w+$")
_CODEC_ROW = re.compile(
    r"^(?P<rows>rows|heldout_rows|reconstruction)\[(?P<who>[^\]]*method=autoencoder[^\]]*)\]\.(?P<metric>\w+)$"
)
_NEAREST = re.compile(r"^unconditional\.(?P<name>\w+)\.nearest_train_distance$")
_GENRE_FRECHET = re.compile(r"^conditional\.frechet_by_genre\.(?P<genre>\w+)$")
YARDSTICKS = ("real_floor", "real_test_roundtrip")
# Whole recordings (notebook 06, ``lml report``): the codec beside PCA through the same clips; the
# sequence model's errors, windows and continuity beside the same run's baselines and real recordings.
RECORDING_STEMS = ("06_recordings", "recordings")
_RECORDING_CODEC = re.compile(
    r"^(?P<at>codec|summary)\.(distance_db\.recording codec(, no search)?|distance_db_with_more_iterations)$"
)
_ISOLATED = re.compile(r"^(?P<at>codec|summary)\.isolated_distance_db\.(?P<grid>[\d.]+)$")
_PREDICTION = re.compile(r"^prediction\.(?P<horizon>\d+)\.(?P<who>\w+)$")
_WINDOWS = re.compile(r"^generation\.(?P<measure>frechet_distance|continuity)\.(?P<who>\w+)$")
# In the units of the model's own latent: yardsticks the figures above are divided by, not watched alone.
_LATENT_YARDSTICKS = re.compile(
    r"^(prediction\.\d+\.training_mean|generation\.frechet_distance\.real_floor|generation\.continuity\.real_recordings)$"
)


def watched_forms(stem: str, figure: str) -> list[str]:
    """The expressions ``make check`` watches for one quoted figure (empty: not watched).

    Expressions are paths, ``A / B`` or ``A - B`` of two paths, or ``min_ratio(A, B)`` /
    ``max_ratio(A, B)`` over two records of numbers with the same keys (see :func:`lib.lab.checks.evaluate`).
    """
    if machine_dependent(stem, figure):
        return []
    generator = _GENERATOR.match(figure)
    if generator and generator.group("name") not in YARDSTICKS:
        return [f"{figure} / {generator.group('group')}.real_floor.frechet_distance"]
    shares = _SHARES.match(figure)
    if shares:
        own = f"unconditional.{shares.group('name')}.family_shares"
        return [
            f"min_ratio({own}, unconditional.real_family_shares)",
            f"max_ratio({own}, unconditional.real_family_shares)",
        ]
    if figure.startswith("unconditional.real_family_shares."):
        return [figure]
    near = _NEAREST.match(figure)
    if near and near.group("name") not in YARDSTICKS:  # beside unseen real clips' distance, same run
        return [f"{figure} / unconditional.real_test_roundtrip.nearest_train_distance"]
    codec = _CODEC_ROW.match(figure)
    if codec and codec.group("metric") in ("log_mel_distance_db", "multi_resolution_stft", "spectral_convergence"):
        pca = codec.group("who").replace("method=autoencoder", "method=pca")
        return [f"{figure} - {codec.group('rows')}[{pca}].{codec.group('metric')}"]
    if stem in RECORDING_STEMS:
        return _recording_forms(figure)
    if figure == "conditional.frechet_distance":
        return [f"{figure} / conditional.real_floor"]
    genre = _GENRE_FRECHET.match(figure)
    if genre:
        return [f"{figure} / conditional.real_floor_by_genre.{genre.group('genre')}"]
    return [figure]


def _recording_forms(figure: str) -> list[str]:
    """Watched forms of notebook 06's and ``lml report``'s figures (see :data:`RECORDING_STEMS`)."""
    if _LATENT_YARDSTICKS.match(figure):
        return []
    codec = _RECORDING_CODEC.match(figure)
    if codec:
        return [f"{figure} - {codec.group('at')}.distance_db.pca, same clips"]
    isolated = _ISOLATED.match(figure)
    if isolated:  # beside the recording codec on the same spans: the isolated-clip target's own comparison
        return [f"{figure} - {isolated.group('at')}.isolated_recording_codec_distance_db.{isolated.group('grid')}"]
    if figure in ("isolated_mean_over_grids_db", "recording_codec_on_isolated_spans_db"):
        return ["isolated_mean_over_grids_db - recording_codec_on_isolated_spans_db"]
    prediction = _PREDICTION.match(figure)
    if prediction:
        return [f"{figure} / prediction.{prediction.group('horizon')}.training_mean"]
    windows = _WINDOWS.match(figure)
    if windows:
        yardstick = "real_floor" if windows.group("measure") == "frechet_distance" else "real_recordings"
        return [f"{figure} / generation.{windows.group('measure')}.{yardstick}"]
    return [figure]


_LOWER = re.compile(
    r"(log_mel_distance_db|multi_resolution_stft|spectral_convergence|frechet|ndb_over_k|seam_ratio|"
    r"recording codec|distance_db_with_more_iterations|prediction\.\d+\.sequence_model|"
    r"frechet_distance\.sequence_model)"
)
_HIGHER = re.compile(
    r"(accuracy|within_50_cents|\.within$|spearman|requested_genre_share|requested_label_share|judge_accuracy|"
    r"entropy|active_units|"
    r"target_family_share|family_share$|pitch_kept|target_share|onset_correlation|chroma_correlation|min_ratio)"
)
# Records that are yardsticks or controls: they should stay where they are, not improve.
_NEUTRAL = re.compile(
    r"(method=(pca|oracle|opus|mp3)|real_floor|real_test_roundtrip|real_family_shares|random_target_(phrase|clip)|"
    r"target_average_phrase|source_reconstruction|pitch_shuffled_control|attribute_vector|"
    r"f0_shift|rms_change|centroid_change|max_ratio|standard_prior|hybrid|noise_sweep|pca, same clips|"
    r"\.original$|\.oracle$|\.opus$|\.pca$|opus_bitrate|repeat_last_frame|independent_samples|shuffled_real_clips|"
    r"isolated|continuity)"
)


def direction(expression: str) -> str:
    """Which way is better for a watched expression: ``lower``, ``higher`` or ``near`` (either way).

    Yardsticks (PCA, the oracle, the real floor), controls and effects that have a right size rather
    than a better side (an edit's pitch shift, a hybrid's distance) are ``near``.
    """
    if " - " in expression and "method=autoencoder" in expression:
        return "lower"  # the codec's distance beside PCA's
    subject = re.split(r" / | - |, ", expression)[0]  # the figure itself, not the yardstick beside it
    if _NEUTRAL.search(subject):
        return "near"
    if _LOWER.search(subject):
        return "lower"
    if _HIGHER.search(subject):
        return "higher"
    return "near"


_EXACT = re.compile(
    r"(clips|files|programs|requests|samples|notes|pairs|clip_seconds|sample_rate|latent_dim|latent_size|"
    r"compression_ratio|"
    r"bitrate_kbps|griffin_lim_iterations|scores_by_genre|phrase_seconds|repeats|labels)"
)


def tolerance_floor(expression: str, reference: float) -> float:
    """The least tolerance a figure gets, whatever its measured spread: the resolution at which a
    change means something (0 for counts and settings that must not move at all)."""
    if _EXACT.search(expression) and float(reference).is_integer():
        return 0.0
    if "chosen_components" in expression:
        return 0.5 * abs(reference)  # a size chosen from doubling candidates: one step down (seen on another machine)
    if "seam_ratio" in expression:
        return 0.1 * abs(reference)  # the resolution of the seams target (within 10 %)
    if "semitones" in expression:
        return 0.2  # the pitch tracker's grid
    if "ndb_over_k" in expression:
        return 0.1  # two of the 20 bins
    if "_ratio(" in expression or " / " in expression:
        return 0.1
    if "accuracy_files" in expression:
        return 0.1  # verdicts per file move a whole file at a time (a twelfth of the genres' test files)
    if re.search(r"(share|accuracy|within|correlation|spearman|kept)", expression):
        return 0.03
    if "entropy" in expression:
        return 0.1
    if re.search(r"(_db|stft|convergence)", expression):
        return 0.05
    return 0.02 * abs(reference)


def expressions(quoted: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(stem, expression) pairs for a list of quoted figures, without repeats, in order."""
    seen: dict[tuple[str, str], None] = {}
    for stem, figure in quoted:
        for form in watched_forms(stem, figure):
            seen.setdefault((stem, form), None)
    return list(seen)


_NAMED_MAPPINGS = re.compile(r"(shares|_by_genre|clips)$")


def record_names(records: Iterable[dict]) -> set[str]:
    """Keys that name things (a generator, a genre, a family) rather than a measure, in metrics records:
    the keys of mappings whose values are mostly records, and of mappings of numbers by name
    (``family_shares``, ``frechet_by_genre``, ``clips``)."""
    names: set[str] = set()

    def visit(value: Any, key: str) -> None:
        if isinstance(value, dict):
            values = list(value.values())
            records = sum(isinstance(item, dict) for item in values)
            if key and values and records >= 2 and records >= 2 * len(values) / 3:  # not the record's own top level
                names.update(value)
            elif values and _NAMED_MAPPINGS.search(key) and all(isinstance(item, int | float) for item in values):
                names.update(value)
            for child_key, child in value.items():
                visit(child, str(child_key))
        elif isinstance(value, list):
            for item in value:
                visit(item, key)

    for record in records:
        visit(record, "")
    return names


def spread_group(stem: str, expression: str, names: set[str]) -> str:
    """The family of figures whose spread is pooled (``scripts/measure_spread.py``): the same measure of
    different generators, genres, families or sizes, e.g. ``04_control:unconditional.X.ndb_over_k``."""
    first = re.split(r" / | - ", expression)[0]
    kind = "ratio" if " / " in expression else "difference" if " - " in expression else "value"
    first = re.sub(r"\[[^\]]*\]", "[]", first)
    first = re.sub(r"\(([^,]*)\.\w+\.family_shares", r"(\1.X.family_shares", first)
    parts = ["X" if part in names else part for part in first.split(".")]
    return f"{stem}:{kind}:{'.'.join(parts)}"
