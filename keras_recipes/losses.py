"""Losses Keras lacks: sparse categorical cross-entropy with label smoothing."""

from __future__ import annotations

import keras
from keras import ops

from keras_recipes import _validation as v

__all__ = ["SparseCategoricalCrossentropy"]


@keras.saving.register_keras_serializable(package="keras_recipes")
class SparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy between integer labels and predictions, with label smoothing.

    Keras's `SparseCategoricalCrossentropy` takes integer labels but has no
    `label_smoothing`; its `CategoricalCrossentropy` smooths but wants one-hot
    labels. This loss one-hot encodes the integer labels (over the last axis of
    the predictions) and applies `keras.losses.categorical_crossentropy` with
    Keras's smoothing: with `K` classes the target of the true class is
    `1 - label_smoothing + label_smoothing / K` and every other class's
    `label_smoothing / K`. With `label_smoothing=0` it equals Keras's sparse
    loss. The factories use it for `label_smoothing=` on a multi-class task
    (Szegedy et al., 2016: the model is discouraged from becoming
    over-confident).

    Args:
        label_smoothing: float in [0, 1). Defaults to `0.0`.
        from_logits: bool, whether the predictions are logits rather than
            probabilities. Defaults to `False`.
        reduction: str, as Keras's losses. Defaults to `"sum_over_batch_size"`.
        name: str. Defaults to `"sparse_categorical_crossentropy"`.

    Raises:
        ValueError: for a `label_smoothing` outside [0, 1).
        TypeError: for a `from_logits` that is not a bool.

    Example:

    >>> import numpy as np
    >>> from keras_recipes.losses import SparseCategoricalCrossentropy
    >>> loss = SparseCategoricalCrossentropy(label_smoothing=0.1)
    >>> round(float(loss(np.array([0]), np.array([[0.9, 0.05, 0.05]]))), 4)
    0.2981
    """

    def __init__(self, label_smoothing=0.0, from_logits=False,
                 reduction="sum_over_batch_size", name="sparse_categorical_crossentropy"):
        self.label_smoothing = v.check_number("label_smoothing", label_smoothing, low=0, high=1,
                                              high_inclusive=False)
        self.from_logits = v.check_bool("from_logits", from_logits)
        super().__init__(name=name, reduction=reduction)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape):  # labels of shape (batch, 1)
            y_true = ops.squeeze(y_true, axis=-1)
        one_hot = ops.one_hot(ops.cast(y_true, "int32"), y_pred.shape[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing,
                "from_logits": self.from_logits}
