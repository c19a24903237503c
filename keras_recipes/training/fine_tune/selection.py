"""Which layers each phase of `fine_tune` trains: the base found, frozen, its top unfrozen.

Phase 1 trains everything but the base. Phase 2 unfreezes the top layers of the base
that `unfreeze` names and keeps every BatchNormalization layer frozen: a frozen
BatchNormalization layer runs in inference mode in Keras 3, so the moving statistics
of the pretrained data survive fine-tuning on a few hundred images.
"""

from __future__ import annotations

import math

import keras

from keras_recipes import _graph_walk
from keras_recipes import _validation as v

__all__ = [
    "check_trainable",
    "check_unfreeze",
    "find_base",
    "freeze",
    "own_layers",
    "restore_flags",
    "select_layers",
    "trainable_flags",
    "unfreeze_top",
]

_UNFREEZE_TYPES = 'an int (layers), a float in (0, 1] (fraction of layers), a layer name or "all"'


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


def own_layers(base):
    """The top-level layers of `base`, bottom to top, without its input layers."""
    return [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]


def check_unfreeze(unfreeze, count=None):
    """Checks `unfreeze` as far as it can be without the base's layer names.

    Args:
        unfreeze: the argument of `fine_tune`.
        count: int or None, the number of layers of the base, when known (an int
            `unfreeze` must not exceed it).
    """
    if isinstance(unfreeze, str):
        return unfreeze
    if isinstance(unfreeze, bool) or not isinstance(unfreeze, (int, float)):
        v.fail("unfreeze", unfreeze, _UNFREEZE_TYPES, error=TypeError)
    if isinstance(unfreeze, int):
        v.check_int("unfreeze", unfreeze, min_value=1, max_value=count)
    else:
        v.check_number("unfreeze", unfreeze, low=0, high=1, low_inclusive=False)
    return unfreeze


def select_layers(base, unfreeze):
    """The top layers of `base` that `unfreeze` names (bottom to top)."""
    layers = own_layers(base)
    count = len(layers)
    check_unfreeze(unfreeze, count)
    if isinstance(unfreeze, str):
        if unfreeze.lower() == "all":
            return layers
        names = [layer.name for layer in layers]
        if unfreeze not in names:
            v.fail("unfreeze", unfreeze,
                   f'"all" or the name of a layer of the base {base.name!r} to unfreeze from',
                   hint=v.did_you_mean(unfreeze, {n: n for n in names}))
        return layers[names.index(unfreeze):]
    if isinstance(unfreeze, int):
        return layers[count - unfreeze:]
    # A fraction counts the layers fine-tuning can train (with weights, BatchNorm aside,
    # which stays frozen), so that the top 30% of a small base is never just its pooling.
    trainable = [i for i, layer in enumerate(layers)
                 if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)]
    if not trainable:
        return layers[count - math.ceil(unfreeze * count):]
    return layers[trainable[-math.ceil(unfreeze * len(trainable))]:]


def freeze(base):
    """Freezes the whole base (phase 1)."""
    base.trainable = False


def unfreeze_top(base, selected):
    """Makes `selected` trainable and everything else in `base`, and every BatchNorm, frozen."""
    base.trainable = True
    chosen = {id(layer) for layer in selected}
    for layer in own_layers(base):
        if id(layer) not in chosen:
            layer.trainable = False
    for layer in _graph_walk.flatten_layers(base):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def trainable_flags(model):
    """Every layer of `model` (nested ones included) with its `trainable` flag."""
    return [(layer, layer.trainable) for layer in _graph_walk.flatten_layers(model)]


def restore_flags(flags):
    """Sets the flags `trainable_flags` returned back."""
    for layer, trainable in flags:  # parents first, so children keep their own flag
        layer.trainable = trainable


def check_trainable(model, base, selected, *, head_epochs, epochs, unfreeze):
    """Checks, before anything trains, that each phase that runs has weights to train.

    Leaves the trainable flags as they were, also when it raises.
    """
    flags = trainable_flags(model)
    try:
        freeze(base)
        if head_epochs and not model.trainable_weights:
            v.fail("model", model.name, "a model with trainable weights outside its base for "
                   "phase 1 (the head)", hint=f"(every layer outside {base.name!r} is frozen "
                   "or has no weights)")
        if epochs:
            unfreeze_top(base, selected)
            if not base.trainable_weights:
                names = [layer.name for layer in selected]
                shown = ", ".join(repr(n) for n in names[:5]) + (", ..." if len(names) > 5
                                                                 else "")
                v.fail("unfreeze", unfreeze, "a choice of base layers with weights to train in "
                       "phase 2", hint=f"(the chosen layers {shown} have none besides "
                       "BatchNormalization, which stays frozen)")
    finally:
        restore_flags(flags)
