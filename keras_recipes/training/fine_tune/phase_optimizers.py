"""The optimizers of `fine_tune`'s phases: their learning rates, the discriminative
`MultiOptimizer` of phase 2, and the recompile that attaches them."""

from __future__ import annotations

import re

import keras

from keras_recipes import _keras_internals as ki
from keras_recipes import _validation as v
from keras_recipes.schedules._span import PeakedSchedule
from keras_recipes.training.fine_tune.selection import own_layers

__all__ = [
    "PHASE_TWO_DIVISOR",
    "check_multi_optimizer",
    "discriminative_optimizer",
    "fine_tune_rate",
    "fresh_copy",
    "peak_learning_rate",
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


def peak_learning_rate(optimizer):
    """The highest learning rate an optimizer can run at, or None when unknown."""
    peaks = []
    for inner in ki.component_optimizers(optimizer):
        rate = ki.learning_rate_object(inner)
        if isinstance(rate, PeakedSchedule):  # the 1cycle, a decay
            peaks.append(rate.max_learning_rate)
        elif isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            return None
        else:
            peaks.append(float(keras.ops.convert_to_numpy(rate)))
    return max(peaks) if peaks else None


def fine_tune_rate(fine_tune_learning_rate, head_rate, epochs):
    """Phase 2's peak learning rate: given and lower than the head's, or a hundredth of it."""
    if fine_tune_learning_rate is None:
        if head_rate is None:
            v.fail("fine_tune_learning_rate", None,
                   "given when the head's learning rate is not known (not a number or a "
                   "schedule of keras_recipes.schedules)")
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


def fresh_copy(optimizer):
    """A new optimizer with the settings of `optimizer` and none of its state."""
    return keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))


def tune_optimizer(model, base, recipe, factor, groups):
    """Phase 2's optimizer: the recipe's (at phase 2's learning rate), or with
    discriminative rates when `factor` is not None."""
    if factor is None:
        return recipe.make_optimizer()
    return discriminative_optimizer(model, base, recipe, factor, groups)[0]


def discriminative_optimizer(model, base, recipe, factor, groups):
    """A `MultiOptimizer`: the head at the recipe's learning rate, lower base groups lower.

    The trainable layers of the base are split, bottom to top, into `groups`
    consecutive groups; group `k` from the top trains at
    `recipe.learning_rate * factor**k`, each with an optimizer the recipe makes.

    Returns:
        `(optimizer, rates)` with `rates` the learning rate of each group, top first.
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
    optimizer_map = _OptimizerMap(recipe.make_optimizer())
    rates = []
    for k, chunk in enumerate(chunks, start=1):
        rate = recipe.learning_rate * factor**k
        rates.append(rate)
        group = recipe.replace(learning_rate=rate).make_optimizer()
        for layer in chunk:
            for variable in layer.trainable_weights:
                # Escaped, so that the pattern matches this path and no other.
                optimizer_map[re.escape(variable.path)] = group
    return _MultiOptimizer(optimizer_map), rates


def recompile(model, optimizer):
    """Compiles `model` again with `optimizer`, keeping its loss, metrics and settings."""
    config = keras.saving.deserialize_keras_object(model.get_compile_config())
    config["optimizer"] = optimizer
    model.compile(**config)
