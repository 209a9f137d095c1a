"""The explorer's callbacks without a browser, and the Voilà app driven by a real browser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from lib import dataset as note_dataset
from lib.baselines import SpectralBasis
from lib.codec import LatentCodec
from lib.explorer import ExplorerSettings, LatentExplorer
from lib.models import AutoencoderConfig, build_autoencoder
from lib.paths import PROJ_ROOT
from lib.training import save_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SMALL = AutoencoderConfig(basis_size=32, latent_dim=16, hidden_width=64, hidden_layers=1, nested_sizes=(8, 16))


@pytest.fixture(scope="module")
def smoke_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explorer_data")
    note_dataset.build_dataset(note_dataset.smoke_config(), folder)
    os.environ["LML_SMOKE"] = "1"
    try:
        yield note_dataset.load_dataset(folder, build=False)
    finally:
        os.environ.pop("LML_SMOKE", None)


@pytest.fixture(scope="module")
def model_folder(smoke_dataset, tmp_path_factory):
    """An (untrained) autoencoder run folder: enough for decoding to react to every control."""
    folder = tmp_path_factory.mktemp("explorer_model")
    spectrograms = smoke_dataset.representation.forward(smoke_dataset.split("train")[0])
    basis = SpectralBasis.fit(spectrograms, SMALL.basis_size)
    basis.save(folder / "basis")
    save_model(build_autoencoder(SMALL, basis.transform(spectrograms).std(axis=0)), folder / "model.keras")
    return folder


@pytest.fixture(scope="module")
def explorer(smoke_dataset, model_folder):
    smoke_dataset.representation.griffin_lim_iterations = 4
    codec = LatentCodec.load(model_folder, smoke_dataset.representation)
    clips, rows = smoke_dataset.split("test")
    train_latents = codec.encode_audio(smoke_dataset.split("train")[0])
    vector = np.ones(codec.latent_dim, dtype=np.float32)
    return LatentExplorer(codec, clips[:4], [str(row["pitch"]) for row in rows[:4]], train_latents, {"up": vector})


def test_edited_latent_follows_the_controls(explorer):
    first, second = explorer.latents[0], explorer.latents[1]
    assert np.allclose(explorer.edited_latent(ExplorerSettings(0, 1, mix=0.0)), first, atol=1e-5)
    assert np.allclose(explorer.edited_latent(ExplorerSettings(0, 1, mix=1.0)), second, atol=1e-5)
    moved = explorer.edited_latent(ExplorerSettings(0, 1, attributes={"up": 0.5}))
    assert np.allclose(moved, first + 0.5, atol=1e-5)
    along = explorer.edited_latent(ExplorerSettings(0, 1, directions=[1.0]))
    assert np.linalg.norm(along - first) == pytest.approx(explorer.directions.spread[0], rel=1e-4)
    noisy = explorer.edited_latent(ExplorerSettings(0, 1, noise=1.0))
    assert not np.allclose(noisy, first)
    with pytest.raises(ValueError, match="unknown attribute"):
        explorer.edited_latent(ExplorerSettings(0, 1, attributes={"nope": 1.0}))
    with pytest.raises(ValueError, match="out of range"):
        explorer.edited_latent(ExplorerSettings(0, 9))


def test_render_gives_picture_and_sound_that_change(explorer):
    spectrogram, waveform = explorer.render(ExplorerSettings(0, 1, mix=0.0))
    other_spectrogram, _ = explorer.render(ExplorerSettings(0, 1, mix=1.0))
    assert spectrogram.shape == (512, 64) and waveform.shape == (16_000,)
    assert not np.allclose(spectrogram, other_spectrogram)
    assert explorer.png(spectrogram)[:4] == b"\x89PNG" and explorer.wav(waveform)[:4] == b"RIFF"
    assert explorer.png(spectrogram) != explorer.png(other_spectrogram)


def test_widget_updates_on_slider_change(explorer):
    ui = explorer.widget()
    controls, output = ui.children
    image, player = output.children[0], output.children[1]
    before_image, before_audio = image.value, player.value
    mix_slider = next(child for child in controls.children if getattr(child, "description", "") == "A → B")
    mix_slider.value = 1.0
    assert image.value != before_image and player.value != before_audio


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make setup installs it as root)")
def test_voila_app_in_a_real_browser(model_folder, smoke_dataset, tmp_path):
    from playwright.sync_api import sync_playwright

    port = _free_port()
    environment = {**os.environ, "LML_SMOKE": "1", "LML_EXPLORER_MODEL": str(model_folder)}
    voila = Path(sys.executable).parent / "voila"
    log = (tmp_path / "voila.log").open("w")
    server = subprocess.Popen(
        [
            str(voila),
            str(PROJ_ROOT / "notebooks" / "explorer.ipynb"),
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
        ],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=PROJ_ROOT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(url, timeout=120_000)
            image = page.locator(".widget-image").first
            audio = page.locator("audio").first
            image.wait_for(timeout=120_000)
            page.wait_for_function("() => document.querySelector('.widget-image')?.src", timeout=60_000)
            before = (image.get_attribute("src"), audio.get_attribute("src"))
            handle = page.locator(".widget-slider .noUi-handle").first  # the first slider: A → B
            handle.focus()
            for _ in range(10):
                handle.press("ArrowRight")
            page.wait_for_function(
                "(old) => document.querySelector('.widget-image').src !== old", arg=before[0], timeout=60_000
            )
            after = (image.get_attribute("src"), audio.get_attribute("src"))
            page.screenshot(path=str(tmp_path / "explorer.png"))
            browser.close()
        assert after[0] != before[0], "the picture did not change"
        assert after[1] != before[1], "the audio did not change"
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
