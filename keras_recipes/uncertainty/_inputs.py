"""The inputs of `MCDropoutPredictor.predict`: checked, and cut into equal chunks."""

from __future__ import annotations

import keras
import numpy as np

from keras_recipes import _keras_internals as ki
from keras_recipes import _validation as v

__all__ = ["is_dataset", "pad_rows", "standardize_x"]


def standardize_x(model, x):
    """Checks `x` against `model`'s inputs; returns `(data, num_rows)`.

    `num_rows` is None for datasets, which are passed through.
    """
    if x is None:
        v.fail("x", x, "the model's input: an array, a list or dict of arrays, or a dataset",
               error=TypeError)
    if is_dataset(x):
        return x, None
    graph = ki.functional_graph(model)
    if graph is None:  # a subclassed model: its input shapes are not declared
        return _standardize_unknown(x)
    inputs = graph.inputs
    if isinstance(x, dict):
        names = [t.name for t in inputs]
        missing = [n for n in names if n not in x]
        if missing:
            v.fail("x", f"<dict with keys {sorted(x)}>",
                   f"a dict with the model's input names {names}")
        arrays = {n: np.asarray(x[n]) for n in names}
        items = [(n, arrays[n], t) for n, t in zip(names, inputs)]
        data = arrays
    else:
        flat = list(x) if isinstance(x, (list, tuple)) and len(inputs) > 1 else [x]
        if len(flat) != len(inputs):
            v.fail("x", f"<{len(flat)} arrays>", f"{len(inputs)} arrays, one per model input")
        arrays = [np.asarray(a) for a in flat]
        items = [(f"x[{i}]" if len(inputs) > 1 else "x", a, t)
                 for i, (a, t) in enumerate(zip(arrays, inputs))]
        data = arrays if len(inputs) > 1 else arrays[0]
    num_rows = None
    for name, array, reference in items:
        expected = tuple(reference.shape)
        described = "(None, " + ", ".join(str(d) for d in expected[1:]) + ")"
        if expected[1:] == ():
            described = "(None,)"
        if array.ndim != len(expected) or any(
            e is not None and e != d for e, d in zip(expected[1:], array.shape[1:])
        ):
            v.fail(name, f"<array of shape {array.shape}>",
                   f"an array of shape {described} to match the model's input")
        num_rows = _check_rows(name, array, num_rows)
    return data, num_rows


def _check_rows(name, array, num_rows):
    """Checks that `array` has rows (as many as `num_rows`, if given), all finite."""
    if array.ndim == 0 or array.shape[0] == 0:
        v.fail(name, f"<array of shape {array.shape}>", "a non-empty array")
    if num_rows is not None and array.shape[0] != num_rows:
        v.fail(name, f"<array of shape {array.shape}>", f"{num_rows} rows like the other inputs")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        v.fail(name, "<array with NaN or Inf>", "finite values")
    return array.shape[0]


def _standardize_unknown(x):
    """`x` for a model without declared inputs: arrays with equal, non-zero rows."""
    arrays = keras.tree.map_structure(np.asarray, x)
    num_rows = None
    for index, array in enumerate(keras.tree.flatten(arrays)):
        name = "x" if not isinstance(x, (list, tuple, dict)) else f"x[{index}]"
        num_rows = _check_rows(name, array, num_rows)
    if num_rows is None:
        v.fail("x", x, "the model's input: an array, a list or dict of arrays, or a dataset",
               error=TypeError)
    return arrays, num_rows


def pad_rows(array, count):
    """Appends `count` copies of the last row, so that chunks have equal shapes."""
    return np.concatenate([array, np.repeat(array[-1:], count, axis=0)], axis=0)


def is_dataset(x):
    """Whether `x` is a `tf.data.Dataset` or `keras.utils.PyDataset` (batches of inputs)."""
    if isinstance(x, keras.utils.PyDataset):
        return True
    module = type(x).__module__
    return module.startswith("tensorflow") and hasattr(x, "element_spec")
