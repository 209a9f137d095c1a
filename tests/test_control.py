"""Control on any labelled dataset: measured attributes, the label-and-attribute condition space,
sweeps and transfer figures checked on audio, a saved codec that remembers its space, the label explorer."""

from __future__ import annotations

import numpy as np
import pytest

from lib.data import analysis
from lib.lab.explorer import LabelExplorer, LabelSettings
from lib.measure import control
from lib.models import conditional
from lib.models.training import save_model
from lib.models.vae import VAEConfig
from lib.spectral.basis import SpectralBasis
from lib.spectral.representation import SpectrogramRepresentation

RATE = 16_000
LABELS = ("chorale", "fiddle", "madrigal")


def tone(frequency: float, amplitude: float, *, onsets: int = 1, seconds: float = 1.0) -> np.ndarray:
    """A decaying tone struck ``onsets`` times in ``seconds``."""
    samples = int(RATE * seconds)
    time = np.arange(samples) / RATE
    period = samples // onsets
    envelope = np.exp(-8 * (np.arange(samples) % period) / RATE)
    return (amplitude * envelope * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def test_attributes_measure_loudness_brightness_and_onsets():
    clips = np.stack([tone(220, 0.1), tone(220, 0.4), tone(1760, 0.1), tone(220, 0.1, onsets=6)])
    values = analysis.measure_attributes(clips, sample_rate=RATE)
    loudness, brightness, onsets = values.T
    assert values.shape == (4, len(analysis.ATTRIBUTES))
    assert loudness[1] - loudness[0] == pytest.approx(20 * np.log10(4), abs=0.1)  # four times the amplitude
    assert brightness[2] - brightness[0] == pytest.approx(3, abs=0.3)  # three octaves up
    assert onsets[3] > onsets[0] + 3  # six strikes against one
    silent = analysis.measure_attributes(np.zeros((1, RATE), np.float32), sample_rate=RATE)
    assert np.all(np.isfinite(silent)) and silent[0, 2] == 0
    with pytest.raises(ValueError, match="shape"):
        analysis.measure_attributes(np.zeros((2, 0), np.float32), sample_rate=RATE)


def space(values: np.ndarray | None = None) -> conditional.LabelConditionSpace:
    rng = np.random.default_rng(0)
    values = rng.normal([-30, 9, 3], [5, 1, 1], (30, 3)) if values is None else values
    return conditional.LabelConditionSpace.fit(np.repeat(LABELS, 10), values)


def test_label_space_encodes_swaps_and_round_trips():
    fitted = space()
    assert fitted.labels == LABELS and fitted.size == 3 + 3
    request = np.array([fitted.attribute_mean, np.add(fitted.attribute_mean, fitted.attribute_std)])
    conditions = fitted.encode(["fiddle", "madrigal"], request)
    assert conditions[:, :3].tolist() == [[0, 1, 0], [0, 0, 1]]
    assert conditions[0, 3:] == pytest.approx([0, 0, 0], abs=1e-5) and conditions[1, 3:] == pytest.approx([1, 1, 1])
    assert fitted.in_units(conditions[:, 3:]) == pytest.approx(request, rel=1e-5)
    swapped = fitted.swap(conditions, label="chorale", z={"loudness_db": 9.0})
    assert swapped[:, 0].tolist() == [1, 1] and swapped[:, 3].tolist() == [conditional.LIMIT_Z] * 2
    assert np.array_equal(swapped[:, 4:], conditions[:, 4:])  # the other attributes stay
    blend = fitted.encode(np.array([[1.0, 1.0, 0.0]]), request[:1])
    assert blend[0, :3] == pytest.approx([0.5, 0.5, 0])
    assert conditional.condition_space_from_dict(fitted.to_dict()) == fitted
    notes = conditional.ConditionSpace((60, 62), ("brass",))
    assert conditional.condition_space_from_dict(notes.to_dict()) == notes  # codec.json of earlier runs


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.encode(["jazz"], np.zeros((1, 3))), "unknown label"),
        (lambda s: s.encode(["fiddle"], np.zeros((1, 2))), "3 attributes"),
        (lambda s: s.encode(["fiddle", "chorale"], np.zeros((1, 3))), "one label and one attribute row"),
        (lambda s: s.swap(np.zeros((1, 6)), z={"tempo": 1.0}), "unknown attribute"),
        (lambda s: s.encode(np.array([[0.0, 0.0, 0.0]]), np.zeros((1, 3))), "label weights"),
    ],
)
def test_bad_label_requests_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call(space())


def test_a_constant_attribute_gets_a_unit_spread():
    values = np.column_stack([np.linspace(-40, -20, 30), np.full(30, 9.0), np.linspace(0, 5, 30)])
    assert space(values).attribute_std[1] == 1.0


def loudness_decoder(fitted: conditional.LabelConditionSpace, *, follows: bool):
    """A stand-in decoder: a tone whose level is the requested loudness (or always the same)."""

    def decode_audio(latents: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        wanted = fitted.in_units(conditions[:, len(fitted.labels) :])[:, 0] if follows else np.full(len(latents), -30)
        return np.stack([tone(440, 10 ** (level / 20) * np.sqrt(2) * 2) for level in wanted])

    return decode_audio


def test_a_sweep_measures_what_the_decoder_does():
    fitted = space()
    good = control.attribute_sweep(loudness_decoder(fitted, follows=True), fitted, "loudness_db", 4, sample_rate=RATE)
    assert set(good["spearman"]) == set(LABELS) and min(good["spearman"].values()) == pytest.approx(1.0)
    assert len(good["requested"]) == len(control.SWEEP_Z) and good["requested"][0] < good["requested"][-1]
    deaf = control.attribute_sweep(loudness_decoder(fitted, follows=False), fitted, "loudness_db", 4, sample_rate=RATE)
    assert max(deaf["spearman"].values()) == 0.0  # a decoder that ignores the request follows nothing


def loudness_judge(audio: np.ndarray) -> np.ndarray:
    """A judge by loudness: loud clips are 'fiddle', quiet ones 'chorale'."""
    return np.array(LABELS)[np.where(analysis.rms_db(audio) > -30, 1, 0)]


def deaf_judge(audio: np.ndarray) -> np.ndarray:
    """A judge that hears 'chorale' in everything."""
    return np.array(["chorale"] * len(audio))


def test_transfer_figures_score_target_share_and_what_stays():
    rng = np.random.default_rng(1)
    sources = np.stack([tone(f, 0.02, onsets=n) for f, n in zip(rng.uniform(200, 800, 6), rng.integers(1, 6, 6))])
    results = {"louder_copy": sources * 40, "unrelated": np.stack([tone(300, 0.002, onsets=4)] * 6)}
    shared = {"onset": 0.0, "chroma": 0.0}
    judges = {"target_share": loudness_judge, "target_share_by_label_judge": deaf_judge}
    figures = control.transfer_figures(judges, sources, results, ["fiddle"] * 6, sample_rate=RATE, shared=shared)
    assert figures["louder_copy"]["target_share"] == 1.0 and figures["unrelated"]["target_share"] == 0.0
    assert figures["louder_copy"]["target_share_by_label_judge"] == 0.0  # each judge scored on its own
    with pytest.raises(ValueError, match="at least one judge"):
        control.transfer_figures({}, sources, results, ["fiddle"] * 6, sample_rate=RATE, shared=shared)
    assert figures["louder_copy"]["onset_correlation"] == pytest.approx(1.0, abs=1e-3)
    assert figures["unrelated"]["chroma_correlation"] < figures["louder_copy"]["chroma_correlation"]


def test_label_codec_reloads_its_space_and_the_explorer_follows_label_and_sliders(tmp_path):
    representation = SpectrogramRepresentation()
    representation.griffin_lim_iterations = 2
    rng = np.random.default_rng(3)
    clips = np.stack([tone(f, a) for f, a in zip((220, 330, 440), (0.1, 0.2, 0.3))])
    spectrograms = representation.forward(clips)
    basis = SpectralBasis.fit(np.concatenate([spectrograms, rng.random((9, *representation.shape))]), 8)
    basis.save(tmp_path / "basis")
    fitted = space()
    config = VAEConfig(basis_size=8, latent_dim=3, hidden_width=16, hidden_layers=1)
    model = conditional.conditional_vae_for(config, fitted.size, np.ones(8, np.float32), seed=2)
    save_model(model, tmp_path / "cvae" / "model.keras")
    conditional.ConditionalCodec(model, fitted, representation, basis).save_description(
        tmp_path / "cvae", tmp_path / "basis"
    )
    codec = conditional.ConditionalCodec.load(tmp_path / "cvae", representation)
    assert codec.space == fitted
    rows = [{"label": label} for label in LABELS]
    explorer = LabelExplorer(codec, clips, rows, describe=lambda row: f"clip of {row['label']}")
    own = explorer.conditions_for(LabelSettings(0))
    assert np.array_equal(own[0], explorer.conditions[0]) and explorer.names[0] == "clip of chorale"
    louder = explorer.conditions_for(LabelSettings(0, shifts={"loudness_db": 1.0}))
    assert louder[0, 3] == pytest.approx(own[0, 3] + 1.0) and np.array_equal(louder[0, 4:], own[0, 4:])
    _, decoded, waveform = explorer.render(LabelSettings(0))
    _, moved, _ = explorer.render(LabelSettings(0, label="madrigal"))
    assert waveform.shape == (RATE,) and not np.allclose(decoded, moved)
    ui = explorer.widget()
    clip, label, *sliders = ui.children[0].children
    image = ui.children[1].children[0]
    assert label.value == "chorale" and len(sliders) == 3
    before = image.value
    label.value = "fiddle"
    assert image.value != before
    clip.value = 2
    assert label.value == "madrigal" and all(slider.value == 0 for slider in sliders)
    notes_codec = type("NotesCodec", (), {"space": conditional.ConditionSpace((60,), ("brass",))})()
    with pytest.raises(ValueError, match="labels and attributes"):
        LabelExplorer(notes_codec, clips, rows)
