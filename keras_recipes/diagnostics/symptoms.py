"""The symptom table: what the measurements of `diagnose(model, x, y)` mean.

One place for each symptom's threshold, severity, summary, why it matters and fix.
`diagnose` turns a `Measurement` into findings with `symptom_findings`; the
`keras_recipes.callbacks.TrainingMonitor` warns from the same detectors, thresholds
and texts during `fit`.

`DYNAMIC_RULES` (name -> severity and one-line summary) is derived from `SYMPTOMS`.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from keras_recipes.diagnostics._graph import all_layers
from keras_recipes.diagnostics.report import Finding

__all__ = [
    "DEAD_FRACTION_THRESHOLD",
    "DYING_RELU",
    "DYNAMIC_RULES",
    "EXPLODING_GRADIENTS",
    "EXPLODING_GRADIENT_NORM",
    "EXPLODING_GRADIENT_RATIO",
    "INPUT_RMS_THRESHOLD",
    "LOSS_NOT_FALLING",
    "MIN_BATCH_NORMALIZATION_BATCH",
    "SMALL_BATCH_NORMALIZATION_BATCH",
    "MIN_RELATIVE_LOSS_DROP",
    "NAN_OR_INF",
    "SATURATED_FRACTION_THRESHOLD",
    "SYMPTOMS",
    "Symptom",
    "UNNORMALIZED_INPUTS",
    "UNSTABLE_BATCH_NORMALIZATION",
    "VANISHING_GRADIENTS",
    "VANISHING_GRADIENT_RATIO",
    "batch_normalization_finding",
    "dead_layers",
    "exploding_layers",
    "nonfinite_layers",
    "symptom_findings",
]

#: A layer with at least this fraction of dead ReLU units counts as dead.
DEAD_FRACTION_THRESHOLD = 0.5
#: A sigmoid/tanh layer with at least this fraction of saturated outputs counts as saturated.
SATURATED_FRACTION_THRESHOLD = 0.5
#: A first/last RMS gradient ratio above this means the gradients explode.
EXPLODING_GRADIENT_RATIO = 100.0
#: A layer gradient norm above this means the gradients explode.
EXPLODING_GRADIENT_NORM = 1e4
#: A first/last RMS gradient ratio below this means the gradients vanish.
VANISHING_GRADIENT_RATIO = 1e-3
#: A per-feature RMS of the inputs above this means they are not standardised.
INPUT_RMS_THRESHOLD = 5.0
#: BatchNormalization with batches smaller than this is unstable.
MIN_BATCH_NORMALIZATION_BATCH = 16
#: Under this batch size the chapter's notes replace BatchNormalization by LayerNormalization
#: or GroupNormalization, which do not depend on the batch.
SMALL_BATCH_NORMALIZATION_BATCH = 8
#: The sanity training must lower the mean loss by at least this fraction.
MIN_RELATIVE_LOSS_DROP = 0.01


@dataclasses.dataclass(frozen=True)
class Symptom:
    """One row of the symptom table.

    Attributes:
        rule: str, the rule's name (as in `Finding.rule`).
        severity: str, `"error"`, `"warning"` or `"info"`.
        summary: str, one line.
        why: str, why it matters.
        fix: str, what to do about it.
    """

    rule: str
    severity: str
    summary: str
    why: str
    fix: str

    def finding(self, layer, message, evidence=None):
        """A `Finding` of this symptom."""
        return Finding(self.rule, self.severity, layer, message, self.why, self.fix,
                       dict(evidence or {}))


NAN_OR_INF = Symptom(
    "nan_or_inf", "error", "NaN or Inf in the loss, activations or gradients",
    "Once a NaN or Inf appears, every weight it touches becomes NaN and training "
    "cannot recover.",
    "Check the inputs for NaN/Inf, lower the learning rate, clip gradients "
    "(clipnorm=1.0), use He/LeCun initialization and BatchNormalization; for custom "
    "losses guard log() and division.",
)
EXPLODING_GRADIENTS = Symptom(
    "exploding_gradients", "error", "gradients explode",
    "Exploding gradients make the layers take huge steps; the loss oscillates, jumps "
    "or turns NaN. They usually come with activations whose scale grows from layer to "
    "layer (see the std column).",
    "Use He (ReLU family) or LeCun (SELU) initialization instead of large random "
    "weights, add BatchNormalization, clip gradients (clipnorm=1.0), lower the "
    "learning rate.",
)
VANISHING_GRADIENTS = Symptom(
    "vanishing_gradients", "warning", "gradients vanish in the lower layers",
    "When gradients shrink on their way down (saturated sigmoid/tanh units have a "
    "derivative near 0), the lower layers barely change and training stalls.",
    "Use ELU/ReLU with He initialization (or SELU with LeCun normal) in hidden layers, "
    "BatchNormalization, and keep inputs standardised; Glorot initialization if you "
    "keep sigmoid/tanh.",
)
DYING_RELU = Symptom(
    "dying_relu", "warning", "dead ReLU units",
    "A ReLU unit whose input is negative for every sample outputs 0 and gets no "
    "gradient, so it never recovers; the layer loses that capacity.",
    "Use He initialization, a leaky variant (LeakyReLU, ELU, SELU), "
    "BatchNormalization before the activation, or a lower learning rate.",
)
UNNORMALIZED_INPUTS = Symptom(
    "unnormalized_inputs", "warning", "inputs are not standardised",
    "Large or uneven input scales saturate or kill units of the first layer and make "
    "the loss surface badly conditioned; initializations assume inputs with mean 0 "
    "and std 1.",
    "Standardise the inputs (keras.layers.Normalization adapted to the training data "
    "in front of the model, or Rescaling(1/255) for pixels).",
)
UNSTABLE_BATCH_NORMALIZATION = Symptom(
    "unstable_batch_normalization", "warning", "BatchNormalization with tiny batches",
    "BatchNormalization normalises with the mean and variance of each batch; with "
    "tiny batches these are noisy estimates, so training is unstable and the moving "
    "statistics used at inference do not match.",
    f"Train with batches of {MIN_BATCH_NORMALIZATION_BATCH} or more, or replace "
    "BatchNormalization by LayerNormalization/GroupNormalization (build_default_dnn's "
    'normalization="layer" or "group").',
)
# Under 8 samples a batch's statistics are too noisy to fix by waiting: the notes' advice.
_SMALL_BATCH_FIX = (
    "Replace BatchNormalization by LayerNormalization or GroupNormalization, which "
    "normalise each sample on its own and do not depend on the batch size (the chapter's "
    f"notes recommend them under batch size {SMALL_BATCH_NORMALIZATION_BATCH}); with "
    'build_default_dnn, pass normalization="layer" or normalization="group". Or train '
    f"with batches of {MIN_BATCH_NORMALIZATION_BATCH} or more."
)
LOSS_NOT_FALLING = Symptom(
    "loss_not_falling", "warning", "the loss does not fall",
    "A healthy model overfits a handful of batches quickly. A loss that stays "
    "flat or rises points to a learning rate far too small or too large, dead or "
    "saturated units, or labels that do not match the loss.",
    "Pick the learning rate with keras_recipes.find_learning_rate; check the "
    "other findings (dead units, vanishing gradients, unnormalised inputs) and "
    "that the loss matches the labels (sparse vs one-hot).",
)

#: Every symptom, in the order `diagnose` reports them.
SYMPTOMS = (
    NAN_OR_INF, DYING_RELU, EXPLODING_GRADIENTS, VANISHING_GRADIENTS, UNNORMALIZED_INPUTS,
    UNSTABLE_BATCH_NORMALIZATION, LOSS_NOT_FALLING,
)

#: Dynamic rules (symptoms measured by `diagnose(model, x, y)`): name -> (severity, summary).
DYNAMIC_RULES = {symptom.rule: (symptom.severity, symptom.summary) for symptom in SYMPTOMS}


# --- detectors (shared with TrainingMonitor) -------------------------------------------------


def nonfinite_layers(stats):
    """The `LayerStatistics` with NaN/Inf in their outputs or gradients."""
    return [s for s in stats if s.nonfinite]


def dead_layers(stats, threshold=DEAD_FRACTION_THRESHOLD):
    """The `LayerStatistics` with at least `threshold` of their ReLU units dead."""
    return [s for s in stats if s.dead_fraction is not None and s.dead_fraction >= threshold]


def exploding_layers(stats, threshold=EXPLODING_GRADIENT_NORM):
    """The `LayerStatistics` whose gradient norm is above `threshold` or not finite."""
    return [
        s for s in stats
        if s.gradient_norm is not None
        and (not math.isfinite(s.gradient_norm) or s.gradient_norm > threshold)
    ]


def _saturated_layers(stats):
    return [
        s for s in stats
        if s.saturated_fraction is not None
        and s.saturated_fraction >= SATURATED_FRACTION_THRESHOLD
    ]


# --- the mapping used by diagnose ------------------------------------------------------------


def symptom_findings(model, measurement):
    """Maps a `Measurement` of `model` to the findings of the symptom table."""
    stats, ratio = measurement.layers, measurement.gradient_norm_ratio
    findings = []
    findings += _nan_or_inf(stats, measurement.initial_losses + measurement.losses)
    for s in dead_layers(stats):
        findings.append(DYING_RELU.finding(
            s.layer, f"{s.dead_fraction:.0%} of the units output 0 for every sample",
            {"dead_fraction": s.dead_fraction},
        ))
    gradient_stats = [s for s in stats if s.gradient_norm is not None]
    findings += _exploding(stats, gradient_stats, ratio)
    findings += _vanishing(stats, gradient_stats, ratio)
    input_stats = measurement.input_statistics
    if input_stats is not None and input_stats["max_rms"] > INPUT_RMS_THRESHOLD:
        findings.append(UNNORMALIZED_INPUTS.finding(
            input_stats["layer"],
            f"inputs reach a per-feature RMS of {input_stats['max_rms']:.3g} "
            f"(|mean| up to {input_stats['max_abs_mean']:.3g}, std up to "
            f"{input_stats['max_std']:.3g})",
            input_stats,
        ))
    finding = batch_normalization_finding(model, measurement.batch_size)
    if finding is not None:
        findings.append(finding)
    findings += _loss_not_falling(measurement.initial_losses, measurement.losses)
    return findings


def batch_normalization_finding(model, batch_size):
    """The `unstable_batch_normalization` finding for `model` trained with batches of
    `batch_size`, or None.

    A model with BatchNormalization and batches under 16 gets it; under 8 its fix is
    the notes' advice, LayerNormalization or GroupNormalization instead.

    Args:
        model: a `keras.Model`.
        batch_size: int or None (unknown: no finding).

    Returns:
        A `Finding` or None.
    """
    if batch_size is None or batch_size >= MIN_BATCH_NORMALIZATION_BATCH or not any(
            isinstance(layer, keras.layers.BatchNormalization) for layer in all_layers(model)):
        return None
    symptom = UNSTABLE_BATCH_NORMALIZATION
    if batch_size < SMALL_BATCH_NORMALIZATION_BATCH:
        symptom = dataclasses.replace(symptom, fix=_SMALL_BATCH_FIX)
    return symptom.finding(None, f"BatchNormalization with batches of {batch_size}",
                           {"batch_size": batch_size})


def _nan_or_inf(stats, losses):
    layers = nonfinite_layers(stats)
    nonfinite_loss = any(not math.isfinite(loss) for loss in losses)
    if not layers and not nonfinite_loss:
        return []
    first = layers[0].layer if layers else None
    where = f"first in the outputs or gradients of layer '{first}'" if first else "in the loss"
    return [NAN_OR_INF.finding(
        first, "NaN/Inf values: " + where,
        {"layers": [s.layer for s in layers], "loss_nonfinite": nonfinite_loss},
    )]


def _first_layer(flagged, gradient_stats):
    """The layer a gradient finding names: the first flagged one, else the first whose
    gradients were measured (None without any)."""
    found = flagged or gradient_stats
    return found[0].layer if found else None


def _exploding(stats, gradient_stats, ratio):
    exploding = exploding_layers(gradient_stats)
    growing = ratio is not None and ratio > EXPLODING_GRADIENT_RATIO
    if not exploding and not growing:
        return []
    where = _first_layer(exploding, gradient_stats)
    parts = []
    if exploding:
        largest = max(exploding, key=lambda s: s.gradient_norm)
        parts.append(f"gradient norm {largest.gradient_norm:.3g} at layer '{largest.layer}'")
    if growing:
        parts.append(f"gradients grow towards the lower layers (RMS ratio first/last "
                     f"{ratio:.3g})")
    return [EXPLODING_GRADIENTS.finding(
        where, "; ".join(parts),
        {"gradient_norm_ratio": ratio,
         "gradient_norms": {s.layer: s.gradient_norm for s in gradient_stats},
         "activation_stds": {s.layer: s.std for s in stats}},
    )]


def _vanishing(stats, gradient_stats, ratio):
    saturated = _saturated_layers(stats)
    shrinking = ratio is not None and ratio < VANISHING_GRADIENT_RATIO
    if not shrinking and not saturated:
        return []
    where = _first_layer(saturated, gradient_stats)
    parts = []
    if shrinking:
        parts.append(f"RMS gradient ratio first/last layer {ratio:.3g}")
    for s in saturated:
        parts.append(f"{s.saturated_fraction:.0%} of '{s.layer}' ({s.activation}) saturated")
    return [VANISHING_GRADIENTS.finding(
        where, "; ".join(parts),
        {"gradient_norm_ratio": ratio,
         "saturated": {s.layer: s.saturated_fraction for s in saturated}},
    )]


def _loss_not_falling(first_losses, losses):
    """Compares each batch's loss before training with its loss at its last visit."""
    num_batches = len(first_losses)
    if (
        not num_batches
        or len(losses) <= num_batches
        or not all(math.isfinite(loss) for loss in losses + first_losses)
    ):
        return []
    last = {}
    for step, loss in enumerate(losses):
        last[step % num_batches] = loss
    start = float(np.mean([first_losses[b] for b in sorted(last)]))
    end = float(np.mean([last[b] for b in sorted(last)]))
    drop = (start - end) / max(abs(start), 1e-12)
    if drop >= MIN_RELATIVE_LOSS_DROP:
        return []
    return [LOSS_NOT_FALLING.finding(
        None,
        f"after {len(losses)} training steps on the same {num_batches} batch(es) the "
        f"mean loss went from {start:.4g} to {end:.4g}",
        {"losses": losses, "initial_losses": first_losses, "relative_drop": drop},
    )]
