"""What a reader hands to `load`: the splits a source provides, in memory or as streams."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

__all__ = ["Part", "Source", "tensorflow"]


def tensorflow(why):
    """`import tensorflow`, or an ImportError naming the extra that installs it."""
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError(f"{why} needs TensorFlow (tf.data): pip install "
                          '"keras-recipes[tensorflow]"') from error
    return tf


@dataclasses.dataclass(frozen=True)
class Part:
    """One split as a source provides it: all its targets, and its inputs.

    Attributes:
        y: numpy array, the targets of every sample, in the source's order.
        x: numpy array of the inputs (an in-memory source), or None.
        stream: for a streamed source, `stream(indices, shuffle_seed)`: a
            `tf.data.Dataset` of single `(x, y)` examples (x float32, decoded
            and resized) of the samples at `indices` (sorted) in that order, or
            reshuffled at each pass with `shuffle_seed` (an int, or None for
            the fixed order). None for an in-memory source.
    """

    y: np.ndarray
    x: np.ndarray | None = None
    stream: Callable | None = None


@dataclasses.dataclass(frozen=True)
class Source:
    """The splits a source provides and what it declares about them.

    Attributes:
        parts: dict of `Part`: `"train"`, and `"validation"` / `"test"` when
            the source has them.
        sample_shape: tuple, the shape of one raw input.
        num_classes: int or None, the number of classes the source declares
            (sub-folders, a `ClassLabel`, the bundled digits' ten); None when its
            targets are bare numbers.
        class_names: tuple of str or None, the classes' names.
        image_size: pair of ints or None, the size images were resized to.
    """

    parts: dict
    sample_shape: tuple
    num_classes: int | None = None
    class_names: tuple | None = None
    image_size: tuple | None = None

    @property
    def streamed(self):
        """bool, whether the inputs are read as they are used rather than held."""
        return self.parts["train"].x is None
