"""The interactive latent explorer: pick two clips, mix them, add noise, move along directions.

:class:`LatentExplorer` holds the state and the pure ``render`` step (settings in, spectrogram and
waveform out), so the logic is tested without a browser. :meth:`LatentExplorer.widget` wraps it
in ipywidgets (sliders, an image and an audio player); every change re-decodes and updates
both. The same widget runs inside Jupyter and as a Voilà app (``make explore``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import soundfile

from lib import dataset as note_dataset
from lib import latent, paths
from lib.codec import LatentCodec
from lib.errors import AudioInputError
from lib.plots import show_spectrogram


@dataclass
class ExplorerSettings:
    """One position of every control."""

    first_clip: int = 0  # index into the explorer's clips
    second_clip: int = 1
    mix: float = 0.0  # 0 = first clip, 1 = second clip (spherical interpolation)
    noise: float = 0.0  # noise strength in units of each dimension's training spread
    directions: Sequence[float] = field(default_factory=tuple)  # standard deviations along principal directions
    attributes: dict[str, float] = field(default_factory=dict)  # strength per attribute vector
    noise_seed: int = 0


class LatentExplorer:
    """State and callbacks of the explorer.

    Parameters
    ----------
    codec : LatentCodec
        Encodes the clips and decodes every edited latent.
    clips : np.ndarray [shape=(n, clip_samples)]
        The clips to choose from.
    labels : sequence of str
        One name per clip, shown in the drop-downs.
    training_latents : np.ndarray [shape=(m, latent_dim)]
        Latents of the training set: their spread scales the noise, their PCA gives the directions.
    attributes : dict of str to np.ndarray [shape=(latent_dim,)]
        Named attribute vectors for sliders.
    direction_count : int
        How many principal directions get a slider.
    """

    def __init__(
        self,
        codec: LatentCodec,
        clips: np.ndarray,
        labels: Sequence[str],
        training_latents: np.ndarray,
        attributes: dict[str, np.ndarray] | None = None,
        *,
        direction_count: int = 4,
    ) -> None:
        if len(clips) != len(labels) or len(clips) < 2:
            raise ValueError(f"need at least two clips with one label each, got {len(clips)} and {len(labels)}")
        self.codec = codec
        self.labels = list(labels)
        self.latents = codec.encode_audio(clips)
        self.spread = latent.latent_spread(training_latents)
        self.directions = latent.principal_directions(training_latents, count=direction_count)
        self.attributes = dict(attributes or {})

    def edited_latent(self, settings: ExplorerSettings) -> np.ndarray:
        """The latent that ``settings`` describe [shape=(latent_dim,)]."""
        for index in (settings.first_clip, settings.second_clip):
            if not 0 <= index < len(self.latents):
                raise ValueError(f"clip index {index} out of range 0..{len(self.latents) - 1}")
        unknown = set(settings.attributes) - set(self.attributes)
        if unknown:
            raise ValueError(f"unknown attribute(s) {sorted(unknown)}; known: {sorted(self.attributes)}")
        edited = latent.slerp(self.latents[settings.first_clip], self.latents[settings.second_clip], settings.mix)
        edited = self.directions.move(edited, settings.directions) if len(settings.directions) else edited
        for name, strength in settings.attributes.items():
            edited = latent.apply_attribute(edited, self.attributes[name], strength)
        return latent.add_noise(edited, self.spread, settings.noise, rng=settings.noise_seed)

    def render(self, settings: ExplorerSettings) -> tuple[np.ndarray, np.ndarray]:
        """Decode the edited latent: (spectrogram [shape=(bins, frames)], waveform [shape=(clip_samples,)])."""
        spectrogram = self.codec.decode_spectrograms(self.edited_latent(settings)[None])[0]
        return spectrogram, self.codec.representation.inverse(spectrogram)

    def png(self, spectrogram: np.ndarray, title: str = "") -> bytes:
        """The spectrogram as PNG bytes for the image widget."""
        figure, axis = plt.subplots(figsize=(5, 3))
        show_spectrogram(axis, spectrogram, self.codec.representation.config, title)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        plt.close(figure)
        return buffer.getvalue()

    def wav(self, waveform: np.ndarray) -> bytes:
        """The waveform as 16-bit WAV bytes for the audio widget."""
        buffer = io.BytesIO()
        soundfile.write(buffer, np.clip(waveform, -1, 1), self.codec.representation.config.sample_rate, format="WAV")
        return buffer.getvalue()

    def widget(self):
        """The ipywidgets user interface: controls on the left, picture and player on the right."""
        import ipywidgets as widgets

        options = [(label, index) for index, label in enumerate(self.labels)]
        slider = {"continuous_update": False, "readout_format": ".2f"}
        controls = {
            "first_clip": widgets.Dropdown(options=options, value=0, description="clip A"),
            "second_clip": widgets.Dropdown(options=options, value=1, description="clip B"),
            "mix": widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="A → B", **slider),
            "noise": widgets.FloatSlider(value=0.0, min=0.0, max=2.0, step=0.05, description="noise", **slider),
        }
        direction_sliders = [
            widgets.FloatSlider(
                value=0.0,
                min=-3.0,
                max=3.0,
                step=0.1,
                description=f"PC {index + 1}",
                **slider,
                tooltip=f"{self.directions.explained_share[index]:.0%} of latent variance",
            )
            for index in range(self.directions.directions.shape[0])
        ]
        attribute_sliders = {
            name: widgets.FloatSlider(value=0.0, min=-2.0, max=2.0, step=0.1, description=name, **slider)
            for name in self.attributes
        }
        image = widgets.Image(format="png", layout=widgets.Layout(width="420px"))
        player = widgets.Audio(format="wav", autoplay=False, loop=False)
        status = widgets.Label()

        def update(_change=None) -> None:
            settings = ExplorerSettings(
                first_clip=controls["first_clip"].value,
                second_clip=controls["second_clip"].value,
                mix=controls["mix"].value,
                noise=controls["noise"].value,
                directions=[s.value for s in direction_sliders],
                attributes={name: s.value for name, s in attribute_sliders.items()},
            )
            spectrogram, waveform = self.render(settings)
            image.value = self.png(spectrogram, f"mix {settings.mix:.2f} · noise {settings.noise:.2f}")
            player.value = self.wav(waveform)
            status.value = f"decoded · peak {np.max(np.abs(waveform)):.3f}"

        for control in [*controls.values(), *direction_sliders, *attribute_sliders.values()]:
            control.observe(update, names="value")
        update()
        left = widgets.VBox(
            [
                *controls.values(),
                widgets.HTML("<b>principal directions</b>"),
                *direction_sliders,
                widgets.HTML("<b>attributes</b>"),
                *attribute_sliders.values(),
            ]
        )
        return widgets.HBox([left, widgets.VBox([image, player, status])])


def default_explorer(run_folder: str | None = None, *, clips: int = 12, seed: int = 0) -> LatentExplorer:
    """The explorer on the trained autoencoder and the dataset of the current mode.

    ``run_folder`` (or the ``LML_EXPLORER_MODEL`` environment variable) names the model's run
    folder; the default is notebook 01's. Attribute vectors "octave_up" and "louder" come from
    paired training notes.
    """
    folder = Path(run_folder or os.environ.get("LML_EXPLORER_MODEL") or paths.models_dir() / "autoencoder")
    if not (folder / "model.keras").exists():
        raise AudioInputError("no trained autoencoder here; run `make run-all` (notebook 01) first", folder)
    dataset = note_dataset.load_dataset()
    codec = LatentCodec.load(folder, dataset.representation)
    train_waveforms, train_rows = dataset.split("train")
    test_waveforms, test_rows = dataset.split("test")
    train_latents = codec.encode_audio(train_waveforms)
    velocities = sorted({row["velocity"] for row in train_rows})
    attributes = {}
    for name, field_name, delta, match in (
        ("octave_up", "pitch", 12, ("program", "velocity")),
        ("louder", "velocity", velocities[-1] - velocities[0], ("program", "pitch")),
    ):
        sources, targets = latent.paired_indices(train_rows, field_name, delta, match=match)
        if sources:
            attributes[name] = latent.attribute_vector(train_latents[sources], train_latents[targets])
    pick = np.random.default_rng(seed).permutation(len(test_rows))[:clips]
    labels = [f"{test_rows[i]['name']} {test_rows[i]['pitch']} v{test_rows[i]['velocity']}" for i in pick]
    return LatentExplorer(codec, test_waveforms[pick], labels, train_latents, attributes)
