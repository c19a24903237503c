"""Dropout layers that stay on at prediction time, for Monte-Carlo Dropout."""

from __future__ import annotations

import keras

from keras_recipes import _validation as v

__all__ = ["MCAlphaDropout", "MCDropout"]

_PACKAGE = "keras_recipes"


class _AlwaysOn:
    """What both layers add to Keras's dropout layer they are mixed into: `rate` and `seed`
    checked at construction, and a `call` that is always in training mode."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        v.check_number("rate", rate, low=0, high=1, high_inclusive=False)
        v.check_seed(seed)
        super().__init__(rate, noise_shape=noise_shape, seed=seed, **kwargs)

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MCDropout(_AlwaysOn, keras.layers.Dropout):
    """`keras.layers.Dropout` that also drops units at prediction time.

    A drop-in replacement for `Dropout` when a model is built for Monte-Carlo
    Dropout (Gal & Ghahramani, 2016): it ignores the `training` flag, so
    `model.predict(x)` returns one random sample of the network, and averaging
    several calls estimates the predictive distribution. Everything else
    (`rate`, `noise_shape`, `seed`, the `1 / (1 - rate)` scaling of the kept
    units) is Keras's `Dropout`.

    To get MC-Dropout predictions from an *existing* model with ordinary
    `Dropout` layers, there is no need to rebuild it with this layer: use
    `keras_recipes.MCDropoutPredictor`, which is also much faster than calling
    `predict` repeatedly.

    Args:
        rate: float in [0, 1), the fraction of the input units to drop.
        noise_shape: tuple of ints or None, the shape of the binary dropout
            mask, as in `keras.layers.Dropout`. Defaults to `None`.
        seed: int or None, seed of the layer's random generator. Defaults to
            `None`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Returns:
        A `keras.layers.Dropout` layer whose call is always in training mode.

    Raises:
        ValueError: if `rate` is not in [0, 1).

    Example:

    >>> import numpy as np, keras, keras_recipes
    >>> model = keras.Sequential([
    ...     keras.Input((8,)),
    ...     keras.layers.Dense(16, activation="relu"),
    ...     keras_recipes.layers.MCDropout(0.5, seed=0),
    ...     keras.layers.Dense(1),
    ... ])
    >>> x = np.ones((4, 8), "float32")
    >>> samples = np.stack([model.predict(x, verbose=0) for _ in range(10)])
    >>> samples.shape
    (10, 4, 1)
    """


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MCAlphaDropout(_AlwaysOn, keras.layers.AlphaDropout):
    """`keras.layers.AlphaDropout` that also drops units at prediction time.

    The Monte-Carlo counterpart of `AlphaDropout` for self-normalizing (SELU)
    networks: dropped units are set to SELU's negative saturation value and the
    result is rescaled so that mean and variance are preserved, at training
    *and* at prediction time. Everything but the always-on behaviour is Keras's
    `AlphaDropout`. For an existing model with ordinary `AlphaDropout` layers use
    `keras_recipes.MCDropoutPredictor` instead of rebuilding it.

    Args:
        rate: float in [0, 1), the drop probability; the multiplicative noise
            has standard deviation `sqrt(rate / (1 - rate))`.
        noise_shape: tuple of ints or None, the shape of the binary mask, as in
            `keras.layers.AlphaDropout`. Defaults to `None`.
        seed: int or None, seed of the layer's random generator. Defaults to
            `None`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Returns:
        A `keras.layers.AlphaDropout` layer whose call is always in training mode.

    Raises:
        ValueError: if `rate` is not in [0, 1).

    Example:

    >>> import numpy as np, keras, keras_recipes
    >>> layer = keras_recipes.layers.MCAlphaDropout(0.2, seed=0)
    >>> x = np.random.default_rng(0).standard_normal((20000, 1)).astype("float32")
    >>> y = keras.ops.convert_to_numpy(layer(x))  # no training=True needed
    >>> bool(abs(y.mean()) < 0.05 and abs(y.std() - 1) < 0.05)
    True
    """
