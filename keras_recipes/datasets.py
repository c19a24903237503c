"""Offline-first data loading: train/validation/test splits ready for `fit`."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_recipes import _validation as v

DATASETS = ("digits",)


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
    """Train, validation and test splits of a classification dataset.

    Attributes:
        name: str, the dataset's name.
        x_train, y_train, x_val, y_val, x_test, y_test: numpy arrays.
        num_classes: int, the number of classes.
        input_shape: tuple, the shape of one sample.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self):
        return tuple(self.x_train.shape[1:])


def load(name="digits", *, validation_split=0.15, test_split=0.2, seed=0, standardize=True):
    """Loads a dataset as train/validation/test splits, offline.

    `"digits"` is scikit-learn's bundled 8x8 digits (1,797 images, 64 features,
    10 classes): no download. The test split is taken first, then the
    validation split from what remains, both stratified. With `standardize`,
    each feature is standardised with statistics of the training split only
    (a feature that is constant there gets a scale of 1).

    Args:
        name: str, the dataset. Defaults to `"digits"`.
        validation_split: float in (0, 1), fraction of the non-test data held
            out for validation. Defaults to `0.15`.
        test_split: float in (0, 1), fraction held out for testing.
            Defaults to `0.2`.
        seed: int, seed of the split. Defaults to `0`.
        standardize: bool, whether to standardise the inputs. Defaults to `True`.

    Returns:
        A `DatasetSplits`.

    Raises:
        ValueError: for an unknown name or bad fractions.
        ImportError: if scikit-learn is missing.

    Example:

    >>> from keras_recipes import datasets
    >>> data = datasets.load("digits")
    >>> data.input_shape, data.num_classes
    ((64,), 10)
    """
    name = v.check_choice("name", name, DATASETS)
    v.check_number("validation_split", validation_split, low=0, high=1,
                   low_inclusive=False, high_inclusive=False)
    v.check_number("test_split", test_split, low=0, high=1, low_inclusive=False,
                   high_inclusive=False)
    v.check_int("seed", seed, min_value=0)
    v.check_bool("standardize", standardize)
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as error:
        raise ImportError(
            'The "digits" dataset needs scikit-learn: pip install "keras-recipes[cli]"'
        ) from error
    x, y = load_digits(return_X_y=True)
    x = x.astype("float32")
    y = y.astype("int64")
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_split, random_state=seed, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=validation_split, random_state=seed, stratify=y_rest)
    if standardize:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std < 1e-6] = 1.0
        x_train, x_val, x_test = ((a - mean) / std for a in (x_train, x_val, x_test))
    return DatasetSplits(name, x_train, y_train, x_val, y_val, x_test, y_test,
                         num_classes=int(y.max()) + 1)
