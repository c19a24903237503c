"""Standardisation and whitening: statistics of the training split, applied to every split.

The statistics are gathered batch by batch (`RunningMoments`), so that a streamed training
split is read once and never held in memory; `Preprocessing` applies them to numpy arrays
(in-memory sources) and to the batches of a `tf.data` pipeline (streamed sources) alike.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_recipes import _validation as v

__all__ = ["EPSILON", "MAX_WHITENED_FEATURES", "WHITENING", "Preprocessing", "RunningMoments",
           "check_whitening", "preprocessing_kind", "standardization_statistics",
           "whitening_matrix"]

WHITENING = ("zca", "pca")
# Whitening needs the features' covariance (num_features^2 float64 values: 128 MB at
# 4,096) and its eigendecomposition (cubic in num_features): 64x64 RGB images at most.
MAX_WHITENED_FEATURES = 4096
# The eigenvalue floor of whitening, relative to the mean variance of the features: the
# directions with (almost) no variance (blank pixels, features that depend on others)
# are scaled by at most 1 / sqrt(EPSILON * mean variance) instead of blown up.
EPSILON = 1e-5


def standardization_statistics(data):
    """Per-feature mean and variance of 2-D `data`, with zero variance replaced by 1.

    Keras's `Normalization.adapt` keeps a zero variance and then divides by
    ~1e-7, so a feature that is constant in the training data (a blank pixel)
    turns any other value at test time into an enormous input.

    Args:
        data: array of shape `(num_samples, num_features)`.

    Returns:
        `(mean, variance)`, float32 arrays of shape `(num_features,)`.

    Example:

    >>> import numpy as np
    >>> from keras_recipes.datasets import standardization_statistics
    >>> mean, variance = standardization_statistics(np.array([[0.0, 5.0], [2.0, 5.0]]))
    >>> mean.tolist(), variance.tolist()
    ([1.0, 5.0], [1.0, 1.0])
    """
    mean = data.mean(axis=0, dtype="float64")
    variance = data.var(axis=0, dtype="float64")
    return mean.astype("float32"), _unit_if_constant(variance).astype("float32")


def _unit_if_constant(variance):
    variance = variance.copy()
    variance[variance < 1e-12] = 1.0
    return variance


def whitening_matrix(covariance, method="zca"):
    """The matrix that whitens features of covariance `covariance`.

    With `covariance = U diag(l) U^T`, PCA whitening is `W = U diag(1 / sqrt(l + eps))`
    (features become principal components, largest variance first) and ZCA whitening
    `W = U diag(1 / sqrt(l + eps)) U^T`, symmetric, the whitening closest to the input
    (each feature stays where it was: images stay images). `(x - mean) @ W` has
    covariance `U diag(l / (l + eps)) U^T`: the identity up to `eps`, which is
    `1e-5` times the mean variance, so that directions of no variance are not blown up.

    Args:
        covariance: square array, the covariance of the training features.
        method: str, `"zca"` or `"pca"`. Defaults to `"zca"`.

    Returns:
        A float64 array of the shape of `covariance`.

    Example:

    >>> import numpy as np
    >>> from keras_recipes.datasets import whitening_matrix
    >>> w = whitening_matrix(np.array([[4.0, 0.0], [0.0, 1.0]]))
    >>> np.round(w, 3).tolist()
    [[0.5, 0.0], [0.0, 1.0]]
    """
    method = v.check_choice("method", method, WHITENING)
    covariance = np.asarray(covariance, dtype="float64")
    if covariance.ndim != 2 or covariance.shape[0] != covariance.shape[1]:
        v.fail("covariance", v.Described(f"<array of shape {covariance.shape}>"),
               "a square matrix")
    eigenvalues, eigenvectors = np.linalg.eigh((covariance + covariance.T) / 2)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    epsilon = EPSILON * max(float(np.trace(covariance)) / len(covariance), 1e-12)
    order = np.argsort(eigenvalues)[::-1]  # largest variance first (PCA's order)
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    scaled = eigenvectors / np.sqrt(eigenvalues + epsilon)
    return scaled if method == "pca" else scaled @ eigenvectors.T


class RunningMoments:
    """The mean and variance (or covariance) of samples seen a batch at a time.

    Batches are merged with Chan et al.'s pairwise update in float64, so one pass
    over a split that never fits in memory gives the statistics of all of it.

    Args:
        covariance: bool, whether to keep the full covariance (num_features^2
            values) rather than the variances. Defaults to `False`.

    Example:

    >>> import numpy as np
    >>> from keras_recipes.datasets.statistics import RunningMoments
    >>> moments = RunningMoments()
    >>> for batch in np.array_split(np.arange(10.0).reshape(5, 2), 3):
    ...     moments.update(batch)
    >>> moments.count, moments.mean.tolist(), moments.variance.tolist()
    (5, [4.0, 5.0], [8.0, 8.0])
    """

    def __init__(self, covariance=False):
        self.keeps_covariance = covariance
        self.count = 0
        self.mean = None
        self._m2 = None  # sum of squared deviations (a matrix with `covariance`)

    def update(self, batch):
        """Adds a batch of shape `(batch_size, ...)`; each sample is flattened."""
        batch = np.asarray(batch, dtype="float64").reshape(len(batch), -1)
        if len(batch) == 0:
            return
        mean = batch.mean(axis=0)
        centered = batch - mean
        m2 = centered.T @ centered if self.keeps_covariance else (centered ** 2).sum(axis=0)
        if self.count == 0:
            self.count, self.mean, self._m2 = len(batch), mean, m2
            return
        total = self.count + len(batch)
        delta = mean - self.mean
        weight = self.count * len(batch) / total
        self._m2 = self._m2 + m2 + (np.outer(delta, delta) if self.keeps_covariance
                                    else delta ** 2) * weight
        self.mean = self.mean + delta * len(batch) / total
        self.count = total

    @property
    def variance(self):
        """float64 array, the (population) variance of each feature."""
        m2 = np.diag(self._m2) if self.keeps_covariance else self._m2
        return m2 / self.count

    @property
    def covariance(self):
        """float64 array, the (population) covariance matrix of the features."""
        if not self.keeps_covariance:
            raise ValueError("RunningMoments(covariance=False) keeps only the variances.")
        return self._m2 / self.count


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What every split's inputs go through: nothing, standardisation or whitening.

    Made from the training split's statistics only (`from_moments`), applied to
    every split and to new inputs alike (`apply` for numpy arrays, `apply_batch`
    for the batches of a `tf.data` pipeline).

    Attributes:
        kind: str, `"none"`, `"standardize"`, `"zca"` or `"pca"`.
        input_shape: tuple, the shape of one raw sample.
        mean: float32 array of `input_shape`, or None for `"none"`.
        scale: float32 array: the standard deviations (`"standardize"`), the
            whitening matrix (`"zca"`, `"pca"`), or None.
    """

    kind: str
    input_shape: tuple
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    @classmethod
    def from_moments(cls, kind, input_shape, moments=None):
        """The preprocessing of `kind` from the training split's `RunningMoments`."""
        if kind == "none":
            return cls("none", tuple(input_shape))
        mean = moments.mean.reshape(input_shape).astype("float32")
        if kind == "standardize":
            variance = _unit_if_constant(moments.variance).astype("float32")
            scale = np.sqrt(variance).reshape(input_shape)
        else:
            scale = whitening_matrix(moments.covariance, kind)
        return cls(kind, tuple(input_shape), mean, scale.astype("float32"))

    @property
    def output_shape(self):
        """tuple, the shape of one preprocessed sample (PCA: one vector of components)."""
        if self.kind == "pca":
            return (int(np.prod(self.input_shape)),)
        return self.input_shape

    def apply(self, x):
        """`x` preprocessed: a float32 numpy array of shape `(n, *output_shape)`."""
        x = np.asarray(x, dtype="float32")
        if self.kind == "none":
            return x
        if self.kind == "standardize":
            return ((x - self.mean) / self.scale).astype("float32")
        flat = (x - self.mean).reshape(len(x), -1) @ self.scale
        return flat.reshape((len(x), *self.output_shape)).astype("float32")

    def apply_batch(self, x):
        """A batch of a `tf.data` pipeline (a float32 tensor) preprocessed."""
        import tensorflow as tf

        if self.kind == "none":
            return x
        if self.kind == "standardize":
            return (x - tf.constant(self.mean)) / tf.constant(self.scale)
        flat = tf.reshape(x - tf.constant(self.mean), (-1, self.scale.shape[0]))
        return tf.reshape(tf.matmul(flat, tf.constant(self.scale)), (-1, *self.output_shape))


def preprocessing_kind(standardize, whiten):
    """The kind of `Preprocessing` that `standardize` and `whiten` ask for."""
    if whiten is not None:
        return whiten
    return "standardize" if standardize else "none"


def check_whitening(whiten, input_shape):
    """Refuses to whiten more features than a covariance of them can hold."""
    features = int(np.prod(input_shape))
    if whiten is not None and features > MAX_WHITENED_FEATURES:
        gigabytes = features ** 2 * 8 / 1e9
        v.fail("whiten", whiten, "None for inputs of this size",
               hint=f"Their {features:,} features ({'x'.join(map(str, input_shape))}) would "
               f"need a {features:,} x {features:,} covariance ({gigabytes:.1f} GB); whitening "
               f"takes at most {MAX_WHITENED_FEATURES:,} features (e.g. image_size [32, 32] "
               "for RGB images)")
