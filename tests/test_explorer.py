"""The explorer's callbacks without a browser, and the Voilà app driven by a real browser."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from lib.core.paths import PROJ_ROOT
from lib.data import dataset as note_dataset
from lib.lab.explorer import (
    ControlSettings,
    ExplorerSettings,
    LatentExplorer,
    default_conditional_explorer,
    spectrograms_differ,
)
from lib.models import latent
from lib.models.autoencoder import AutoencoderConfig, build_autoencoder
from lib.models.codec import LatentCodec
from lib.models.conditional import ConditionalCodec, ConditionSpace, build_conditional_vae
from lib.models.training import save_model
from lib.models.vae import VAEConfig
from lib.spectral.basis import SpectralBasis

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
def conditional_folder(smoke_dataset, model_folder, tmp_path_factory):
    """An (untrained) conditional VAE run folder sharing the autoencoder folder's basis."""
    folder = tmp_path_factory.mktemp("explorer_cvae")
    basis = SpectralBasis.load(model_folder / "basis")
    rows = smoke_dataset.split("train")[1]
    space = ConditionSpace(tuple(smoke_dataset.config.pitches), tuple(sorted({row["family"] for row in rows})))
    config = VAEConfig(basis_size=basis.size, latent_dim=4, hidden_width=32, hidden_layers=1)
    model = build_conditional_vae(config, space, np.ones(basis.size, dtype=np.float32), seed=1)
    save_model(model, folder / "model.keras")
    ConditionalCodec(model, space, smoke_dataset.representation, basis).save_description(folder, model_folder / "basis")
    return folder


@pytest.fixture(scope="module")
def conditional_explorer(smoke_dataset, conditional_folder):
    smoke_dataset.representation.griffin_lim_iterations = 4
    return default_conditional_explorer(str(conditional_folder), clips=3)


def test_conditional_explorer_follows_its_controls(conditional_explorer):
    row = conditional_explorer.rows[0]
    own = conditional_explorer.conditions_for(ControlSettings(0))
    assert np.array_equal(own[0], conditional_explorer.conditions[0])
    other_family = next(f for f in conditional_explorer.codec.space.families if f != row["family"])
    original, decoded, waveform = conditional_explorer.render(ControlSettings(0))
    _, swapped, swapped_waveform = conditional_explorer.render(ControlSettings(0, family=other_family))
    assert np.array_equal(original, conditional_explorer.originals[0]) and waveform.shape == (16_000,)
    assert not np.allclose(decoded, swapped) and not np.allclose(waveform, swapped_waveform)
    with pytest.raises(ValueError, match="out of range"):
        conditional_explorer.render(ControlSettings(7))


def test_conditional_widget_updates_on_family_and_resets_on_clip(conditional_explorer):
    ui = conditional_explorer.widget()
    controls, output = ui.children
    clip, pitch, velocity, family = controls.children
    image, player = output.children[0], output.children[1]
    row = conditional_explorer.rows[0]
    assert (pitch.value, velocity.value, family.value) == (row["pitch"], row["velocity"], row["family"])
    before = (image.value, player.value)
    family.value = next(f for f in family.options if f != row["family"])
    assert image.value != before[0] and player.value != before[1]
    clip.value = 1
    second = conditional_explorer.rows[1]
    assert (pitch.value, velocity.value, family.value) == (second["pitch"], second["velocity"], second["family"])


@pytest.fixture(scope="module")
def explorer(smoke_dataset, model_folder):
    smoke_dataset.representation.griffin_lim_iterations = 4
    codec = LatentCodec.load(model_folder, smoke_dataset.representation)
    clips, rows = smoke_dataset.split("test")
    train_latents = codec.encode_audio(smoke_dataset.split("train")[0])
    vector = np.ones(codec.latent_dim, dtype=np.float32)
    doubling = latent.LatentMap(2 * np.eye(codec.latent_dim, dtype=np.float32), vector, ridge=0.0, pairs=0)
    attributes = {"up": vector, "doubled": doubling}
    return LatentExplorer(codec, clips[:4], [str(row["pitch"]) for row in rows[:4]], train_latents, attributes)


def test_edited_latent_follows_the_controls(explorer):
    first, second = explorer.latents[0], explorer.latents[1]
    assert np.allclose(explorer.edited_latent(ExplorerSettings(0, 1, mix=0.0)), first, atol=1e-5)
    assert np.allclose(explorer.edited_latent(ExplorerSettings(0, 1, mix=1.0)), second, atol=1e-5)
    moved = explorer.edited_latent(ExplorerSettings(0, 1, attributes={"up": 0.5}))
    assert np.allclose(moved, first + 0.5, atol=1e-5)
    mapped = explorer.edited_latent(ExplorerSettings(0, 1, attributes={"doubled": 0.5}))  # halfway to 2 z + 1
    assert np.allclose(mapped, first + 0.5 * (first + 1), atol=1e-4)
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
    sliders = {child.description: child for child in controls.children if hasattr(child, "min")}
    assert (sliders["up"].min, sliders["up"].max, sliders["doubled"].min, sliders["doubled"].max) == (-2, 2, 0, 1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


AUDIO_DIGEST = """async (element) => {
  const response = await fetch(element.src);
  const bytes = new Uint8Array(await response.arrayBuffer());
  let digest = 0;
  for (const value of bytes) digest = (digest * 31 + value) >>> 0;
  return [bytes.length, digest];
}"""


def _pixels(locator) -> np.ndarray:
    """The element's rendered pixels (a screenshot of it, decoded)."""
    return matplotlib.image.imread(io.BytesIO(locator.screenshot()), format="png")


def _wait_for_new_audio(page, index: int, old_source: str) -> None:
    page.wait_for_function(
        "([index, old]) => document.querySelectorAll('audio')[index].src !== old",
        arg=[index, old_source],
        timeout=60_000,
    )


def _changed_pixels(before: np.ndarray, after: np.ndarray) -> float:
    """Share of pixels that differ between two screenshots of one element (1.0 if the size changed)."""
    if before.shape != after.shape:
        return 1.0
    return float(np.mean(np.any(np.abs(before - after) > 1e-3, axis=-1)))


def test_voila_app_in_a_real_browser(model_folder, conditional_folder, smoke_dataset, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is missing under CI: `make test` installs it as root (make browser)")
        pytest.skip("Debian's chromium is not installed (`make browser` installs it as root)")
    from playwright.sync_api import sync_playwright

    port = _free_port()
    environment = {
        **os.environ,
        "LML_SMOKE": "1",
        "LML_EXPLORER_MODEL": str(model_folder),
        "LML_EXPLORER_CVAE": str(conditional_folder),
    }
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
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(url, timeout=120_000)
            page.locator("audio").nth(1).wait_for(state="attached", timeout=180_000)
            results = {}
            for name, index in (("latent", 0), ("conditional", 1)):
                image, audio = page.locator(".widget-image").nth(index), page.locator("audio").nth(index)
                page.wait_for_function(
                    "(index) => document.querySelectorAll('audio')[index]?.src", arg=index, timeout=60_000
                )
                old_source = audio.get_attribute("src")
                before = (_pixels(image), audio.evaluate(AUDIO_DIGEST))
                if name == "latent":
                    handle = page.locator(".widget-slider .noUi-handle").first  # the first slider: A → B
                    handle.focus()
                    for _ in range(10):
                        handle.press("ArrowRight")
                else:
                    family = page.locator(".widget-dropdown").filter(has_text="family").locator("select")
                    current = family.evaluate("select => select.selectedIndex")
                    family.select_option(index=(current + 1) % family.evaluate("select => select.options.length"))
                _wait_for_new_audio(page, index, old_source)
                page.wait_for_timeout(500)  # the picture arrives in its own message
                results[name] = (before, (_pixels(image), audio.evaluate(AUDIO_DIGEST)))
            page.screenshot(path=str(tmp_path / "explorer.png"))
            browser.close()
        for name, (before, after) in results.items():
            assert _changed_pixels(before[0], after[0]) > 0.01, f"{name}: the spectrogram's pixels did not change"
            assert after[1] != before[1], f"{name}: the audio bytes did not change"
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_spectrograms_differ_beyond_a_share_of_the_peak():
    first = np.zeros((4, 3), np.float32)
    first[0, 0] = 1.0
    assert not spectrograms_differ(first, first + 5e-4)
    assert spectrograms_differ(first, first + 2e-3)
