"""``lml``: the lab's command line for whole recordings (installed with the package).

    lml compress song.flac [song.lml] [--dataset genres] [--rate 32 | --size N]
    lml decompress song.lml [song.wav]
    lml info song.lml

``compress`` reads any file the folder path reads (any length, format, rate, channels; a bad
file gets the folder path's one-line message) and writes the latents of its overlapping clips
(``lib.models.container``'s format) with a trained model of the lab, chosen by the dataset it was
trained on (default: the genre collections' music model, not the notes'). ``decompress`` writes
a mono 16-bit WAV at the lab's rate and the original length, with the model that compressed it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from lib.core import paths
from lib.core.errors import LabError
from lib.models.container import SUFFIX, read_container

DEFAULT_RATE = 32.0  # latent numbers per second of audio
EXIT_ERROR = 2


def _steps(text: str) -> int:
    """A count of search steps: a whole number, 0 or more."""
    steps = int(text)
    if steps < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {steps}")
    return steps


def build_parser() -> argparse.ArgumentParser:
    """The ``lml`` argument parser."""
    parser = argparse.ArgumentParser(prog="lml", description="Compress and decompress whole recordings.")
    commands = parser.add_subparsers(dest="command", required=True)
    compress = commands.add_parser("compress", help="audio file -> compressed .lml file")
    compress.add_argument("source", type=Path, help="audio file (WAV, FLAC, OGG, Opus, MP3, AIFF …)")
    compress.add_argument("destination", type=Path, nargs="?", help=f"compressed file (default: source with {SUFFIX})")
    compress.add_argument(
        "--dataset",
        default="genres",
        help="the dataset whose trained model compresses: genres (default), notes or a folder of audio",
    )
    compress.add_argument("--model", help="the dataset's model by name (autoencoder, or phrases for the genres)")
    compress.add_argument("--clip-seconds", type=float, help="clip length of the dataset's model (CLIP_SECONDS)")
    size = compress.add_mutually_exclusive_group()
    size.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help=f"latent numbers per second (default {DEFAULT_RATE:g})"
    )
    size.add_argument("--size", type=int, help="latent numbers per clip (instead of --rate)")
    decompress = commands.add_parser("decompress", help="compressed .lml file -> WAV")
    decompress.add_argument("source", type=Path, help="compressed file")
    decompress.add_argument("destination", type=Path, nargs="?", help="WAV file (default: source with .wav)")
    decompress.add_argument("--dataset", help="the dataset whose model decodes (default: the one the file names)")
    decompress.add_argument("--model", help="the dataset's model by name (default: the one the file names)")
    decompress.add_argument("--clip-seconds", type=float, help="clip length of the dataset's model (CLIP_SECONDS)")
    decompress.add_argument("--iterations", type=int, help="Griffin-Lim iterations (default: the model's)")
    info = commands.add_parser("info", help="what a compressed file holds")
    info.add_argument("source", type=Path)
    report = commands.add_parser(
        "report", help="measure whole files against PCA, isolated clips, Opus and the oracle, with a listening page"
    )
    report.add_argument("files", type=Path, nargs="*", help="audio files (default: the dataset's test files)")
    report.add_argument("--dataset", default="genres", help="the dataset whose trained model compresses")
    report.add_argument("--model", help="the dataset's model by name")
    report.add_argument("--clip-seconds", type=float, help="clip length of the dataset's model (CLIP_SECONDS)")
    report.add_argument("--rate", type=float, default=DEFAULT_RATE, help="latent numbers per second")
    report.add_argument("--listen", type=int, default=4, help="files with players on the listening page")
    for command in (compress, report):
        command.add_argument(
            "--search-steps",
            type=_steps,
            help="gradient steps that search the clips' numbers, overlapping neighbours together, for the closest "
            "decoding (default: the lab's REFINE_STEPS; 0: the encoder's numbers as they are, faster to compress; "
            "the file decodes the same way)",
        )
    for command in (compress, decompress):
        command.add_argument("--force", action="store_true", help="replace the destination if it exists")
        command.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``lml`` command; returns the exit status (0, or 2 with a one-line message on stderr)."""
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if arguments.command == "info":
            print(describe(arguments.source))
        elif arguments.command == "compress":
            compress(arguments)
        elif arguments.command == "report":
            from lib.measure.recording_report import run_report

            model = _model(arguments.dataset, arguments.model, arguments.clip_seconds)
            print(
                run_report(
                    model,
                    arguments.files,
                    numbers_per_second=arguments.rate,
                    listen=arguments.listen,
                    refine_steps=_search_steps(arguments),
                )
            )
        else:
            decompress(arguments)
    except (LabError, FileExistsError, ValueError) as error:
        print(f"lml {arguments.command}: {error}", file=sys.stderr)
        return EXIT_ERROR
    return 0


@contextlib.contextmanager
def _quiet_native_stderr():
    """Hide what TensorFlow's C++ start-up writes straight to the stderr file descriptor."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _model(dataset: str, name: str | None, clip_seconds: float | None):
    """Load the trained model of a dataset (a folder's path as given, or a shipped name)."""
    with _quiet_native_stderr():
        import keras  # noqa: F401  (its start-up notices are not the command's output)
    from lib.models import recording

    if dataset not in paths.SHIPPED_DATASETS:
        dataset = str(Path(dataset).expanduser().resolve())
    os.environ[paths.DATASET_ENV_VAR] = dataset  # the clip length and the paths follow the dataset
    if clip_seconds is not None:
        os.environ[paths.CLIP_SECONDS_ENV_VAR] = f"{clip_seconds:g}"
    return recording.find_model(dataset, name).load()


def compress(arguments: argparse.Namespace) -> None:
    """``lml compress``: write the compressed file and say what it holds."""
    from lib.data.audio import check_file
    from lib.models import recording

    check_file(arguments.source)  # a missing or non-audio file is named before a model is loaded
    destination = arguments.destination or recording.compressed_name(arguments.source)
    recording.refuse_overwrite(destination, arguments.force)  # before a model is loaded
    model = _model(arguments.dataset, arguments.model, arguments.clip_seconds)
    config = model.codec.representation.config
    hop = recording.default_clip_hop(config)
    size = arguments.size or recording.latent_size_for_rate(config, arguments.rate, model.codec.latent_dim, hop)
    summary = recording.compress_file(
        arguments.source,
        destination,
        model,
        latent_size=size,
        clip_hop_samples=hop,
        overwrite=arguments.force,
        progress=not arguments.quiet,
        refine_steps=_search_steps(arguments),
    )
    header = summary.header
    print(
        f"{paths.shown(arguments.source)} -> {paths.shown(destination)}: {header.seconds:.1f} s "
        f"({header.source_sample_rate} Hz, {header.source_channels} channel(s)) as mono at {header.sample_rate} Hz; "
        f"{header.frame_count} clips of {header.latent_size} numbers ({header.numbers_per_second:.1f} per second), "
        f"{summary.file_bytes:,} bytes = {summary.bitrate_kbps:.2f} kbit/s; model {model.name} of "
        f"{paths.shown(model.dataset)} ({model.fingerprint}); {summary.speed:.0f}x real time"
    )


def _search_steps(arguments: argparse.Namespace) -> int:
    """``--search-steps``, or the lab's default (``lib.models.refine.REFINE_STEPS``)."""
    from lib.models.refine import REFINE_STEPS

    return REFINE_STEPS if arguments.search_steps is None else arguments.search_steps


def decompress(arguments: argparse.Namespace) -> None:
    """``lml decompress``: write the WAV and say what it is."""
    from lib.models import recording

    destination = arguments.destination or arguments.source.with_suffix(".wav")
    recording.refuse_overwrite(destination, arguments.force)  # before a model is loaded
    header, _ = read_container(arguments.source)
    model = _model(
        arguments.dataset or header.model_dataset, arguments.model or header.model_name, arguments.clip_seconds
    )
    summary = recording.decompress_file(
        arguments.source,
        destination,
        model,
        overwrite=arguments.force,
        progress=not arguments.quiet,
        iterations=arguments.iterations,
    )
    print(
        f"{paths.shown(arguments.source)} -> {paths.shown(destination)}: {header.seconds:.1f} s, mono 16-bit WAV at "
        f"{header.sample_rate} Hz (the source was {header.source_sample_rate} Hz, {header.source_channels} "
        f"channel(s)); {summary.speed:.0f}x real time"
    )


def describe(source: Path) -> str:
    """``lml info``: the header of a compressed file, in words."""
    header, _ = read_container(source)
    size = source.stat().st_size
    return "\n".join(
        [
            f"{paths.shown(source)}: latent music lab compressed file, format version {header.format_version}",
            f"  source        {header.source_name} "
            f"({header.source_sample_rate} Hz, {header.source_channels} channel(s))",
            f"  length        {header.seconds:.3f} s ({header.samples} samples at {header.sample_rate} Hz, mono)",
            f"  clips         {header.frame_count} of {header.clip_samples} samples, "
            f"one every {header.clip_hop_samples}",
            f"  latents       {header.latent_size} numbers per clip, {header.numbers_per_second:.1f} per second",
            f"  size          {size:,} bytes ({8 * size / header.seconds / 1000:.2f} kbit/s)",
            f"  model         {header.model_name} of {paths.shown(header.model_dataset)} ({header.model_fingerprint})",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
