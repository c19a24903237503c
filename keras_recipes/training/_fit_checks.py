"""Checks of array data at `RecipeModel.fit`, before Keras fails deep inside a graph.

Only numpy arrays (and lists) are checked: they are what users pass most, and
their mistakes (shapes, label ranges, NaN) are cheap to see. Datasets and
generators go to Keras unchanged.
"""

from __future__ import annotations

import numpy as np

from keras_recipes import _validation as v

__all__ = ["check_fit_data", "model_num_classes"]


def _array(value):
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], np.ndarray):
        return np.asarray(value)
    return value if isinstance(value, np.ndarray) else None


def check_fit_data(model, x, y, validation_data=None):
    """Validates array `x` / `y` (and `validation_data`) against the model.

    Raises:
        ValueError: for an empty array, a sample shape that does not match
            the model's input, NaN or Inf inputs, mismatched lengths, or class
            labels outside `[0, num_classes)`.
    """
    _check_pair(model, "x", "y", x, y)
    if isinstance(validation_data, (tuple, list)) and len(validation_data) >= 2:
        _check_pair(model, "validation_data[0]", "validation_data[1]", *validation_data[:2])


def _check_pair(model, x_name, y_name, x, y):
    x, y = _array(x), _array(y)
    # A subclassed model (compile_recipe's RecipeWrapper) has no graph to check against.
    inputs = getattr(model, "inputs", None) or ()
    if x is not None and len(inputs) == 1:
        if len(x) == 0:
            v.fail(x_name, v.Described(f"<empty array of shape {x.shape}>"), "at least one sample")
        expected = tuple(model.inputs[0].shape[1:])
        # None (variable-length sequences, any image size) matches any size.
        if x.ndim != len(expected) + 1 or any(
                e is not None and e != d for e, d in zip(expected, x.shape[1:])):
            v.fail(x_name, v.Described(f"<array of shape {x.shape}>"),
                   f"an array of shape (num_samples, {', '.join(map(str, expected))}) to match "
                   f"the model's input_shape={expected}")
        if np.issubdtype(x.dtype, np.number) and not np.all(np.isfinite(x)):
            bad = np.argwhere(~np.isfinite(x))
            v.fail(x_name, v.Described(f"<array with {len(bad)} NaN/Inf values, the first at "
                                       f"index {tuple(int(i) for i in bad[0])}>"),
                   "finite numbers")
    if x is not None and y is not None and len(x) != len(y):
        v.fail(y_name, v.Described(f"<array of {len(y)} samples>"),
               f"as many samples as `{x_name}` ({len(x)})")
    if y is not None:
        _check_labels(model, y_name, y)


def _loss_name(model):
    # A loss object by its name (label smoothing's, Keras's own classes).
    return model.loss if isinstance(model.loss, str) else getattr(model.loss, "name", None)


def model_num_classes(model):
    """The number of classes a compiled model's labels must lie in: its softmax units
    (sparse categorical cross-entropy), 2 (binary cross-entropy), or None (no
    classification loss, or no known output)."""
    loss = _loss_name(model)
    if loss not in ("sparse_categorical_crossentropy", "binary_crossentropy"):
        return None
    if not getattr(model, "outputs", None):
        return None
    return int(model.outputs[0].shape[-1]) if loss.startswith("sparse") else 2


def _check_labels(model, name, y):
    num_classes = model_num_classes(model)
    if num_classes is None or len(y) == 0:
        return
    loss = _loss_name(model)
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)):
        v.fail(name, v.Described("<labels with NaN, Inf or non-numbers>"), "class labels")
    if loss.startswith("sparse") and (np.any(y != np.round(y)) or y.min() < 0
                                      or y.max() >= num_classes):
        wrong = y[(y != np.round(y)) | (y < 0) | (y >= num_classes)]
        v.fail(name, v.Described(f"<labels including {wrong[0].item()!r}>"),
               f"integer class labels in [0, {num_classes})",
               hint="(the model was built with num_classes="
                    f"{num_classes})")
    if not loss.startswith("sparse") and (y.min() < 0 or y.max() > 1):
        v.fail(name, v.Described(f"<labels from {y.min().item()!r} to {y.max().item()!r}>"),
               "binary labels in [0, 1]")
