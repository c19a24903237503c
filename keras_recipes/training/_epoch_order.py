"""Array batches in an order fixed by the run and the epoch, so that a resumed run trains on
the batches the uninterrupted one would have; and what identifies a run's data."""

from __future__ import annotations

import math
import zlib

import keras
import numpy as np

__all__ = ["EpochOrderedArrays", "are_arrays", "data_fingerprint", "orderable",
           "ordered_fit_arguments"]


class EpochOrderedArrays(keras.utils.PyDataset):
    """Batches of arrays, shuffled anew each epoch by a permutation that depends only on
    `seed` and the epoch's number; on several processes, each process's share of each.

    Keras shuffles arrays with the process's global random state (a `tf.random`
    op on TensorFlow, NumPy's generator elsewhere), so a run killed and started
    again sees its remaining epochs in other orders than the uninterrupted run
    would have. With a backup, the recipe feeds `fit` this instead: epoch `e` is
    always permutation `(seed, e)`, and the seed is kept in the backup.

    On several processes (`keras.distribution` on JAX), each process must feed its
    own part of every global batch: process `i` of `n` gets the `i`-th of `n` equal
    slices of each batch of `batch_size` rows (a last batch that does not split
    evenly loses its remainder, at most `n - 1` rows), so that together they train on
    the batches one process would.

    Args:
        arrays: tuple `(x, y)` or `(x, y, sample_weight)`; `x` may be a list or dict of
            arrays.
        batch_size: int, the global batch size.
        seed: int, or None to keep the arrays' order.
        first_epoch: int, the epoch `fit` starts at (a resumed run's).
        shard: tuple `(index, count)`, this process's number and the number of
            processes. Defaults to `(0, 1)`.
    """

    def __init__(self, arrays, batch_size, seed=None, first_epoch=0, shard=(0, 1)):
        super().__init__()
        self.arrays = tuple(a for a in arrays if a is not None)
        self.batch_size = int(batch_size)
        self.seed = None if seed is None else int(seed)
        self.shard = shard
        self.size = len(keras.tree.flatten(self.arrays[0])[0])
        self.epoch = int(first_epoch)
        self.order = self._permutation(self.epoch)

    def _permutation(self, epoch):
        if self.seed is None:
            return np.arange(self.size)
        return np.random.default_rng([self.seed, epoch]).permutation(self.size)

    def __len__(self):
        return math.ceil(self.size / self.batch_size)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        part, parts = self.shard
        if parts > 1:
            share = len(rows) // parts
            rows = rows[part * share:(part + 1) * share]
        return keras.tree.map_structure(lambda array: array[rows], self.arrays)

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self._permutation(self.epoch)


def _is_array(value):
    return isinstance(value, np.ndarray)


def are_arrays(x, y=None, sample_weight=None):
    """Whether `x` (or a list / dict of them), `y` and `sample_weight` are NumPy arrays
    (or None for the last two)."""
    return (x is not None and all(map(_is_array, keras.tree.flatten(x)))
            and (y is None or _is_array(y))
            and (sample_weight is None or _is_array(sample_weight)))


def orderable(params):
    """Whether `fit`'s arguments are arrays the recipe can batch itself: NumPy `x` (or a
    list / dict of them) and `y`, no `steps_per_epoch` or class weights."""
    return (params["y"] is not None and params["steps_per_epoch"] is None
            and params["class_weight"] is None
            and are_arrays(params["x"], params["y"], params["sample_weight"]))


def ordered_fit_arguments(params, seed, first_epoch, shard=(0, 1)):
    """`fit`'s keyword arguments with its arrays replaced by `EpochOrderedArrays`: shuffled
    by epoch when `fit` shuffles, this process's share of each batch on several.

    A `validation_split` is taken first, as Keras takes it: the last fraction of the
    samples, before any shuffling; validation arrays keep their order.
    """
    params = dict(params)
    arrays = (params.pop("x"), params.pop("y"), params.pop("sample_weight"))
    batch_size = params.pop("batch_size") or 32
    split = params.pop("validation_split") or 0.0
    if split:
        size = len(keras.tree.flatten(arrays[0])[0])
        at = int(math.floor(size * (1.0 - split)))
        validation = keras.tree.map_structure(lambda a: a[at:], arrays)
        arrays = keras.tree.map_structure(lambda a: a[:at], arrays)
        params["validation_data"] = tuple(a for a in validation if a is not None)
    validation = params["validation_data"]
    if shard[1] > 1 and isinstance(validation, (tuple, list)) and are_arrays(*validation):
        params["validation_data"] = EpochOrderedArrays(
            validation, params.pop("validation_batch_size") or batch_size, shard=shard)
        params["validation_batch_size"] = None
    shuffle = params["shuffle"] is True
    params["x"] = EpochOrderedArrays(arrays, batch_size, seed if shuffle else None,
                                     first_epoch, shard)
    params.update(y=None, sample_weight=None, batch_size=None, shuffle=False,
                  validation_split=0.0)
    return params


def data_fingerprint(x, y=None):
    """What identifies `fit`'s data for a backup: for arrays, their shapes, types and a
    checksum of a sample of their rows; for a dataset, its kind and length."""
    def one(value):
        if isinstance(value, np.ndarray):
            step = max(1, len(value) // 64) if value.ndim else 1
            sample = np.ascontiguousarray(value[::step] if value.ndim else value)
            return {"shape": list(value.shape), "dtype": str(value.dtype),
                    "crc32": zlib.crc32(sample.tobytes())}
        if value is None:
            return None
        length = None
        try:
            length = len(value)
        except TypeError:
            length = None
        return {"kind": type(value).__name__, "length": length}

    return {"x": keras.tree.map_structure(one, x) if not hasattr(x, "shape") else one(x),
            "y": one(y)}
