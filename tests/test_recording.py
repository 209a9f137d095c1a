"""Whole recordings: the compressed-file format, seamless decoding, flat memory and the command line."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
import soundfile

from lib.core.errors import AudioInputError
from lib.lab.cli import main
from lib.measure.recording_report import boundary_mask, clip_boundaries, distance_db, seam_ratio
from lib.models import container, recording
from lib.spectral.basis import SpectralBasis
from lib.spectral.inversion import PhaseIntegrator
from lib.spectral.representation import SpectrogramRepresentation

RATE = 16_000


def gliding_tone(seconds: float, *, rate: int = RATE) -> np.ndarray:
    """A steady tone with a slow vibrato and a few harmonics: nothing in it happens at clip boundaries."""
    time = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (330.0 * time + 8.0 * np.sin(2 * np.pi * 0.7 * time) / (2 * np.pi * 0.7))
    return (0.2 * sum(np.sin(k * phase) / k for k in range(1, 5))).astype(np.float32)


class ExactCodec:
    """A 'codec' whose latent is the spectrogram itself: decoding is exact, so only the joins are tested."""

    def __init__(self, representation: SpectrogramRepresentation) -> None:
        self.representation = representation

    @property
    def latent_dim(self) -> int:
        return int(np.prod(self.representation.shape))

    def encode_spectrograms(
        self, spectrograms: np.ndarray, *, size: int | None = None, refine_steps: int = 0
    ) -> np.ndarray:
        return np.asarray(spectrograms, dtype=np.float32).reshape(len(spectrograms), -1)

    def decode_spectrograms(self, latents: np.ndarray, *, size: int | None = None) -> np.ndarray:
        return np.asarray(latents, dtype=np.float32).reshape(len(latents), *self.representation.shape)


@pytest.fixture(scope="module")
def representation() -> SpectrogramRepresentation:
    return SpectrogramRepresentation()


@pytest.fixture(scope="module")
def pca_model(representation) -> recording.CodecModel:
    """The PCA baseline as a codec, fitted on clips of gliding tones around the level files are brought to."""
    tones = [np.roll(gliding_tone(1.0), 531 * k) for k in range(24)]
    target = 10 ** (recording.LEVEL.target_rms_db / 20)
    clips = np.stack(
        [tone * target / np.sqrt(np.mean(tone**2)) * 10 ** ((k % 5 - 2) / 20) for k, tone in enumerate(tones)]
    )
    basis = SpectralBasis.fit(representation.forward(clips), 16, seed=0)
    return recording.CodecModel("pca", "synthetic", "0123456789abcdef", recording.PcaCodec(representation, basis))


def header_for(latents: np.ndarray, **changes) -> container.CompressedHeader:
    header = container.CompressedHeader(
        model_name="pca",
        model_dataset="synthetic",
        model_fingerprint="0123456789abcdef",
        latent_size=latents.shape[1],
        sample_rate=RATE,
        samples=40_000,
        clip_samples=RATE,
        clip_hop_samples=14_080,
        frame_count=len(latents),
        gain=1.5,
    )
    return replace(header, **changes)


def test_the_format_round_trips_its_header_and_latents():
    latents = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    header = header_for(latents)
    read_header, read_latents = container.decode_container(container.encode_container(header, latents))
    assert read_header == header
    np.testing.assert_allclose(read_latents, latents, rtol=1e-3, atol=1e-3)  # float16
    assert header.numbers_per_second == pytest.approx(8 * RATE / 14_080)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[:-7], "truncated"),
        (lambda data: data[:20], "truncated"),
        (lambda data: data[:-6] + bytes([data[-6] ^ 0xFF]) + data[-5:], "corrupted: the latent frames"),
        (lambda data: data[:12] + bytes([data[12] ^ 0x01]) + data[13:], "corrupted"),
        (lambda data: data + b"\0\0", "corrupted"),
        (lambda data: data[:4] + (9).to_bytes(2, "little") + data[6:], "newer than this lab reads"),
        (lambda data: b"RIFF" + data[4:], "not a latent music lab compressed file"),
        (lambda data: b"", "not a latent music lab compressed file"),
    ],
)
def test_a_damaged_file_is_a_clear_error(tmp_path, damage, message):
    latents = np.ones((3, 8), np.float32)
    data = container.encode_container(header_for(latents), latents)
    path = tmp_path / "song.lml"
    path.write_bytes(damage(data))
    with pytest.raises(AudioInputError, match=message) as error:
        container.read_container(path)
    assert "song.lml" in str(error.value)


def test_another_model_is_refused(pca_model):
    latents = np.ones((3, 8), np.float32)
    header = header_for(latents, model_fingerprint="fedcba9876543210")
    with pytest.raises(AudioInputError, match="compressed with model fedcba9876543210"):
        recording.check_model(header, pca_model, "song.lml")
    recording.check_model(header_for(latents), pca_model, "song.lml")  # its own model passes


@pytest.mark.parametrize("samples", [1, 100, RATE, RATE + 1, 14_080 + RATE, 50_000])
def test_clips_cover_every_sample(samples):
    waveform = np.arange(1, samples + 1, dtype=np.float32)
    blocks = np.array_split(waveform, 3) if samples > 3 else [waveform]
    clips = list(recording.clip_stream(blocks, RATE, 14_080))
    assert len(clips) == recording.clip_count(samples, RATE, 14_080)
    last_start = (len(clips) - 1) * 14_080
    assert last_start < samples <= last_start + RATE  # the last clip reaches the end, and is needed
    np.testing.assert_array_equal(clips[-1][: samples - last_start], waveform[last_start:])
    assert np.all(clips[-1][samples - last_start :] == 0)


def test_the_phase_integrates_the_same_in_blocks_as_whole():
    magnitude = np.abs(np.random.default_rng(1).standard_normal((50, 513))).astype(np.float32) + 0.01
    whole = PhaseIntegrator(n_fft=1024, hop_length=256, top=10.0)(magnitude)
    blocks = PhaseIntegrator(n_fft=1024, hop_length=256, top=10.0)
    pieces = np.concatenate([blocks(magnitude[:17]), blocks(magnitude[17:])])
    np.testing.assert_allclose(np.cos(pieces), np.cos(whole), atol=1e-3)


def test_a_tone_across_clip_boundaries_comes_back_without_seams(representation):
    """The joins, with decoding made exact: no more spectral change at clip boundaries than inside clips.

    The same clips inverted one by one (each with its own Griffin-Lim) do show their boundaries:
    that is what this test would catch if the cross-fade or the whole-file phase broke.
    """
    tone = gliding_tone(8.0)
    codec = ExactCodec(representation)
    hop = recording.default_clip_hop(representation.config)
    latents, samples = recording.encode_stream(codec, [tone], latent_size=codec.latent_dim, clip_hop_samples=hop)
    joined = np.concatenate(list(recording.decode_stream(codec, latents, samples=samples, clip_hop_samples=hop)))
    assert joined.shape == tone.shape
    boundaries = clip_boundaries(len(tone), RATE, hop)
    assert seam_ratio(joined, boundaries, sample_rate=RATE) < 1.1
    assert distance_db(tone, joined, sample_rate=RATE) < 1.0

    clips = tone[: 8 * RATE].reshape(8, RATE)
    one_by_one = representation.inverse(representation.forward(clips)).reshape(-1)
    assert seam_ratio(one_by_one, clip_boundaries(len(one_by_one), RATE, RATE), sample_rate=RATE) > 1.3


def test_blocks_of_the_inversion_meet_without_seams(representation):
    tone = gliding_tone(6.0)
    codec = ExactCodec(representation)
    hop = recording.default_clip_hop(representation.config)
    latents, samples = recording.encode_stream(codec, [tone], latent_size=codec.latent_dim, clip_hop_samples=hop)
    whole = np.concatenate(list(recording.decode_stream(codec, latents, samples=samples, clip_hop_samples=hop)))
    blocked = np.concatenate(
        list(recording.decode_stream(codec, latents, samples=samples, clip_hop_samples=hop, block_frames=48))
    )
    assert blocked.shape == whole.shape
    block_edges = np.arange(48, 1 + samples // 256, 48) * 256
    assert seam_ratio(blocked, block_edges, sample_rate=RATE) < 1.1
    assert distance_db(tone, blocked, sample_rate=RATE) < distance_db(tone, whole, sample_rate=RATE) + 0.3


def test_a_file_compresses_and_decompresses_at_its_length_and_level(tmp_path, pca_model):
    stereo = np.stack([gliding_tone(7.3, rate=44_100), 0.5 * gliding_tone(7.3, rate=44_100)], axis=1)
    source = tmp_path / "song.flac"
    soundfile.write(source, stereo, 44_100)
    summary = recording.compress_file(source, tmp_path / "song.lml", pca_model, latent_size=12)
    header = summary.header
    assert (header.source_sample_rate, header.source_channels, header.latent_size) == (44_100, 2, 12)
    assert header.samples == pytest.approx(7.3 * RATE, abs=2)
    assert summary.file_bytes == (tmp_path / "song.lml").stat().st_size < 2_000

    back = recording.decompress_file(tmp_path / "song.lml", tmp_path / "back.wav", pca_model)
    decoded, rate = soundfile.read(back.destination, dtype="float32")
    assert rate == RATE and decoded.ndim == 1 and len(decoded) == header.samples
    original = np.mean(stereo, axis=1)
    level = 20 * np.log10(np.sqrt(np.mean(decoded**2)) / np.sqrt(np.mean(original**2)))
    assert abs(level) < 3.0, level  # back at the source's level, not the training clips'

    with pytest.raises(FileExistsError):
        recording.compress_file(source, tmp_path / "song.lml", pca_model, latent_size=12)
    with pytest.raises(FileExistsError):
        recording.decompress_file(tmp_path / "song.lml", tmp_path / "back.wav", pca_model)
    (tmp_path / "notes.txt").write_text("not audio")
    with pytest.raises(AudioInputError, match=r"notes\.txt"):
        recording.compress_file(tmp_path / "notes.txt", tmp_path / "notes.lml", pca_model, latent_size=12)
    assert not (tmp_path / "notes.lml").exists()


def peak_memory(function) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_in_the_length_of_the_file(tmp_path, pca_model):
    """Four times the length, about the same peak: blocks in, frames out."""
    peaks = {}
    for seconds in (120, 480):
        source = tmp_path / f"tone_{seconds}.wav"
        soundfile.write(source, np.tile(gliding_tone(10.0), seconds // 10), RATE, subtype="PCM_16")

        def round_trip(source=source, seconds=seconds):
            recording.compress_file(source, tmp_path / f"{seconds}.lml", pca_model, latent_size=12)
            recording.decompress_file(tmp_path / f"{seconds}.lml", tmp_path / f"{seconds}.wav", pca_model)

        peaks[seconds] = peak_memory(round_trip)
    assert peaks[480] < 1.25 * peaks[120], peaks


def test_the_boundary_mask_leaves_the_start_alone():
    mask = boundary_mask(100, np.array([0, 2560]))
    assert not mask[:3].any() and mask[10] and mask[8] and mask[12] and not mask[13]


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path, capsys, monkeypatch):
    from lib.core import paths

    monkeypatch.setenv(paths.DATASET_ENV_VAR, "notes")  # the command names its dataset in the environment:
    monkeypatch.delenv(paths.CLIP_SECONDS_ENV_VAR, raising=False)  # restored after the test
    latents = np.ones((3, 8), np.float32)
    path = container.write_container(tmp_path / "song.lml", header_for(latents), latents)
    assert main(["info", str(path)]) == 0
    assert "8 numbers per clip" in capsys.readouterr().out
    path.write_bytes(path.read_bytes()[:-10])
    assert main(["decompress", str(path), str(tmp_path / "back.wav")]) == 2
    error = capsys.readouterr().err.strip()
    assert "song.lml: truncated" in error and len(error.splitlines()) == 1
    (tmp_path / "tune.wav").write_bytes(b"")
    assert main(["compress", str(tmp_path / "tune.wav"), "--dataset", str(tmp_path)]) == 2
    assert "file is empty" in capsys.readouterr().err
    soundfile.write(tmp_path / "tune.wav", gliding_tone(1.0), RATE)
    assert main(["compress", str(tmp_path / "tune.wav"), "--dataset", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "no trained model yet" in error and "make run-all DATASET=" in error


def test_the_report_measures_files_and_writes_a_listening_page(tmp_path, pca_model, monkeypatch):
    from lib.core import paths
    from lib.measure.recording_report import run_report

    monkeypatch.setattr(paths, "outputs_dir", lambda smoke=None, dataset=None: tmp_path / "outputs")
    files = []
    for index, seconds in enumerate((6.0, 9.0)):
        files.append(tmp_path / f"tone_{index}.wav")
        soundfile.write(files[-1], np.roll(gliding_tone(seconds), 777 * index), RATE, subtype="PCM_16")
    summary = run_report(pca_model, files, numbers_per_second=12.0, listen=1, timing_seconds=8.0)
    assert "2 files" in summary and "listening page" in summary
    report = load_report(tmp_path / "outputs" / "metrics" / "recordings.json")
    assert report["summary"]["files"] == 2 and set(report["targets"]) >= {"boundary_flux_within_10_percent"}
    distance = report["summary"]["distance_db"]
    assert distance["oracle"] < distance["recording codec"]  # nothing beats the oracle
    assert report["summary"]["isolated_seam_ratio"]["0"] > report["summary"]["seam_ratio"]["recording codec"]
    page = (tmp_path / "outputs" / "recordings" / "index.html").read_text()
    assert page.count("<audio") == 6 and "tone_0" in page and "tone_1" not in page  # one file with players


def load_report(path):
    import json

    return json.loads(path.read_text())


def test_whole_files_encode_and_frames_decode_as_the_stream_functions_do(tmp_path, pca_model):
    from lib.measure.recording_report import encode_files, read_file

    codec, hop = pca_model.codec, 14_080
    path = tmp_path / "tone.wav"
    soundfile.write(path, 0.3 * gliding_tone(2.5), RATE)
    (latents,) = encode_files(codec, [path], latent_size=16, clip_hop_samples=hop)
    waveform, _ = read_file(path, RATE)
    expected, _ = recording.encode_stream(codec, [waveform], latent_size=16, clip_hop_samples=hop)
    np.testing.assert_array_equal(latents, expected)
    decoded = recording.decode_frames(codec, latents, clip_hop_samples=hop)
    samples = (len(latents) - 1) * hop + RATE
    assert decoded.shape == (samples,)
    np.testing.assert_allclose(
        decoded,
        np.concatenate(list(recording.decode_stream(codec, latents, samples=samples, clip_hop_samples=hop))),
        atol=1e-6,
    )


def test_window_space_judges_two_labels_and_has_no_judge_for_one():
    from lib.models.sequence import WindowSpace

    rng = np.random.default_rng(0)
    windows = np.concatenate([rng.normal(0, 1, (40, 12)), rng.normal(3, 1, (40, 12))]).astype(np.float32)
    labels = np.repeat([0, 1], 40)
    space = WindowSpace.fit(windows, labels)
    assert np.mean(space.judged(windows) == labels) > 0.9
    alone = WindowSpace.fit(windows, np.zeros(80, int))  # a folder of one label
    assert alone.judge is None and alone.features(windows).shape[0] == 80
    with pytest.raises(ValueError, match="one label"):
        alone.judged(windows)


def test_a_models_fingerprint_covers_its_model_of_the_smallest_sizes(tmp_path):
    # A file compressed before the smallest sizes had a model of their own must not decode with it.
    run, data = tmp_path / "run", tmp_path / "data"
    (run / "basis").mkdir(parents=True)
    data.mkdir()
    (run / "model.keras").write_bytes(b"shared model")
    (run / "basis" / "components.npy").write_bytes(b"basis")
    (data / "representation.json").write_text("{}")
    trained = recording.TrainedModel("autoencoder", "notes", run, data)
    alone = trained.fingerprint()
    small = run / "small_sizes"
    small.mkdir()
    (small / "model.keras").write_bytes(b"model of sizes 8 and 16")
    with_small = trained.fingerprint()
    (small / "shrinkage.json").write_text("{}")
    assert len({alone, with_small, trained.fingerprint()}) == 3


def test_a_sample_of_files_keeps_to_its_budget_and_every_labels_share():
    labels = {f"{label}/{index:02d}.flac": label for label in ("jazz", "folk") for index in range(30)}
    labels.update({f"choir/{index:02d}.flac": "choir" for index in range(6)})
    seconds = {name: 300.0 for name in labels}
    kept = recording.sample_files(labels, seconds, 20 * 300.0, seed=1)
    assert len(kept) == 20 and kept == sorted(kept)
    shares = {label: sum(labels[name] == label for name in kept) for label in ("jazz", "folk", "choir")}
    assert shares["jazz"] in (8, 9, 10) and shares["folk"] in (8, 9, 10) and shares["choir"] in (1, 2, 3)
    assert recording.sample_files(labels, seconds, 20 * 300.0, seed=1) == kept  # seeded
    assert recording.sample_files(labels, seconds, 20 * 300.0, seed=2) != kept
    assert recording.sample_files(labels, seconds, 1e9) == sorted(labels)  # within the budget: every file
    assert len(recording.sample_files(labels, seconds, 10.0)) == 1  # never none


def test_the_search_steps_option_defaults_to_the_labs_and_refuses_negatives(capsys):
    from lib.lab.cli import _search_steps, build_parser
    from lib.models.refine import REFINE_STEPS

    parser = build_parser()
    assert _search_steps(parser.parse_args(["compress", "song.flac"])) == REFINE_STEPS
    assert _search_steps(parser.parse_args(["report", "--search-steps", "0"])) == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["compress", "song.flac", "--search-steps", "-1"])
    assert "must be 0 or more" in capsys.readouterr().err
