"""`DatasetSplits`: the train, validation and test splits `datasets.load` returns."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_recipes.datasets._source import tensorflow

__all__ = ["DatasetSplits", "Split"]

_SPLITS = ("train", "validation", "test")
# The memory tf.data's autotuning may use for the buffers of a stream.
_RAM_BUDGET = 256 * 2**20


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a `DatasetSplits`: its targets, and its inputs or their stream.

    Attributes:
        y: numpy array of targets (int64 class labels or float32 numbers).
        x: float32 numpy array of preprocessed inputs (an in-memory source), or None.
        stream: `stream(shuffle_seed)`: a `tf.data.Dataset` of single raw
            `(x, y)` examples, not yet preprocessed (a streamed source), or None.
    """

    y: np.ndarray
    x: np.ndarray | None = None
    stream: object = None


class DatasetSplits:
    """Train, validation and test splits of a dataset, in memory or streamed.

    Small sources (the bundled digits, `.npz` and `.csv` files) are held in
    memory as numpy arrays. Folders of images and TensorFlow Datasets are
    streamed: their inputs are read, decoded, resized and preprocessed one
    batch at a time, so that memory does not grow with the dataset; only the
    targets (`y_train`, ...) and the preprocessing statistics are held.

    Both forms offer both views:

    - `train`, `validation`, `test`: `tf.data.Dataset`s of `(x, y)` batches of
      `batch_size`, prefetched; `train` is reshuffled at each pass (seeded).
      Pass them to `fit`, `evaluate`, `fine_tune`, `find_learning_rate`,
      `diagnose` or `MCDropoutPredictor.predict` as they are. They need
      TensorFlow installed (any Keras backend reads them).
    - `x_train`, `y_train`, `x_val`, `y_val`, `x_test`, `y_test`: numpy
      arrays. For a streamed source, the first use of `x_train` (`x_val`,
      `x_test`) reads that whole split into memory (`len(y_train)` times
      `input_shape` float32 values) and keeps it; the targets are always
      arrays.

    Attributes:
        name: str, the dataset's name (a folder's or file's path as given).
        num_classes: int for classification (labels in `[0, num_classes)`),
            None for regression targets.
        class_names: tuple of str or None: a folder's sub-folders, a tfds
            `ClassLabel`'s names.
        input_shape: tuple, the shape of one preprocessed sample (images keep
            theirs, but for PCA whitening).
        image_size: tuple `(height, width)` the images were resized to, or None.
        batch_size: int, the batch size of `train`, `validation` and `test`.
        streamed: bool, whether the inputs are streamed rather than held.
        preprocessing: the `Preprocessing` (standardisation or whitening with
            the training split's statistics) that every split went through.

    Example:

    >>> from keras_recipes import datasets
    >>> data = datasets.load("digits")
    >>> data.x_train.shape[1:], data.num_classes, data.streamed
    ((64,), 10, False)
    >>> x, y = next(iter(data.train))
    >>> tuple(x.shape), tuple(y.shape)
    ((32, 64), (32,))
    """

    def __init__(self, name, splits, *, num_classes, preprocessing, batch_size=32, seed=0,
                 class_names=None, image_size=None):
        self.name = name
        self.num_classes = num_classes
        self.class_names = class_names
        self.image_size = image_size
        self.batch_size = batch_size
        self.preprocessing = preprocessing
        self._splits = dict(splits)
        self._seed = seed
        self._cache = {}

    def __repr__(self):
        sizes = ", ".join(f"{split}={len(self._splits[split].y)}" for split in _SPLITS)
        return (f"DatasetSplits(name={self.name!r}, {sizes}, input_shape={self.input_shape}, "
                f"num_classes={self.num_classes}, streamed={self.streamed})")

    @property
    def input_shape(self):
        """tuple, the shape of one sample, e.g. `(64,)` or `(28, 28, 1)`."""
        return self.preprocessing.output_shape

    @property
    def streamed(self):
        """bool, whether the inputs are streamed (a folder, tfds) rather than held."""
        return self._splits["train"].x is None

    # -- the arrays --------------------------------------------------------------------------
    @property
    def x_train(self):
        """numpy array, the training inputs (read into memory on first use when streamed)."""
        return self._array("train")

    @property
    def x_val(self):
        """numpy array, the validation inputs (read into memory on first use when streamed)."""
        return self._array("validation")

    @property
    def x_test(self):
        """numpy array, the test inputs (read into memory on first use when streamed)."""
        return self._array("test")

    @property
    def y_train(self):
        """numpy array, the training targets."""
        return self._splits["train"].y

    @property
    def y_val(self):
        """numpy array, the validation targets."""
        return self._splits["validation"].y

    @property
    def y_test(self):
        """numpy array, the test targets."""
        return self._splits["test"].y

    def _array(self, split):
        held = self._splits[split].x
        if held is not None:
            return held
        key = ("array", split)
        if key not in self._cache:
            count = len(self._splits[split].y)
            array = np.empty((count, *self.input_shape), dtype="float32")
            start = 0
            for x, _ in self._batches(split, shuffle=False).as_numpy_iterator():
                array[start:start + len(x)] = x
                start += len(x)
            self._cache[key] = array
        return self._cache[key]

    # -- the streams -------------------------------------------------------------------------
    @property
    def train(self):
        """`tf.data.Dataset` of `(x, y)` training batches, reshuffled at each pass."""
        return self._dataset("train")

    @property
    def validation(self):
        """`tf.data.Dataset` of `(x, y)` validation batches, in a fixed order."""
        return self._dataset("validation")

    @property
    def test(self):
        """`tf.data.Dataset` of `(x, y)` test batches, in a fixed order (that of `y_test`)."""
        return self._dataset("test")

    def _dataset(self, split):
        key = ("dataset", split)
        if key not in self._cache:
            self._cache[key] = self._batches(split, shuffle=split == "train")
        return self._cache[key]

    def _batches(self, split, shuffle):
        tf = tensorflow("`DatasetSplits.train` (and `validation`, `test`)")
        part = self._splits[split]
        seed = self._seed if shuffle else None
        if part.x is not None:
            dataset = tf.data.Dataset.from_tensor_slices((part.x, part.y))
            if shuffle:
                dataset = dataset.shuffle(len(part.y), seed=seed, reshuffle_each_iteration=True)
            return dataset.batch(self.batch_size).prefetch(tf.data.AUTOTUNE)
        dtype = part.y.dtype.name
        preprocess = self.preprocessing.apply_batch
        options = tf.data.Options()
        # tf.data's autotuning may buffer up to half the machine's memory by default.
        options.autotune.ram_budget = _RAM_BUDGET
        return (part.stream(seed).batch(self.batch_size)
                .map(lambda x, y: (preprocess(x), tf.cast(y, dtype)),
                     num_parallel_calls=tf.data.AUTOTUNE)
                .prefetch(tf.data.AUTOTUNE).with_options(options))

    def preprocess(self, x):
        """New raw inputs preprocessed as the splits were (the training split's statistics).

        Args:
            x: array of shape `(n, *raw_shape)`, e.g. images as decoded and
                resized to `image_size`, before standardisation.

        Returns:
            A float32 numpy array of shape `(n, *input_shape)`.
        """
        return self.preprocessing.apply(x)
