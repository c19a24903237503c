"""`datasets.load`: any source, carved into train/validation/test splits, preprocessed."""

from __future__ import annotations

import functools
import pathlib

import numpy as np

from keras_recipes import _validation as v
from keras_recipes.datasets import _labels, statistics
from keras_recipes.datasets._files import FILE_SUFFIXES, read_digits, read_file
from keras_recipes.datasets._folder import COLOR_MODES, read_folder
from keras_recipes.datasets._tfds import read_tfds
from keras_recipes.datasets.dataset_splits import DatasetSplits, Split

__all__ = ["load"]

_BUNDLED = ("digits",)
# Rows of an in-memory training split gathered into the statistics at a time (bounded memory).
_CHUNK = 4096
# Batches of a streamed training split read for its statistics.
_STATISTICS_BATCH = 64


def load(
    name="digits",
    *,
    validation_split=0.15,
    test_split=0.2,
    seed=0,
    standardize=True,
    whiten=None,
    task="auto",
    label=None,
    data_dir=None,
    image_size=None,
    color_mode="rgb",
    max_train_samples=None,
    batch_size=32,
):
    """Loads a dataset as train/validation/test splits, in memory or streamed.

    Sources, all usable without the internet:

    - `"digits"`: scikit-learn's bundled 8x8 digits (1,797 samples, no download);
    - a folder of class sub-folders of images (`.jpg`, `.png`, `.bmp`, `.gif`),
      as `keras.utils.image_dataset_from_directory` reads one: the classes are
      the sub-folders in alphabetical order; streamed;
    - a `.npz` file (arrays `x_train`, `y_train` and optionally `x_val`/`y_val`,
      `x_test`/`y_test`; or just `x` and `y`) or a `.csv` file (a header row,
      numbers only; the label column named by `label`, else the one named
      `label`, `labels`, `class`, `target` or `y`); held in memory;
    - a TensorFlow Datasets name (`"mnist"`, `"tf_flowers"`, ...), prepared on
      first use into `data_dir` (offline: a folder holding it prepared); streamed.

    Splits the source provides are kept (a tfds `test` split, `x_test` in an
    `.npz`); the others are carved out, stratified for classification: first
    the test split from everything, then the validation split from what
    remains. With `standardize`, each feature (each pixel of each channel for
    images) is standardised with statistics of the training split only; a
    feature constant there gets a scale of 1. `whiten` decorrelates the
    features instead (`"zca"` keeps their layout: images stay images; `"pca"`
    turns each sample into a vector of principal components). For a streamed
    source those statistics come from one pass over the training split, and
    the preprocessing runs in the pipeline. Use `standardize=False` for
    transfer learning, whose models preprocess raw pixels themselves.

    The task is classification when the source declares classes (a folder's
    sub-folders, a tfds `ClassLabel`, the digits) and regression for targets
    that are not whole numbers. Whole-number targets of a file are taken as
    class labels only when they are 0, 1, ..., K-1, each present, with
    2 <= K <= 32; other whole numbers (ages 18-80, counts) are refused until
    `task` says which task it is.

    Args:
        name: str or Path, `"digits"`, a folder of images, a `.npz` / `.csv`
            file, or a tfds dataset name. Defaults to `"digits"`.
        validation_split: float in (0, 1), the fraction of the training data
            held out for validation (when the source has no validation split).
            Defaults to `0.15`.
        test_split: float in (0, 1), the fraction held out for testing (when
            the source has no test split). Defaults to `0.2`.
        seed: int, seed of the splits, of `max_train_samples`' draw and of
            `train`'s shuffling. Defaults to `0`.
        standardize: bool, whether to standardise the inputs. Defaults to `True`.
        whiten: None, `"zca"` or `"pca"`: whiten the inputs with the training
            split's covariance instead of standardising them (at most 4,096
            features). Defaults to `None`.
        task: str, `"auto"`, `"classification"` or `"regression"`: what the
            targets are (see above). Defaults to `"auto"`.
        label: str or None, the label column of a `.csv` file. Defaults to
            `None` (a column with one of the usual names).
        data_dir: str or None, tfds's data folder (offline or prepared data).
            Defaults to `None` (tfds's default).
        image_size: pair of ints or None, the size folder and tfds images are
            resized to (bilinear). Defaults to `None`: a tfds dataset's own
            (fixed) size, a folder's first image's size. Ignored for the
            in-memory sources.
        color_mode: str, a folder's images decoded as `"rgb"` (3 channels),
            `"grayscale"` (1) or `"rgba"` (4). Defaults to `"rgb"`.
        max_train_samples: int or None, keep only this many training samples
            (after splitting), drawn stratified: each class in proportion.
            Defaults to `None`.
        batch_size: int, the batch size of `data.train`, `data.validation`
            and `data.test`. Defaults to `32`.

    Returns:
        A `DatasetSplits`.

    Raises:
        ValueError: for an unknown name, a missing file or folder, bad
            fractions, bad data, or targets whose task must be given.
        ConnectionError: for a tfds dataset not prepared in `data_dir` when
            there is no network (in seconds, naming `data_dir`).
        ImportError: if scikit-learn (digits), tensorflow-datasets (tfds) or
            TensorFlow (folders, tfds) is missing.

    Example:

    >>> from keras_recipes import datasets
    >>> data = datasets.load("digits")
    >>> data.input_shape, data.num_classes, data.streamed
    ((64,), 10, False)
    """
    if not isinstance(name, (str, pathlib.Path)):
        v.fail("name", name, "a dataset name or a path to a folder of images or a .npz / .csv "
               "file", error=TypeError)
    v.check_number("validation_split", validation_split, low=0, high=1,
                   low_inclusive=False, high_inclusive=False)
    v.check_number("test_split", test_split, low=0, high=1, low_inclusive=False,
                   high_inclusive=False)
    v.check_seed(seed, allow_none=False)
    v.check_bool("standardize", standardize)
    if whiten is not None:
        whiten = v.check_choice("whiten", whiten, statistics.WHITENING)
    task = v.check_choice("task", task, _labels.TASKS)
    v.check_int("max_train_samples", max_train_samples, min_value=1, allow_none=True)
    v.check_int("batch_size", batch_size, min_value=1)
    color_mode = v.check_choice("color_mode", color_mode, COLOR_MODES)
    if image_size is not None:
        if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
                or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                           for s in image_size)):
            v.fail("image_size", image_size, "None or a pair of positive integers, e.g. [96, 96]")
        image_size = tuple(image_size)

    source, name = _read(name, label, data_dir, image_size, color_mode)
    parts = source.parts
    labels = np.concatenate([part.y for part in parts.values()])
    num_classes, convert = _labels.resolve_task(labels, task, repr(name),
                                                num_classes=source.num_classes)
    statistics.check_whitening(whiten, source.sample_shape)
    chosen = _choose(parts, num_classes is not None, validation_split, test_split, seed,
                     max_train_samples)
    preprocessing = _preprocessing(parts, chosen["train"], source.sample_shape,
                                   statistics.preprocessing_kind(standardize, whiten))
    splits = {}
    for split, (part_name, indices) in chosen.items():
        part = parts[part_name]
        y = convert(part.y[indices])
        if part.x is not None:
            splits[split] = Split(y, x=preprocessing.apply(part.x[indices]))
        else:
            splits[split] = Split(y, stream=functools.partial(part.stream, indices))
    return DatasetSplits(name, splits, num_classes=num_classes, preprocessing=preprocessing,
                         batch_size=batch_size, seed=seed, class_names=source.class_names,
                         image_size=source.image_size)


def _read(name, label, data_dir, image_size, color_mode):
    """`(source, name)`: the source `name` names, read (or opened, when streamed)."""
    text = str(name)
    path = pathlib.Path(text).expanduser()
    if path.suffix.lower() in FILE_SUFFIXES:
        return read_file(path, label), text
    kind = ("a folder of images" if path.is_dir() else "the digits"
            if text.lower() in _BUNDLED else "a TensorFlow Datasets name")
    if label is not None:
        v.fail("label", label, f"None for {kind}", hint="(it names the label column of a "
               ".csv file)")
    if color_mode != "rgb" and not path.is_dir():
        v.fail("color_mode", color_mode, f"'rgb' for {kind}", hint="(it sets the channels of "
               "a folder's images)")
    if path.is_dir():
        return read_folder(path, image_size, color_mode), text
    if text.lower() in _BUNDLED:
        return read_digits(), text.lower()
    if isinstance(name, pathlib.Path) or text.startswith((".", "~", "/")) or "\\" in text \
            or text.count("/") > 1:
        v.fail("name", text, "an existing folder of images, a .npz / .csv file, 'digits' or a "
               "TensorFlow Datasets name", hint="No such folder")
    bundled_hint = v.did_you_mean(text.lower(), {n: n for n in _BUNDLED})
    return read_tfds(text, data_dir, image_size, bundled_hint), text


def _choose(parts, classification, validation_split, test_split, seed, max_train_samples):
    """The samples of each split: `{split: (part, sorted indices into that part)}`."""
    for part_name, part in parts.items():
        if len(part.y) == 0:
            v.fail("name", part_name, "a dataset whose splits hold samples",
                   hint=f"Its {part_name} split is empty")
    rng = np.random.default_rng(seed)
    train = np.arange(len(parts["train"].y))
    y = parts["train"].y
    chosen = {}
    # The test split first, then the validation split, each carved from what is left of
    # the training split when the source does not provide it.
    for split, fraction in (("test", test_split), ("validation", validation_split)):
        if split in parts:
            chosen[split] = (split, np.arange(len(parts[split].y)))
        else:
            kept, held = _labels.carve(y[train], fraction, rng, classification,
                                       f"{split}_split")
            train, chosen[split] = train[kept], ("train", train[held])
    if max_train_samples is not None:
        train = train[_labels.stratified_sample(y[train], max_train_samples, rng,
                                                classification)]
    chosen["train"] = ("train", train)
    return {split: chosen[split] for split in ("train", "validation", "test")}


def _preprocessing(parts, train, sample_shape, kind):
    """The `Preprocessing` of `kind` from the training split, read once."""
    if kind == "none":
        return statistics.Preprocessing.from_moments("none", sample_shape)
    moments = statistics.RunningMoments(covariance=kind != "standardize")
    part_name, indices = train
    part = parts[part_name]
    if part.x is not None:
        for start in range(0, len(indices), _CHUNK):
            moments.update(part.x[indices[start:start + _CHUNK]])
    else:
        for x, _ in part.stream(indices, None).batch(_STATISTICS_BATCH).as_numpy_iterator():
            moments.update(x)
    return statistics.Preprocessing.from_moments(kind, sample_shape, moments)
