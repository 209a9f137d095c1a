"""The interactive explorers: latents by hand, and clips by condition.

:class:`LatentExplorer` (the autoencoder): pick two clips, mix them, add noise, move along
directions. :class:`ConditionalExplorer` (the conditional VAE on the notes): pick a clip, change
its pitch, loudness and family, see the original beside the decoded spectrogram.
:class:`LabelExplorer` does the same on any labelled dataset with its label and its measured
loudness, brightness and onset rate. Each holds its state and a pure ``render`` step (settings
in, spectrogram and waveform out), so the logic is tested without a browser; ``widget()`` wraps
it in ipywidgets (controls, an image and an audio player) and every change re-decodes and
updates both. The same widgets run inside Jupyter and as a Voilà app (``make explore``).
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

from lib.core import paths
from lib.core.errors import NotReadyError
from lib.data import dataset as note_dataset
from lib.data.analysis import measure_attributes
from lib.lab.plots import show_spectrogram
from lib.models import latent
from lib.models.codec import LatentCodec
from lib.models.conditional import ConditionalCodec, LabelConditionSpace, swap_conditions
from lib.spectral.representation import SpectrogramConfig


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


def spectrogram_png(spectrograms: Sequence[np.ndarray], titles: Sequence[str], config: SpectrogramConfig) -> bytes:
    """Spectrograms [each shape=(bins, frames)] side by side as PNG bytes for an image widget."""
    figure, axes = plt.subplots(1, len(spectrograms), figsize=(5 * len(spectrograms), 3), squeeze=False)
    for axis, spectrogram, title in zip(axes[0], spectrograms, titles):
        show_spectrogram(axis, spectrogram, config, title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


def wav_bytes(waveform: np.ndarray, sample_rate: int) -> bytes:
    """A waveform [shape=(samples,)] as 16-bit WAV bytes for an audio widget."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(waveform, -1, 1), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


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
    attributes : dict of str to np.ndarray [shape=(latent_dim,)] or LatentMap
        Named attribute vectors (slider: -2..2 times the vector) and maps (slider: 0..1, from the
        latent to its image) for sliders.
    direction_count : int
        How many principal directions get a slider.
    """

    def __init__(
        self,
        codec: LatentCodec,
        clips: np.ndarray,
        labels: Sequence[str],
        training_latents: np.ndarray,
        attributes: dict[str, np.ndarray | latent.LatentMap] | None = None,
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
            edited = latent.apply_edit(edited, self.attributes[name], strength)
        return latent.add_noise(edited, self.spread, settings.noise, rng=settings.noise_seed)

    def render(self, settings: ExplorerSettings) -> tuple[np.ndarray, np.ndarray]:
        """Decode the edited latent: (spectrogram [shape=(bins, frames)], waveform [shape=(clip_samples,)])."""
        spectrogram = self.codec.decode_spectrograms(self.edited_latent(settings)[None])[0]
        return spectrogram, self.codec.representation.inverse(spectrogram)

    def png(self, spectrogram: np.ndarray, title: str = "") -> bytes:
        """The spectrogram as PNG bytes for the image widget."""
        return spectrogram_png([spectrogram], [title], self.codec.representation.config)

    def wav(self, waveform: np.ndarray) -> bytes:
        """The waveform as 16-bit WAV bytes for the audio widget."""
        return wav_bytes(waveform, self.codec.representation.config.sample_rate)

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
        attribute_sliders = {}
        for name, edit in self.attributes.items():  # a map runs from the latent (0) to its image (1)
            low, high = (0.0, 1.0) if isinstance(edit, latent.LatentMap) else (-2.0, 2.0)
            attribute_sliders[name] = widgets.FloatSlider(
                value=0.0, min=low, max=high, step=0.1, description=name, **slider
            )
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
            # A fixed title: the picture changes only when the decoded spectrogram does.
            image.value = self.png(spectrogram, "decoded")
            player.value = self.wav(waveform)
            status.value = f"mix {settings.mix:.2f} · noise {settings.noise:.2f} · peak {np.max(np.abs(waveform)):.3f}"

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
    folder; the default is notebook 01's. Attribute vectors "octave_up" and "louder", and the
    "octave_up map", come from paired training notes; on a folder of audio, "louder" and the
    "octave_up map" are stage 2's (the training clips and the same clips
    :data:`lib.models.latent.LOUDER_DB` louder, or an octave up).
    """
    folder = Path(run_folder or os.environ.get("LML_EXPLORER_MODEL") or paths.models_dir() / "autoencoder")
    if not (folder / "model.keras").exists():
        raise NotReadyError("no trained autoencoder here; run `make run-all` (notebook 01) first", folder)
    dataset = note_dataset.load_dataset()
    codec = LatentCodec.load(folder, dataset.representation)
    train_waveforms, train_rows = dataset.split("train")
    test_waveforms, test_rows = dataset.split("test")
    train_latents = codec.encode_audio(train_waveforms)
    pick = np.random.default_rng(seed).permutation(len(test_rows))[:clips]
    if not dataset.has_note_labels:  # a folder: "louder" as stage 2 measures it
        found = latent.measured_attribute_vectors(
            train_latents,
            train_rows,
            train_waveforms,
            sample_rate=dataset.config.sample_rate,
            encode=codec.encode_audio,
            decode=codec.decode_spectrograms,
        )
        attributes = {"louder": found.vectors["louder"], **{f"{name} map": edit for name, edit in found.maps.items()}}
        labels = [dataset.describe(test_rows[i]) for i in pick]
        return LatentExplorer(codec, test_waveforms[pick], labels, train_latents, attributes)
    velocities = sorted({row["velocity"] for row in train_rows})
    attributes = {}
    for name, field_name, delta, match in (
        ("octave_up", "pitch", 12, ("program", "velocity")),
        ("louder", "velocity", velocities[-1] - velocities[0], ("program", "pitch")),
    ):
        sources, targets = latent.paired_indices(train_rows, field_name, delta, match=match)
        if sources:
            attributes[name] = latent.attribute_vector(train_latents[sources], train_latents[targets])
        if name == "octave_up" and len(sources) >= 10:  # the map moves the pitch where the vector cannot
            attributes["octave_up map"] = latent.fit_latent_map(
                train_latents[sources], train_latents[targets], error=latent.decoded_error(codec.decode_spectrograms)
            )
    labels = [f"{test_rows[i]['name']} {test_rows[i]['pitch']} v{test_rows[i]['velocity']}" for i in pick]
    return LatentExplorer(codec, test_waveforms[pick], labels, train_latents, attributes)


def output_widgets():
    """The condition explorers' outputs: the spectrogram image, the audio player and a status line."""
    import ipywidgets as widgets

    image = widgets.Image(format="png", layout=widgets.Layout(width="640px"))
    return image, widgets.Audio(format="wav", autoplay=False, loop=False), widgets.Label()


@dataclass
class ControlSettings:
    """One position of the conditional explorer's controls (None keeps the clip's own label)."""

    clip: int = 0  # index into the explorer's clips
    pitch: int | None = None  # MIDI pitch to decode at
    velocity: float | None = None  # MIDI velocity to decode at
    family: str | None = None  # instrument family to decode as


class ConditionalExplorer:
    """Original beside decoded: pick a clip, then change its pitch, loudness and family by condition.

    The clip is encoded once with its own labels (the conditional VAE's posterior mean); each
    change of a control decodes that latent under the new conditions.

    Parameters
    ----------
    codec : ConditionalCodec
    clips : np.ndarray [shape=(n, clip_samples)]
    rows : sequence of dict
        Manifest rows of the clips (pitch, velocity, family, name).
    """

    def __init__(self, codec: ConditionalCodec, clips: np.ndarray, rows: Sequence[dict]) -> None:
        if len(clips) != len(rows) or not len(clips):
            raise ValueError(f"need at least one clip with one manifest row each, got {len(clips)} and {len(rows)}")
        self.codec = codec
        self.rows = list(rows)
        self.originals = codec.representation.forward(clips)
        self.conditions = codec.space.from_rows(self.rows)
        self.latents = codec.encode_spectrograms(self.originals, self.conditions)

    def conditions_for(self, settings: ControlSettings) -> np.ndarray:
        """The condition vector [shape=(1, size)] that ``settings`` describe."""
        if not 0 <= settings.clip < len(self.rows):
            raise ValueError(f"clip index {settings.clip} out of range 0..{len(self.rows) - 1}")
        return swap_conditions(
            self.conditions[[settings.clip]],
            self.codec.space,
            pitch=settings.pitch,
            velocity=settings.velocity,
            family=settings.family,
        )

    def render(self, settings: ControlSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(original spectrogram, decoded spectrogram, decoded waveform [shape=(clip_samples,)])."""
        conditions = self.conditions_for(settings)
        decoded = self.codec.decode_spectrograms(self.latents[[settings.clip]], conditions)[0]
        return self.originals[settings.clip], decoded, self.codec.representation.inverse(decoded)

    def widget(self):
        """ipywidgets: clip, pitch, loudness and family controls; original and decoded pictures; a player."""
        import ipywidgets as widgets

        space, config = self.codec.space, self.codec.representation.config
        labels = [f"{row['name']} {row['pitch']} v{row['velocity']}" for row in self.rows]
        clip = widgets.Dropdown(options=[(label, i) for i, label in enumerate(labels)], value=0, description="clip")
        pitch = widgets.IntSlider(
            min=min(space.pitches), max=max(space.pitches), description="pitch", continuous_update=False
        )
        velocity = widgets.IntSlider(min=1, max=127, description="loudness", continuous_update=False)
        family = widgets.Dropdown(options=list(space.families), description="family")
        image, player, status = output_widgets()
        holding = {"updates": False}

        def update(_change=None) -> None:
            if holding["updates"]:
                return
            settings = ControlSettings(clip.value, pitch.value, velocity.value, family.value)
            original, decoded, waveform = self.render(settings)
            image.value = spectrogram_png([original, decoded], ["original", "decoded"], config)
            player.value = wav_bytes(waveform, config.sample_rate)
            status.value = f"decoded as {family.value}, MIDI {pitch.value}, velocity {velocity.value}"

        def choose_clip(_change=None) -> None:
            row = self.rows[clip.value]
            holding["updates"] = True
            pitch.value, velocity.value, family.value = int(row["pitch"]), int(row["velocity"]), row["family"]
            holding["updates"] = False
            update()

        clip.observe(choose_clip, names="value")
        for control in (pitch, velocity, family):
            control.observe(update, names="value")
        choose_clip()
        return widgets.HBox([widgets.VBox([clip, pitch, velocity, family]), widgets.VBox([image, player, status])])


@dataclass
class LabelSettings:
    """One position of the label explorer's controls."""

    clip: int = 0  # index into the explorer's clips
    label: str | None = None  # the label to decode under (None: the clip's own)
    shifts: dict[str, float] = field(default_factory=dict)  # attribute -> change in training standard deviations


class LabelExplorer:
    """Original beside decoded, on any labelled dataset: change a clip's label and measured attributes.

    The conditional VAE of notebook 04 on a dataset without note labels
    (:class:`lib.models.conditional.LabelConditionSpace`): each clip is encoded once under its own label
    and measured attributes; the controls move it to another label and shift its loudness,
    brightness and onset rate (in training standard deviations), and each change re-decodes.

    Parameters
    ----------
    codec : ConditionalCodec
        Its ``space`` must be a :class:`LabelConditionSpace`.
    clips : np.ndarray [shape=(n, clip_samples)]
    rows : sequence of dict
        Manifest rows of the clips (``label``; ``describe`` turns a row into words).
    """

    def __init__(self, codec: ConditionalCodec, clips: np.ndarray, rows: Sequence[dict], *, describe=None) -> None:
        if not isinstance(codec.space, LabelConditionSpace):
            raise ValueError("the label explorer needs a model conditioned on labels and attributes")
        if len(clips) != len(rows) or not len(clips):
            raise ValueError(f"need at least one clip with one manifest row each, got {len(clips)} and {len(rows)}")
        self.codec, self.rows = codec, list(rows)
        self.names = [describe(row) if describe else str(row.get("label")) for row in self.rows]
        self.originals = codec.representation.forward(clips)
        measured = measure_attributes(clips, sample_rate=codec.representation.config.sample_rate)
        self.conditions = codec.space.encode([row["label"] for row in self.rows], measured)
        self.latents = codec.encode_spectrograms(self.originals, self.conditions)

    def conditions_for(self, settings: LabelSettings) -> np.ndarray:
        """The condition vector [shape=(1, size)] that ``settings`` describe."""
        if not 0 <= settings.clip < len(self.rows):
            raise ValueError(f"clip index {settings.clip} out of range 0..{len(self.rows) - 1}")
        space = self.codec.space
        own = self.conditions[[settings.clip]]
        z = {
            name: own[0, len(space.labels) + space.attributes.index(name)] + shift
            for name, shift in settings.shifts.items()
        }
        return space.swap(own, label=settings.label, z=z)

    def render(self, settings: LabelSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(original spectrogram, decoded spectrogram, decoded waveform [shape=(clip_samples,)])."""
        decoded = self.codec.decode_spectrograms(self.latents[[settings.clip]], self.conditions_for(settings))[0]
        return self.originals[settings.clip], decoded, self.codec.representation.inverse(decoded)

    def widget(self):
        """ipywidgets: clip, label and one slider per attribute; original and decoded pictures; a player."""
        import ipywidgets as widgets

        space, config = self.codec.space, self.codec.representation.config
        clip = widgets.Dropdown(options=[(name, i) for i, name in enumerate(self.names)], value=0, description="clip")
        label = widgets.Dropdown(options=list(space.labels), description="label")
        sliders = {
            name: widgets.FloatSlider(
                min=-2.0, max=2.0, step=0.25, value=0.0, description=name.split("_")[0], continuous_update=False
            )
            for name in space.attributes
        }
        image, player, status = output_widgets()
        holding = {"updates": False}

        def update(_change=None) -> None:
            if holding["updates"]:
                return
            shifts = {name: slider.value for name, slider in sliders.items()}
            original, decoded, waveform = self.render(LabelSettings(clip.value, label.value, shifts))
            image.value = spectrogram_png([original, decoded], ["original", "decoded"], config)
            player.value = wav_bytes(waveform, config.sample_rate)
            moved = ", ".join(f"{name} {value:+.2f} sd" for name, value in shifts.items() if value)
            status.value = f"decoded as {label.value}" + (f"; {moved}" if moved else "")

        def choose_clip(_change=None) -> None:
            holding["updates"] = True
            label.value = str(self.rows[clip.value]["label"])
            for slider in sliders.values():
                slider.value = 0.0
            holding["updates"] = False
            update()

        clip.observe(choose_clip, names="value")
        for control in (label, *sliders.values()):
            control.observe(update, names="value")
        choose_clip()
        return widgets.HBox([widgets.VBox([clip, label, *sliders.values()]), widgets.VBox([image, player, status])])


def default_conditional_explorer(run_folder: str | None = None, *, clips: int = 12, seed: int = 0):
    """The condition explorer on notebook 04's model and the test clips of the current dataset.

    ``run_folder`` (or ``LML_EXPLORER_CVAE``) names the model's run folder; the default is
    notebook 04's. On the notes: a :class:`ConditionalExplorer` (pitch, loudness, family); on any
    other dataset: a :class:`LabelExplorer` (label, loudness, brightness, onset rate).
    """
    folder = Path(run_folder or os.environ.get("LML_EXPLORER_CVAE") or paths.models_dir() / "conditional_vae")
    if not (folder / "model.keras").exists() or not (folder / "codec.json").exists():
        raise NotReadyError("no trained conditional VAE here; run `make run-all` (notebook 04) first", folder)
    dataset = note_dataset.load_dataset()
    codec = ConditionalCodec.load(folder, dataset.representation)
    test_waveforms, test_rows = dataset.split("test")
    by_labels = isinstance(codec.space, LabelConditionSpace)
    known = [
        i
        for i, row in enumerate(test_rows)
        if (row["label"] in codec.space.labels if by_labels else row["family"] in codec.space.families)
    ]
    pick = np.array(known)[np.random.default_rng(seed).permutation(len(known))[:clips]]
    if by_labels:
        return LabelExplorer(codec, test_waveforms[pick], [test_rows[i] for i in pick], describe=dataset.describe)
    return ConditionalExplorer(codec, test_waveforms[pick], [test_rows[i] for i in pick])


def spectrograms_differ(first: np.ndarray, second: np.ndarray, *, share: float = 1e-3) -> bool:
    """Do two spectrograms differ anywhere by more than ``share`` of the first one's peak? (The explorers'
    checks: a control that reaches the decoder changes what it draws.)"""
    return float(np.abs(first - second).max()) > share * float(np.abs(first).max())
