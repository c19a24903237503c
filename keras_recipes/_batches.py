"""Batches of `(x, y, sample_weight)` from arrays, a `tf.data.Dataset` or a `PyDataset`.

The one place that turns the data a user passes to `find_learning_rate`, `diagnose`
or `TrainingMonitor` into batches, with the argument checks and their messages.
Arrays are shuffled by a private generator (the global numpy state is not touched)
and only full batches are used (one shape, one trace); datasets are cycled. And the
inputs of one pass over a `fit`'s training data, in order (`one_pass`, for `swa_epochs`'
BatchNormalization statistics).
"""

from __future__ import annotations

import keras
import numpy as np

from keras_recipes import _validation as v

__all__ = ["batch_size_of", "batches", "collect_batches", "fit_batch_size", "one_pass"]


def batches(x, y, sample_weight, batch_size, shuffle, seed):
    """One endless iterator of `(x, y, sample_weight)` batches for arrays or datasets.

    Raises:
        TypeError: if `x` is neither arrays nor a dataset.
        ValueError: if `y` or `sample_weight` is given with a dataset, or the
            arrays are empty or of different lengths.
    """
    if _is_tf_dataset(x) or _is_py_dataset(x):
        for name, value in (("y", y), ("sample_weight", sample_weight)):
            if value is not None:
                v.fail(
                    name,
                    "<array>",
                    "None when `x` is a dataset",
                    hint="(the dataset yields its own targets and weights)",
                )
        if _is_tf_dataset(x):
            return _dataset_batches(x)
        return _py_dataset_batches(x)
    if x is None or isinstance(x, (str, bytes)) or not all(
        _is_array(leaf) for leaf in keras.tree.flatten(x)
    ):
        v.fail(
            "x",
            x,
            "a numpy array (or a list/dict of arrays), a tf.data.Dataset or a "
            "keras.utils.PyDataset",
            error=TypeError,
        )
    return _array_batches(x, y, sample_weight, batch_size, shuffle, seed)


def collect_batches(x, y, sample_weight, batch_size, num_batches, seed):
    """A fixed list of `num_batches` shuffled batches (a dataset shorter than that
    is cycled, so a batch may appear more than once)."""
    iterator = batches(x, y, sample_weight, batch_size, True, seed)
    return [next(iterator) for _ in range(num_batches)]


def one_pass(x, batch_size=None, steps=None, validation_split=0.0):
    """The input batches of one epoch of `fit(x, ...)`, in order, without shuffling.

    Args:
        x: arrays (or a structure of arrays), a `tf.data.Dataset` or a
            `keras.utils.PyDataset`, as `fit` takes them.
        batch_size: int or None, for arrays (Keras's 32 when None); the last
            batch may be smaller.
        steps: int or None, at most this many batches (`steps_per_epoch`: one
            epoch of a repeated dataset). Defaults to `None` (the whole data).
        validation_split: float, for arrays: the fraction at the end that `fit`
            holds out (as Keras splits: the first `floor(n * (1 - split))`
            samples train). Defaults to `0.0`.

    Yields:
        The `x` of each batch (numpy arrays on JAX and PyTorch).
    """
    if _is_tf_dataset(x) or _is_py_dataset(x):
        for index, element in enumerate(_one_dataset_pass(x, steps)):
            if steps is not None and index >= steps:
                return
            yield keras.utils.unpack_x_y_sample_weight(_as_tuple(element))[0]
        return
    n = _num_samples("x", x)
    if validation_split:
        n = int(np.floor(n * (1.0 - validation_split)))  # Keras's train_validation_split
    size = batch_size or 32
    for index, start in enumerate(range(0, n, size)):
        if steps is not None and index >= steps:
            return
        part = slice(start, min(start + size, n))
        yield keras.tree.map_structure(lambda a, part=part: np.asarray(a)[part], x)


def _one_dataset_pass(dataset, steps):
    """The elements of one pass over a dataset (of `steps` batches when it is endless)."""
    if _is_py_dataset(dataset):
        count = dataset.num_batches if dataset.num_batches is not None else steps
        return (dataset[index] for index in range(count))
    convert = keras.backend.backend() != "tensorflow"
    return (keras.tree.map_structure(_tf_to_numpy, element) if convert else element
            for element in dataset)


def batch_size_of(batch):
    """The number of samples in an `(x, y, sample_weight)` batch, or None."""
    leaves = keras.tree.flatten(batch[0])
    return int(np.shape(leaves[0])[0]) if leaves else None


def fit_batch_size(x, batch_size):
    """The batch size `fit(x, batch_size=batch_size)` trains with, or None when unknown.

    Arrays are cut into `batch_size` samples (Keras's 32 when None); a `tf.data.Dataset`
    has its own, read from its static shape when it has one; another dataset (a
    `PyDataset`, a generator) is not read ahead, so None.
    """
    if _is_tf_dataset(x):
        shapes = [spec.shape for spec in keras.tree.flatten(x.element_spec)
                  if hasattr(spec, "shape")]
        if shapes and shapes[0].rank and shapes[0][0] is not None:
            return int(shapes[0][0])
        return None
    if x is not None and not _is_py_dataset(x) and all(
            _is_array(leaf) for leaf in keras.tree.flatten(x)):
        return 32 if batch_size is None else int(batch_size)
    return None


def _is_tf_dataset(x):
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec")


def _is_py_dataset(x):
    return isinstance(x, keras.utils.PyDataset)


def _is_array(x):
    return hasattr(x, "__array__") or isinstance(x, (list, np.ndarray))


def _num_samples(name, data):
    leaves = keras.tree.flatten(data)
    if not leaves:
        v.fail(name, data, "a non-empty array (or structure of arrays)")
    lengths = set()
    for leaf in leaves:
        shape = np.shape(leaf)
        if not shape:
            v.fail(name, leaf, "arrays with a batch dimension, not a scalar")
        lengths.add(int(shape[0]))
    if len(lengths) > 1:
        v.fail(name, f"<arrays of lengths {sorted(lengths)}>", "arrays of one common length")
    return lengths.pop()


def _array_batches(x, y, sample_weight, batch_size, shuffle, seed):
    """Yields (x, y, sample_weight) batches forever, reshuffled at every pass."""
    x = keras.tree.map_structure(np.asarray, x)
    y = None if y is None else keras.tree.map_structure(np.asarray, y)
    sample_weight = None if sample_weight is None else np.asarray(sample_weight)
    n = _num_samples("x", x)
    if n == 0:
        v.fail("x", "<0 samples>", "at least one sample")
    if y is not None and _num_samples("y", y) != n:
        v.fail("y", f"<{_num_samples('y', y)} samples>", f"as many samples as `x` ({n})")
    if sample_weight is not None and len(sample_weight) != n:
        v.fail(
            "sample_weight",
            f"<{len(sample_weight)} samples>",
            f"as many samples as `x` ({n})",
        )
    size = min(batch_size, n)
    num_batches = n // size  # full batches only: one shape, one trace
    rng = np.random.default_rng(seed)

    def take(data, index):
        if data is None:
            return None
        return keras.tree.map_structure(lambda a: a[index], data)

    while True:
        order = rng.permutation(n) if shuffle else np.arange(n)
        for b in range(num_batches):
            index = order[b * size : (b + 1) * size]
            yield take(x, index), take(y, index), take(sample_weight, index)


def _dataset_batches(dataset):
    """Yields (x, y, sample_weight) batches of a re-iterable dataset, cycling.

    On JAX and PyTorch the TensorFlow tensors are converted to numpy arrays,
    as Keras's own data adapter does for those backends.
    """
    convert = keras.backend.backend() != "tensorflow"
    while True:
        produced = False
        for element in dataset:
            produced = True
            if convert:
                element = keras.tree.map_structure(_tf_to_numpy, element)
            yield keras.utils.unpack_x_y_sample_weight(_as_tuple(element))
        if not produced:
            v.fail("x", dataset, "a dataset that yields at least one batch")


def _py_dataset_batches(dataset):
    while True:
        num_batches = dataset.num_batches
        if num_batches is None:  # infinite PyDataset
            index = 0
            while True:
                yield keras.utils.unpack_x_y_sample_weight(_as_tuple(dataset[index]))
                index += 1
        if num_batches == 0:
            v.fail("x", dataset, "a dataset that yields at least one batch")
        for index in range(num_batches):
            yield keras.utils.unpack_x_y_sample_weight(_as_tuple(dataset[index]))
        dataset.on_epoch_end()


def _tf_to_numpy(value):
    if value is None or not type(value).__module__.startswith("tensorflow"):
        return value
    return value.numpy()


def _as_tuple(element):
    return tuple(element) if isinstance(element, list) else element
