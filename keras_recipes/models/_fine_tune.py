"""What `fine_tune` does between and around its two `fit` calls."""

from __future__ import annotations

import math
import re

import keras

from keras_recipes import _validation as v
from keras_recipes.callbacks.one_cycle_span import OneCycleSpan, one_cycle_schedules, resize
from keras_recipes.models import _blocks as blocks
from keras_recipes.schedules.one_cycle import OneCycle

_MultiOptimizer = getattr(keras.optimizers, "MultiOptimizer", None)
_OptimizerMap = getattr(keras.optimizers, "OptimizerMap", None)


def find_base(model):
    """The one nested model of `model`: the base of a transfer model."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        found = ("no nested model" if not nested else
                 f"{len(nested)} nested models: " + ", ".join(repr(m.name) for m in nested))
        v.fail("model", model.name,
               "a model built by `build_transfer_model`, or a model with exactly one nested "
               "base model (called as `base(x, training=False)`)",
               hint=f"(it has {found})")
    return nested[0]


def all_layers(layer):
    """`layer` and every layer inside it, parents before children."""
    return layer._flatten_layers(include_self=True, recursive=True)


def own_layers(base):
    """The top-level layers of `base`, bottom to top, without its input layers."""
    return [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]


def select_layers(base, unfreeze):
    """The top layers of `base` that `unfreeze` names (bottom to top)."""
    layers = own_layers(base)
    count = len(layers)
    if isinstance(unfreeze, str):
        if unfreeze.lower() == "all":
            return layers
        names = [layer.name for layer in layers]
        if unfreeze not in names:
            v.fail("unfreeze", unfreeze,
                   f'"all" or the name of a layer of the base {base.name!r} to unfreeze from',
                   hint=v.did_you_mean(unfreeze, {n: n for n in names}))
        return layers[names.index(unfreeze):]
    if isinstance(unfreeze, bool) or not isinstance(unfreeze, (int, float)):
        v.fail("unfreeze", unfreeze,
               'an int (layers), a float in (0, 1] (fraction of layers), a layer name or "all"',
               error=TypeError)
    if isinstance(unfreeze, int):
        v.check_int("unfreeze", unfreeze, min_value=1, max_value=count)
        return layers[count - unfreeze:]
    v.check_number("unfreeze", unfreeze, low=0, high=1, low_inclusive=False)
    return layers[count - math.ceil(unfreeze * count):]


def freeze(base):
    base.trainable = False


def unfreeze_top(base, selected):
    """Makes `selected` trainable and everything else in `base`, and every BatchNorm, frozen."""
    base.trainable = True
    chosen = {id(layer) for layer in selected}
    for layer in own_layers(base):
        if id(layer) not in chosen:
            layer.trainable = False
    for layer in all_layers(base):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def trainable_flags(model):
    return [(layer, layer.trainable) for layer in all_layers(model)]


def restore_flags(flags):
    for layer, trainable in flags:  # parents first, so children keep their own flag
        layer.trainable = trainable


# --- optimizers -------------------------------------------------------------------------


def is_multi_optimizer(optimizer):
    return _MultiOptimizer is not None and isinstance(optimizer, _MultiOptimizer)


def inner_optimizers(optimizer):
    return list(optimizer.optimizers) if is_multi_optimizer(optimizer) else [optimizer]


def optimizer_kind(optimizer):
    """The name in `blocks.OPTIMIZERS` of an optimizer's class, or None."""
    if is_multi_optimizer(optimizer):
        optimizer = optimizer._optimizer_map.default_optimizer if hasattr(
            optimizer._optimizer_map, "default_optimizer") else optimizer.optimizers[0]
    name = type(optimizer).__name__.lower()
    return name if name in blocks.OPTIMIZERS else None


def peak_learning_rate(optimizer):
    """The highest learning rate an optimizer can run at, or None when unknown."""
    peaks = []
    for inner in inner_optimizers(optimizer):
        rate = inner._learning_rate
        if isinstance(rate, OneCycle):
            peaks.append(rate.max_learning_rate)
        elif isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            return None
        else:
            peaks.append(float(keras.ops.convert_to_numpy(rate)))
    return max(peaks) if peaks else None


def fresh_copy(optimizer):
    """An unused optimizer with the same configuration."""
    return keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))


def recompile(model, optimizer):
    """Compiles `model` again with `optimizer`, keeping its loss, metrics and settings."""
    config = keras.saving.deserialize_keras_object(model.get_compile_config())
    config["optimizer"] = optimizer
    model.compile(**config)


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
    head, auto = blocks.build_optimizer(kind, learning_rate, one_cycle, None, clipnorm)
    optimizer_map = _OptimizerMap(head)
    rates = []
    for k, chunk in enumerate(chunks, start=1):
        rate = learning_rate * factor**k
        rates.append(rate)
        group, _ = blocks.build_optimizer(kind, rate, one_cycle, None, clipnorm)
        for layer in chunk:
            for variable in layer.trainable_weights:
                # Escaped, so that the pattern matches this path and no other.
                optimizer_map[re.escape(variable.path)] = group
    return _MultiOptimizer(optimizer_map), auto, rates


class FineTuneSpan(OneCycleSpan):
    """`OneCycleSpan` that also stretches the 1cycles of a `MultiOptimizer`'s optimizers."""

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if not is_multi_optimizer(optimizer):
            return super().on_train_begin(logs)
        steps = self.params.get("steps")
        if steps is None:
            return super().on_train_begin(logs)  # its explanation of the problem
        initial_epoch = self.model._initial_epoch or self.initial_epoch
        total_steps = steps * self.params["epochs"]
        changed = False
        for inner in optimizer.optimizers:
            iterations = int(keras.ops.convert_to_numpy(inner.iterations))
            start_step = max(iterations - steps * initial_epoch, 0)
            for schedule in one_cycle_schedules(inner):
                if (schedule.total_steps, schedule.start_step) != (total_steps, start_step):
                    resize(schedule, total_steps, start_step)
                    changed = True
        if changed:
            self.model.make_train_function(force=True)


# --- history ------------------------------------------------------------------------------


def combined_history(model, histories):
    """One `History` from the phases' `(phase, history)`, with a `"phase"` entry per epoch."""
    combined = keras.callbacks.History()
    combined.set_model(model)
    keys = []
    for _, history in histories:
        keys += [key for key in history.history if key not in keys]
    combined.history = {key: [] for key in keys}
    combined.history["phase"] = []
    combined.params = {}
    for phase, history in histories:
        epochs = len(history.epoch)
        for key in keys:
            combined.history[key] += list(history.history.get(key, [None] * epochs))
        combined.history["phase"] += [phase] * epochs
        combined.params[f"phase_{phase}"] = dict(history.params or {})
    combined.epoch = list(range(len(combined.history["phase"])))
    return combined
