"""The layers of a recipe's stem and hidden stack: each activation with the initializer that
keeps its variance stable, the normalization between a hidden layer and its activation
(BatchNorm, LayerNorm, GroupNorm), seeded initializers and per-layer seeds, L1/L2
regularizers, and the input `Normalization` layer adapted to data or built from
statistics."""

from __future__ import annotations

import keras

from keras_recipes import _validation as v
from keras_recipes import datasets

__all__ = [
    "ACTIVATION_INITIALIZERS",
    "MAX_NORMALIZATION_GROUPS",
    "MIN_UNITS_PER_GROUP",
    "NORMALIZATIONS",
    "activation_layer",
    "check_hidden_normalization",
    "hidden_normalization_layer",
    "kernel_regularizer",
    "layer_seed",
    "normalization_layer",
    "seeded_initializer",
]

# Each activation with the initializer that keeps its variance stable, as in the chapter's
# table: He for the ReLU family and its smooth cousins, LeCun for SELU, Glorot for tanh and
# the logistic sigmoid (the normal variant of each, for one family of draws).
ACTIVATION_INITIALIZERS = {
    "relu": "he_normal",
    "leaky_relu": "he_normal",
    "prelu": "he_normal",
    "elu": "he_normal",
    "selu": "lecun_normal",
    "swish": "he_normal",
    "silu": "he_normal",
    "gelu": "he_normal",
    "tanh": "glorot_normal",
    "sigmoid": "glorot_normal",
}


def activation_layer(name, *, layer_name=None):
    """A layer applying the activation `name` (one of `ACTIVATION_INITIALIZERS`)."""
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2, name=layer_name)
    if name == "prelu":
        return keras.layers.PReLU(name=layer_name)
    return keras.layers.Activation("silu" if name == "swish" else name, name=layer_name)


# What may sit between a hidden layer and its activation: BatchNormalization (statistics of
# the batch), LayerNormalization (of each sample's units) or GroupNormalization (of each
# sample's groups of units); the last two do not depend on the batch size.
NORMALIZATIONS = ("batch", "layer", "group")
_LAYER_NAMES = {"batch": "batch_norm", "layer": "layer_norm", "group": "group_norm"}

#: `normalization_groups="auto"`: at most this many groups (Keras's and Wu & He's default)...
MAX_NORMALIZATION_GROUPS = 32
#: ... of at least this many units each (Wu & He's 16 channels per group). A Dense layer has
#: no spatial positions to add to a group's statistics: a group of 1 unit normalises to 0,
#: and each group loses two degrees of freedom to its mean and variance.
MIN_UNITS_PER_GROUP = 16


def check_hidden_normalization(normalization, normalization_groups, units):
    """Validates the normalization of the hidden layers; resolves `"auto"` groups.

    Args:
        normalization: `"batch"`, `"layer"`, `"group"` or None.
        normalization_groups: `"auto"` or a positive int dividing `units`; only
            with `normalization="group"` may it be other than `"auto"`.
        units: int, the units per hidden layer.

    Returns:
        `(normalization, groups)`: the lower-case name (or None) and the number of
        groups (None unless `"group"`).
    """
    if normalization is not None:
        normalization = v.check_choice("normalization", normalization, NORMALIZATIONS)
    if isinstance(normalization_groups, str) and normalization_groups.lower() == "auto":
        if normalization != "group":
            return normalization, None
        return normalization, max(
            g for g in range(1, MAX_NORMALIZATION_GROUPS + 1)
            if units % g == 0 and (units // g >= MIN_UNITS_PER_GROUP or g == 1))
    if normalization != "group":
        v.fail("normalization_groups", normalization_groups,
               '"auto" unless normalization="group"',
               hint=f"(the groups of GroupNormalization; normalization={normalization!r})")
    groups = v.check_int("normalization_groups", normalization_groups, min_value=1)
    if units % groups or units // groups < 2:
        v.fail("normalization_groups", groups,
               f"a divisor of `units` ({units}) leaving at least 2 units per group",
               hint="(GroupNormalization splits each layer's units into equal groups and "
                    "normalises each; a group of 1 unit would always be 0)")
    return normalization, groups


def hidden_normalization_layer(normalization, index, *, groups=None, synchronized=False):
    """The normalization layer of hidden block `index` (named `batch_norm_<index>`,
    `layer_norm_<index>` or `group_norm_<index>`), or None for `normalization=None`."""
    if normalization is None:
        return None
    name = f"{_LAYER_NAMES[normalization]}_{index}"
    if normalization == "batch":
        return keras.layers.BatchNormalization(synchronized=synchronized, name=name)
    if normalization == "layer":
        return keras.layers.LayerNormalization(name=name)
    return keras.layers.GroupNormalization(groups=groups, name=name)


def seeded_initializer(name, seed):
    """The initializer `name`, seeded with `seed` when it is not None."""
    initializer = keras.initializers.get(name)
    if seed is None:
        return initializer
    config = initializer.get_config()
    config["seed"] = seed
    return type(initializer).from_config(config)


def layer_seed(seed, index):
    """A distinct, reproducible seed per layer (None stays None)."""
    return None if seed is None else seed + index


def kernel_regularizer(l1, l2):
    """An L1/L2 regularizer, or None when both are 0."""
    if not l1 and not l2:
        return None
    return keras.regularizers.L1L2(l1=l1, l2=l2)


def normalization_layer(normalization_data=None, mean=None, variance=None, *, input_shape):
    """A `Normalization` layer adapted to data or built from statistics, or None."""
    if normalization_data is None and mean is None and variance is None:
        return None
    if normalization_data is not None:
        if mean is not None or variance is not None:
            v.fail("normalization_data", v.Described("<array>"),
                   "None when `input_mean`/`input_variance` are given",
                   hint="Pass either data to adapt to or the statistics, not both")
        import numpy as np

        data = np.asarray(normalization_data, dtype="float32")
        if data.ndim < 2 or data.shape[1:] != tuple(input_shape):
            v.fail("normalization_data", v.Described(f"<array of shape {data.shape}>"),
                   f"an array of shape (num_samples, *{tuple(input_shape)}) matching "
                   "`input_shape`")
        if not np.all(np.isfinite(data)):
            v.fail("normalization_data", v.Described("<array with NaN or Inf>"), "finite values")
        mean, variance = datasets.standardization_statistics(data.reshape(len(data), -1))
        return keras.layers.Normalization(mean=mean, variance=variance, name="standardize")
    if mean is None or variance is None:
        v.fail("input_mean" if mean is None else "input_variance", None,
               "given together with the other statistic")
    return keras.layers.Normalization(mean=mean, variance=variance, name="standardize")
