"""The input stem shared by the dense recipes."""

from __future__ import annotations

import keras

from keras_recipes import _validation as v

__all__ = ["dense_input_stem"]


def dense_input_stem(input_shape, normalization):
    """Returns `(inputs, x)`: an `Input`, flattened if needed, then `normalization`."""
    input_shape = v.check_shape("input_shape", input_shape)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    if normalization is not None:
        x = normalization(x)
    return inputs, x
