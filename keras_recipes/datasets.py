"""Offline-first data loading: train/validation/test splits ready for `fit`.

Sources, all usable without the internet:

- `"digits"`: scikit-learn's bundled 8x8 digits (the default; no download);
- a file: `.npz` (arrays `x_train`, `y_train` and optionally `x_val`/`y_val`,
  `x_test`/`y_test`; or just `x` and `y`) or `.csv` (a header row; the label in
  the column named `label`, `labels`, `class`, `target` or `y`, else the last one);
- any TensorFlow Datasets name (`"mnist"`, `"fashion_mnist"`, `"tf_flowers"`, ...)
  through `tfds.load`, with `data_dir` pointing at prepared data for offline use.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from keras_recipes import _validation as v

__all__ = ["DatasetSplits", "load", "standardization_statistics"]

_BUNDLED = ("digits",)
_FILE_SUFFIXES = (".npz", ".csv")
# A .csv file's label column: the first of these names in its header, else the last column.
_LABEL_COLUMNS = ("label", "labels", "class", "target", "y")


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
    """Train, validation and test splits of a dataset, as numpy arrays.

    Attributes:
        name: str, the dataset's name.
        x_train, y_train, x_val, y_val, x_test, y_test: numpy arrays.
        num_classes: int for classification (labels in `[0, num_classes)`),
            None for regression targets.
        input_shape: tuple, the shape of one sample (images keep theirs).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None

    @property
    def input_shape(self):
        """tuple, the shape of one sample, e.g. `(64,)` or `(28, 28, 1)`."""
        return tuple(self.x_train.shape[1:])


def load(
    name="digits",
    *,
    validation_split=0.15,
    test_split=0.2,
    seed=0,
    standardize=True,
    data_dir=None,
    image_size=None,
    max_train_samples=None,
):
    """Loads a dataset as train/validation/test splits.

    Splits the source provides are kept (a tfds `test` split, `x_test` in an
    `.npz`); the others are carved out, stratified for classification: first
    the test split from everything, then the validation split from what
    remains. With `standardize`, each feature (each pixel for images) is
    standardised with statistics of the training split only; a feature
    constant there gets a scale of 1. Use `standardize=False` for transfer
    learning, whose models preprocess raw pixels themselves.

    Args:
        name: str, `"digits"`, a path to a `.npz` / `.csv` file, or a tfds
            dataset name. Defaults to `"digits"`.
        validation_split: float in (0, 1), the fraction of the training data
            held out for validation (when the source has no validation split).
            Defaults to `0.15`.
        test_split: float in (0, 1), the fraction held out for testing (when
            the source has no test split). Defaults to `0.2`.
        seed: int, seed of the splits. Defaults to `0`.
        standardize: bool, whether to standardise the inputs. Defaults to `True`.
        data_dir: str or None, tfds's data folder (offline or prepared data).
            Defaults to `None` (tfds's default).
        image_size: pair of ints or None, resize tfds images to this size
            (needed for datasets of varying image sizes). Defaults to `None`.
        max_train_samples: int or None, keep only this many training samples
            (after splitting). Defaults to `None`.

    Returns:
        A `DatasetSplits`.

    Raises:
        ValueError: for an unknown name, a missing file, bad fractions or bad data.
        ImportError: if scikit-learn (digits) or tensorflow-datasets (tfds) is missing.

    Example:

    >>> from keras_recipes import datasets
    >>> data = datasets.load("digits")
    >>> data.input_shape, data.num_classes
    ((64,), 10)
    """
    if not isinstance(name, (str, pathlib.Path)):
        v.fail("name", name, "a dataset name or a path to a .npz / .csv file", error=TypeError)
    v.check_number("validation_split", validation_split, low=0, high=1,
                   low_inclusive=False, high_inclusive=False)
    v.check_number("test_split", test_split, low=0, high=1, low_inclusive=False,
                   high_inclusive=False)
    v.check_seed(seed, allow_none=False)
    v.check_bool("standardize", standardize)
    v.check_int("max_train_samples", max_train_samples, min_value=1, allow_none=True)
    if image_size is not None:
        if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
                or not all(isinstance(s, int) and s > 0 for s in image_size)):
            v.fail("image_size", image_size, "None or a pair of positive integers, e.g. [96, 96]")

    name = str(name)
    if pathlib.Path(name).suffix.lower() in _FILE_SUFFIXES:
        parts = _load_file(name)
    elif name.lower() in _BUNDLED:
        name = name.lower()
        parts = {"train": _load_digits()}
    else:
        parts = _load_tfds(name, data_dir, image_size)

    train, validation, test = _split(parts, validation_split, test_split, seed)
    if max_train_samples is not None:
        train = (train[0][:max_train_samples], train[1][:max_train_samples])
    if standardize:
        train, validation, test = _standardize(train, validation, test)
    labels = np.concatenate([train[1], validation[1], test[1]])
    num_classes = int(labels.max()) + 1 if np.issubdtype(labels.dtype, np.integer) else None
    if num_classes is not None and labels.min() < 0:
        raise ValueError(f"Dataset {name!r} has negative labels (min {labels.min()}); "
                         "class labels must be integers in [0, num_classes).")
    return DatasetSplits(name, *train, *validation, *test, num_classes=num_classes)


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            'The "digits" dataset needs scikit-learn: pip install "keras-recipes[cli]"'
        ) from error
    x, y = load_digits(return_X_y=True)
    return x.astype("float32"), y.astype("int64")


def _load_file(path):
    path = pathlib.Path(path)
    if not path.is_file():
        v.fail("name", str(path), "an existing .npz or .csv file", hint="The file was not found")
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            arrays = dict(archive)
        parts = {}
        for split, (x_key, y_key) in {"train": ("x_train", "y_train"), "val": ("x_val", "y_val"),
                                      "test": ("x_test", "y_test")}.items():
            if x_key in arrays and y_key in arrays:
                parts[split] = (arrays[x_key], arrays[y_key])
        if not parts and "x" in arrays and "y" in arrays:
            parts["train"] = (arrays["x"], arrays["y"])
        if "train" not in parts:
            v.fail("name", str(path), "a .npz file with arrays `x_train` and `y_train` (or `x` "
                   "and `y`)", hint=f"It has {sorted(arrays)}")
    else:
        parts = {"train": _read_csv(path)}
    return {split: _as_supervised(x, y, f"{path} ({split})") for split, (x, y) in parts.items()}


def _read_csv(path):
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        v.fail("name", str(path), "a .csv file with a header row and at least one data row")
    header, body = rows[0], rows[1:]
    names = [name.strip().lower() for name in header]
    label = next((names.index(n) for n in _LABEL_COLUMNS if n in names), len(header) - 1)
    try:
        table = np.array(body, dtype="float64")
    except ValueError as error:
        raise ValueError(f"{path}: every value must be a number ({error}).") from None
    x = np.delete(table, label, axis=1).astype("float32")
    y = table[:, label]
    return x, y


def _as_supervised(x, y, where):
    x = np.asarray(x)
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"{where}: {len(x)} inputs but {len(y)} labels.")
    if len(x) == 0:
        raise ValueError(f"{where}: no samples.")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise ValueError(f"{where}: inputs must be finite numbers (found NaN, Inf or text).")
    if np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)):
        y = y.astype("int64")
    return x.astype("float32"), y


def _load_tfds(name, data_dir, image_size):
    bundled_hint = v.did_you_mean(name.lower(), {n: n for n in _BUNDLED})
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            f"Loading {name!r} needs TensorFlow Datasets: pip install \"keras-recipes[tfds]\" "
            f"(or use 'digits', a .npz or a .csv file). {bundled_hint}".rstrip()
        ) from error
    builders = tfds.list_builders()
    if name not in builders:
        v.fail("name", name, "'digits', a .npz / .csv path, or a TensorFlow Datasets name",
               hint=bundled_hint or v.did_you_mean(name, {n: n for n in builders}))
    try:
        return _read_tfds(tfds, name, data_dir, image_size)
    except ModuleNotFoundError as error:
        # tensorflow-datasets imports some modules only when it prepares or reads a
        # dataset (importlib_resources, through etils' epath, is one it does not declare):
        # say which one, not "no internet".
        raise ImportError(
            f"Loading {name!r} with TensorFlow Datasets needs the Python module "
            f"{error.name!r}, which is not installed: pip install {error.name} "
            '(pip install "keras-recipes[tfds]" installs what tensorflow-datasets itself '
            "needs)") from error


def _read_tfds(tfds, name, data_dir, image_size):
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare()  # once; the splits are known after it (tf_flowers: train)
    available = set(builder.info.splits.keys()) or {"train", "test"}  # (mock_data: none)
    wanted = [s for s in ("train", "validation", "test") if s in available]
    parts = {}
    for split in wanted:
        dataset = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
        xs, ys = [], []
        for x, y in tfds.as_numpy(dataset):
            xs.append(_resize(x, image_size) if image_size else x)
            ys.append(y)
        key = "val" if split == "validation" else split
        parts[key] = _as_supervised(np.stack(xs), np.asarray(ys), f"{name} ({split})")
    return parts


def _resize(image, size):
    import keras

    return keras.ops.convert_to_numpy(keras.ops.image.resize(image.astype("float32"), size))


def _split(parts, validation_split, test_split, seed):
    rng = np.random.default_rng(seed)
    train = parts["train"]
    test = parts.get("test")
    if test is None:
        train, test = _carve(train, test_split, rng)
    validation = parts.get("val")
    if validation is None:
        train, validation = _carve(train, validation_split, rng)
    return train, validation, test


def _carve(data, fraction, rng):
    """Splits `fraction` of `data` off, stratified by label for classification."""
    x, y = data
    if np.issubdtype(y.dtype, np.integer):
        held = []
        for label in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == label))
            held.extend(members[: int(round(fraction * len(members)))])
        held = np.sort(np.array(held, dtype="int64"))
    else:
        held = np.sort(rng.permutation(len(x))[: int(round(fraction * len(x)))])
    if len(held) == 0 or len(held) == len(x):
        raise ValueError(f"Cannot split {len(x)} samples with a fraction of {fraction}: "
                         "one side would be empty.")
    keep = np.setdiff1d(np.arange(len(x)), held)
    return (x[keep], y[keep]), (x[held], y[held])


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
    variance[variance < 1e-12] = 1.0
    return mean.astype("float32"), variance.astype("float32")


def _standardize(train, validation, test):
    mean, variance = standardization_statistics(train[0].reshape(len(train[0]), -1))
    shape = train[0].shape[1:]
    mean, std = mean.reshape(shape), np.sqrt(variance).reshape(shape)
    return tuple((((x - mean) / std).astype("float32"), y) for x, y in (train, validation, test))
