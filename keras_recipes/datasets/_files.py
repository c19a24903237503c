"""The sources held in memory: the bundled digits, `.npz` and `.csv` files."""

from __future__ import annotations

import pathlib

import numpy as np

from keras_recipes import _validation as v
from keras_recipes.datasets._source import Part, Source

__all__ = ["FILE_SUFFIXES", "LABEL_COLUMNS", "read_digits", "read_file"]

FILE_SUFFIXES = (".npz", ".csv")
# A .csv file's label column, when `label` does not name it: the first of these in its header.
LABEL_COLUMNS = ("label", "labels", "class", "target", "y")
_NPZ_SPLITS = {"train": ("x_train", "y_train"), "validation": ("x_val", "y_val"),
               "test": ("x_test", "y_test")}


def read_digits():
    """scikit-learn's bundled 8x8 digits: 1,797 samples of 64 features, ten classes."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            'The "digits" dataset needs scikit-learn: pip install "keras-recipes[cli]"'
        ) from error
    x, y = load_digits(return_X_y=True)
    return Source({"train": Part(y.astype("int64"), x.astype("float32"))}, (64,),
                  num_classes=10, class_names=tuple(str(i) for i in range(10)))


def read_file(path, label):
    """A `.npz` or `.csv` file as a `Source` (inputs in memory)."""
    path = pathlib.Path(path)
    if not path.is_file():
        v.fail("name", str(path), "an existing .npz or .csv file", hint="The file was not found")
    if path.suffix.lower() == ".npz":
        if label is not None:
            v.fail("label", label, "None for a .npz file",
                   hint="(its labels are its arrays `y_train`, ... or `y`)")
        parts = _read_npz(path)
    else:
        parts = {"train": _read_csv(path, label)}
    parts = {split: _checked(x, y, f"{path} ({split})") for split, (x, y) in parts.items()}
    shapes = {part.x.shape[1:] for part in parts.values()}
    if len(shapes) > 1:
        v.fail("name", str(path), "a file whose splits have samples of one shape",
               hint=f"Its splits have shapes {sorted(shapes)}")
    return Source(parts, shapes.pop())


def _read_npz(path):
    with np.load(path, allow_pickle=False) as archive:
        arrays = dict(archive)
    parts = {split: (arrays[x_key], arrays[y_key])
             for split, (x_key, y_key) in _NPZ_SPLITS.items()
             if x_key in arrays and y_key in arrays}
    if not parts and "x" in arrays and "y" in arrays:
        parts["train"] = (arrays["x"], arrays["y"])
    if "train" not in parts:
        v.fail("name", str(path), "a .npz file with arrays `x_train` and `y_train` (or `x` "
               "and `y`)", hint=f"It has {sorted(arrays)}")
    return parts


def _read_csv(path, label):
    import csv

    if label is not None and not isinstance(label, str):
        v.fail("label", label, "None or the name of the label column (a str)", error=TypeError)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        v.fail("name", str(path), "a .csv file with a header row and at least one data row")
    header, body = [name.strip() for name in rows[0]], rows[1:]
    column = _label_column(path, header, label)
    try:
        table = np.array(body, dtype="float64")
    except ValueError as error:
        raise ValueError(f"{path}: every value must be a number ({error}).") from None
    if table.ndim != 2 or table.shape[1] < 2:
        v.fail("name", str(path), "a .csv file with a label column and at least one feature "
               "column, as many values in each row as in the header")
    return np.delete(table, column, axis=1).astype("float32"), table[:, column]


def _label_column(path, header, label):
    if label is not None:
        if label in header:
            return header.index(label)
        v.fail("label", label, f"the name of a column of {path.name}",
               hint=f"Its columns: {', '.join(header)}. "
               f"{v.did_you_mean(label.lower(), {n.lower(): n for n in header})}".rstrip())
    lowered = [name.lower() for name in header]
    for name in LABEL_COLUMNS:
        if name in lowered:
            return lowered.index(name)
    v.fail("label", label, f"the name of the label column of {path.name}, which has none of "
           f"the usual names ({', '.join(LABEL_COLUMNS)})",
           hint=f"Its columns: {', '.join(header)}")


def _checked(x, y, where):
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"{where}: {len(x)} inputs but {len(y)} labels.")
    if len(x) == 0:
        raise ValueError(f"{where}: no samples.")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise ValueError(f"{where}: inputs must be finite numbers (found NaN, Inf or text).")
    if y.ndim not in (1, 2):
        raise ValueError(f"{where}: targets must be one number (or one row of numbers) per "
                         f"sample (found shape {y.shape}).")
    return Part(y, x.astype("float32"))
