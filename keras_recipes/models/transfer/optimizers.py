"""The optimizers of `fine_tune`'s phases: their kind, their learning rates, the
discriminative `MultiOptimizer` of phase 2, and the recompile that attaches them."""

from __future__ import annotations

import re

import keras

from keras_recipes import _keras_internals as ki
from keras_recipes import _validation as v
from keras_recipes.models import _optimizer_choice as optimizer_choice
from keras_recipes.models.transfer.selection import own_layers
from keras_recipes.schedules.one_cycle import OneCycle

__all__ = [
    "PHASE_TWO_DIVISOR",
    "check_multi_optimizer",
    "discriminative_optimizer",
    "fine_tune_rate",
    "head_optimizer",
    "optimizer_kind",
    "peak_learning_rate",
    "phase_two_rate",
    "recompile",
    "tune_optimizer",
]

# Phase 2's default peak learning rate is phase 1's divided by this. Measured on real
# ImageNet MobileNetV2 weights (benchmarks/bench_fine_tune.py): a tenth of the head's
# rate (1e-3 after the default 1e-2) undid most of what the head had learned within an
# epoch or two; a hundredth kept it and improved on it.
PHASE_TWO_DIVISOR = 100

# Public since Keras 3.15; None with an older Keras.
_MultiOptimizer = getattr(keras.optimizers, "MultiOptimizer", None)
_OptimizerMap = getattr(keras.optimizers, "OptimizerMap", None)


def optimizer_kind(optimizer):
    """The name in `optimizer_choice.OPTIMIZERS` of an optimizer's class (a `MultiOptimizer`'s
    default one), or None."""
    name = type(ki.default_optimizer(optimizer)).__name__.lower()
    return name if name in optimizer_choice.OPTIMIZERS else None


def peak_learning_rate(optimizer):
    """The highest learning rate an optimizer can run at, or None when unknown."""
    peaks = []
    for inner in ki.component_optimizers(optimizer):
        rate = ki.learning_rate_object(inner)
        if isinstance(rate, OneCycle):
            peaks.append(rate.max_learning_rate)
        elif isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            return None
        else:
            peaks.append(float(keras.ops.convert_to_numpy(rate)))
    return max(peaks) if peaks else None


def phase_two_rate(model, learning_rate, fine_tune_learning_rate, epochs, *,
                   head_rate_known=True):
    """Phase 2's peak learning rate, checked against phase 1's.

    Args:
        model: the compiled model; its optimizer gives phase 1's rate when
            `learning_rate` is None.
        learning_rate: float or None, `fine_tune`'s (phase 1's rate).
        fine_tune_learning_rate: float or None, `fine_tune`'s.
        epochs: int, phase 2's epochs (0: the rate is not checked against phase 1's).
        head_rate_known: bool, False while the LR range finder has yet to choose
            phase 1's rate.
    """
    head_rate = learning_rate
    if head_rate is None and head_rate_known:
        head_rate = peak_learning_rate(model.optimizer)
    return fine_tune_rate(fine_tune_learning_rate, head_rate, epochs)


def fine_tune_rate(fine_tune_learning_rate, head_rate, epochs):
    """Phase 2's peak learning rate: given and lower than the head's, or a hundredth of it."""
    if fine_tune_learning_rate is None:
        if head_rate is None:
            v.fail("fine_tune_learning_rate", None,
                   "given when the head's learning rate is not known (not a number or a "
                   "1cycle)")
        return head_rate / PHASE_TWO_DIVISOR
    if head_rate is not None and epochs and fine_tune_learning_rate >= head_rate:
        v.fail("fine_tune_learning_rate", fine_tune_learning_rate,
               f"lower than the head's learning rate ({head_rate:g})",
               hint="(a high rate on the unfrozen base wrecks its pretrained features; "
               "10 to 100 times lower is usual)")
    return fine_tune_learning_rate


def check_multi_optimizer(discriminative_factor):
    """Refuses discriminative rates with a Keras that has no `MultiOptimizer`."""
    if discriminative_factor is not None and _MultiOptimizer is None:
        v.fail("discriminative_factor", discriminative_factor,
               "None with this Keras", hint=f"(Keras {keras.__version__} has no "
               "keras.optimizers.MultiOptimizer; upgrade Keras to use it)")


def head_optimizer(model, kind, learning_rate, one_cycle, clipnorm):
    """Phase 1's optimizer and whether `fit` spreads its 1cycle: a fresh copy of the
    compiled one when `learning_rate` is None, else a new one of `kind`."""
    if learning_rate is None:
        fresh = keras.optimizers.deserialize(keras.optimizers.serialize(model.optimizer))
        return fresh, bool(getattr(model, "auto_one_cycle", False))
    return optimizer_choice.build_optimizer(kind, learning_rate, one_cycle, None, clipnorm)


def tune_optimizer(model, base, kind, learning_rate, one_cycle, clipnorm, factor, groups):
    """Phase 2's optimizer and whether `fit` spreads its 1cycle: one rate, or
    discriminative rates when `factor` is not None."""
    if factor is None:
        return optimizer_choice.build_optimizer(kind, learning_rate, one_cycle, None, clipnorm)
    optimizer, auto, _ = discriminative_optimizer(model, base, kind, learning_rate, one_cycle,
                                                  clipnorm, factor, groups)
    return optimizer, auto


def discriminative_optimizer(model, base, kind, learning_rate, one_cycle, clipnorm,
                             factor, groups):
    """A `MultiOptimizer`: the head at `learning_rate`, lower base groups lower.

    The trainable layers of the base are split, bottom to top, into `groups`
    consecutive groups; group `k` from the top trains at
    `learning_rate * factor**k`.

    Returns:
        `(optimizer, auto_one_cycle, rates)` with `rates` the learning rate of
        each group, top first.
    """
    layers = [layer for layer in own_layers(base) if layer.trainable_weights]
    groups = min(groups, len(layers))
    bounds = [round(i * len(layers) / groups) for i in range(groups + 1)]
    chunks = [layers[bounds[i]:bounds[i + 1]] for i in range(groups)][::-1]  # top first
    paths = [variable.path for variable in model.trainable_variables]
    duplicated = sorted({p for p in paths if paths.count(p) > 1})
    if duplicated:
        v.fail("discriminative_factor", factor,
               "None for a model whose trainable variables do not have unique paths",
               hint=f"(MultiOptimizer maps variables by path, and {duplicated[:3]} occur more "
               "than once; give those layers distinct names)")
    head, auto = optimizer_choice.build_optimizer(kind, learning_rate, one_cycle, None, clipnorm)
    optimizer_map = _OptimizerMap(head)
    rates = []
    for k, chunk in enumerate(chunks, start=1):
        rate = learning_rate * factor**k
        rates.append(rate)
        group, _ = optimizer_choice.build_optimizer(kind, rate, one_cycle, None, clipnorm)
        for layer in chunk:
            for variable in layer.trainable_weights:
                # Escaped, so that the pattern matches this path and no other.
                optimizer_map[re.escape(variable.path)] = group
    return _MultiOptimizer(optimizer_map), auto, rates


def recompile(model, optimizer):
    """Compiles `model` again with `optimizer`, keeping its loss, metrics and settings."""
    config = keras.saving.deserialize_keras_object(model.get_compile_config())
    config["optimizer"] = optimizer
    model.compile(**config)
