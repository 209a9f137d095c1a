"""Control on any labelled dataset, checked by measurement: requests, attribute sweeps, transfers.

The notes carry pitch, velocity and instrument family (:class:`lib.models.conditional.ConditionSpace`);
a folder of music carries only its label (the first sub-folder: a genre, an artist, an album).
What every clip has besides is what can be measured from its audio
(:data:`lib.data.analysis.ATTRIBUTES`: loudness, brightness, onset rate). A conditional VAE told the
label and those attributes (:class:`lib.models.conditional.LabelConditionSpace`) makes clips on request;
this module checks the requests on the decoded audio: the attributes measured again
(:func:`attribute_sweep`, :func:`request_figures`), the label by the stage-3 judge and by the
label judge (:mod:`lib.measure.label_judge`), and a transfer between labels as notebooks 04 and 05
measure it (:func:`transfer_figures`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

from lib.data.analysis import measure_attributes
from lib.measure import genre_lab
from lib.measure.evaluation import GenerationReference, class_indices, score_generated
from lib.models.conditional import LabelConditionSpace

SWEEP_Z = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)  # requested attribute, in training standard deviations


def attribute_sweep(
    decode_audio: Callable[[np.ndarray, np.ndarray], np.ndarray],
    space: LabelConditionSpace,
    attribute: str,
    latent_dim: int,
    *,
    sample_rate: int,
    steps: Sequence[float] = SWEEP_Z,
) -> dict:
    """Request one attribute at ``steps`` (z-scores) under every label, the others at the mean; measure it.

    ``decode_audio(latents, conditions)`` is the conditional codec's; the latent is the prior's
    centre. Returns {"requested": the steps in the attribute's units, "measured": {label:
    [measured per step]}, "spearman": {label: rank correlation of requested and measured}}.
    """
    column = space.attributes.index(attribute)
    steps = np.asarray(steps, dtype=np.float32)
    measured, spearman = {}, {}
    for label in space.labels:
        base = space.encode([label] * len(steps), np.tile(space.attribute_mean, (len(steps), 1)))
        conditions = space.swap(base, z={attribute: steps})
        audio = decode_audio(np.zeros((len(steps), latent_dim), np.float32), conditions)
        values = measure_attributes(audio, sample_rate=sample_rate)[:, column]
        measured[label] = [float(v) for v in values]
        spearman[label] = _spearman(steps, values)
    requested = space.in_units(np.outer(steps, np.eye(len(space.attributes))[column]))[:, column]
    return {"requested": [float(v) for v in requested], "measured": measured, "spearman": spearman}


def request_figures(
    reference: GenerationReference,
    space: LabelConditionSpace,
    requested_labels: Sequence[str],
    requested_attributes: np.ndarray,
    audio: np.ndarray,
    *,
    sample_rate: int,
    label_judge: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict:
    """How decoded requests [shape=(n, samples)] follow what was asked of them.

    ``label_accuracy``: the stage-3 judge's share on the requested label (its "family" head holds
    the dataset's labels); ``label_accuracy_by_label_judge``: the same share by ``label_judge``
    (waveforms -> label names, :meth:`lib.measure.label_judge.LabelJudge.names`) when given;
    ``<attribute>_spearman``: rank correlation over the clips of requested and measured attribute;
    Fréchet distance and NDB/K of the set against the real test clips.
    """
    requested_labels = np.array([str(label) for label in requested_labels])
    verdict = reference.judge_audio(audio)
    wanted = class_indices(requested_labels, reference.families)
    measured = measure_attributes(audio, sample_rate=sample_rate)
    score = score_generated(reference, verdict)
    figures = {
        "requests": len(audio),
        "label_accuracy": float(np.mean(verdict.family == wanted)),
        "frechet_distance": score["frechet_distance"],
        "ndb_over_k": score["ndb_over_k"],
    }
    if label_judge is not None:
        figures["label_accuracy_by_label_judge"] = float(np.mean(label_judge(audio) == requested_labels))
    for column, name in enumerate(space.attributes):
        figures[f"{name}_spearman"] = _spearman(np.asarray(requested_attributes)[:, column], measured[:, column])
    return figures


def transfer_figures(
    judges: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    source_audio: np.ndarray,
    results: dict[str, np.ndarray],
    target_labels: Sequence[str],
    *,
    sample_rate: int,
    shared: dict[str, np.ndarray],
) -> dict[str, dict]:
    """What each way of moving clips to another label did, as notebooks 04 and 05 measure it.

    ``results`` maps a method to its audio [shape=(n, samples)], one per (source clip, target
    label) pair; ``shared`` is :func:`lib.measure.genre_lab.content_baseline` of the training clips;
    ``judges`` maps a figure's name (``target_share``, ``target_share_by_label_judge`` …) to a judge
    (waveforms -> label names). Per method: each judge's share on the target label, and the onset
    (rhythm) and chroma (harmony, melody) correlation with the source, relative to what every clip shares.
    """
    if not judges:
        raise ValueError("need at least one judge of the results' labels")
    wanted = np.array([str(label) for label in target_labels])
    figures = {}
    for name, audio in results.items():
        kept = genre_lab.content_kept(source_audio, audio, sample_rate=sample_rate, baseline=shared)
        figures[name] = {figure: float(np.mean(judge(audio) == wanted)) for figure, judge in judges.items()}
        figures[name]["onset_correlation"] = float(np.mean(kept["onset"]))
        figures[name]["chroma_correlation"] = float(np.mean(kept["chroma"]))
    return figures


def label_mean_latents(latents: np.ndarray, labels: Sequence[str], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The mean latent of each label's clips: latents [shape=(n, d)] -> {label: [shape=(d,)]}."""
    labels = np.asarray(labels)
    return {name: np.asarray(latents)[labels == name].mean(axis=0) for name in names if np.any(labels == name)}


def _spearman(first: np.ndarray, second: np.ndarray) -> float:
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if len(first) < 3 or np.ptp(first) == 0 or np.ptp(second) == 0:
        return 0.0  # a constant measurement follows nothing
    return float(stats.spearmanr(first, second).statistic)
