"""What the targets of a dataset mean, and drawing samples from them.

The task (classes or numbers) is read from the source where it declares it (an image
folder's sub-folders, a tfds `ClassLabel`, the bundled digits) and otherwise guessed only
where that is safe; splits and subsets are drawn stratified for classification.
"""

from __future__ import annotations

import numpy as np

from keras_recipes import _validation as v

__all__ = ["MAX_GUESSED_CLASSES", "TASKS", "carve", "resolve_task", "stratified_sample"]

TASKS = ("auto", "classification", "regression")
# With task="auto", integer-valued targets are class labels only when they are 0, 1, ...,
# K - 1, each present, with 2 <= K <= MAX_GUESSED_CLASSES; anything else (ages 18-80,
# counts from 1, a thousand distinct values) is refused until `task` says which it is.
MAX_GUESSED_CLASSES = 32


def resolve_task(y, task, where, *, num_classes=None):
    """The task of targets `y`, and the targets in their dtype for it.

    Args:
        y: numpy array of every target of the source (all splits).
        task: `"auto"`, `"classification"` or `"regression"` (checked).
        where: str, the source's name for messages.
        num_classes: int or None, the number of classes the source declares (a folder's
            sub-folders, a tfds `ClassLabel`); None when it declares none.

    Returns:
        `(num_classes, convert)`: num_classes is None for regression; `convert(y)` casts
        one split's targets (int64 class labels or float32 numbers).

    Raises:
        ValueError: for targets that are not numbers, labels a classification cannot
            use, or integer targets that could be either task with `task="auto"`.
    """
    task = v.check_choice("task", task, TASKS)
    if not np.issubdtype(y.dtype, np.number):
        v.fail("name", where, "a dataset whose targets are numbers",
               hint=f"Its targets have dtype {y.dtype}")
    if not np.all(np.isfinite(y)):
        v.fail("name", where, "a dataset whose targets are finite numbers",
               hint="Its targets include NaN or Inf")
    if task == "regression" or (y.ndim > 1 and task == "auto"):  # rows of numbers
        return None, lambda values: values.astype("float32")
    if y.ndim > 1:
        v.fail("task", task, "'regression' for targets with several numbers per sample",
               hint=f"The targets of {where} have shape {y.shape}")
    if num_classes is not None:  # declared by the source
        return num_classes, lambda values: values.astype("int64")
    whole = bool(np.all(y == np.round(y)))
    if task == "auto":
        if not whole:
            return None, lambda values: values.astype("float32")
        if not _clearly_categorical(y):
            distinct = np.unique(y)
            v.fail("task", task, "'classification' or 'regression'",
                   hint=f"The targets of {where} are whole numbers from {_number(y.min())} to "
                   f"{_number(y.max())} ({len(distinct)} distinct values): they may be "
                   "measurements (ages, counts) or class labels, and only class labels "
                   f"0, 1, ..., K-1 (K <= {MAX_GUESSED_CLASSES}, each present) are taken as "
                   "classes without being told")
    elif not whole:
        v.fail("task", task, "'regression' for targets that are not whole numbers",
               hint=f"The targets of {where} include {_number(y[y != np.round(y)][0])}")
    if y.min() < 0:
        v.fail("name", where, "a dataset whose class labels are integers in [0, num_classes)",
               hint=f"Its labels include {_number(y.min())}")
    return int(y.max()) + 1, lambda values: values.astype("int64")


def _clearly_categorical(y):
    distinct = np.unique(y)
    return (2 <= len(distinct) <= MAX_GUESSED_CLASSES
            and np.array_equal(distinct, np.arange(len(distinct))))


def _number(value):
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def carve(y, fraction, rng, classification, name):
    """Indices of `y` split in two: `(kept, held)`, `held` about `fraction` of them.

    Stratified for classification: `fraction` of each class is held. Both are sorted.

    Raises:
        ValueError: if one side would be empty, naming the fraction's argument `name`.
    """
    if classification:
        held = []
        for label in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == label))
            held.extend(members[: int(round(fraction * len(members)))])
        held = np.sort(np.array(held, dtype="int64"))
    else:
        held = np.sort(rng.permutation(len(y))[: int(round(fraction * len(y)))])
    if len(held) == 0 or len(held) == len(y):
        v.fail(name, fraction, f"a fraction that leaves samples on both sides of the split of "
               f"{len(y)} samples", hint=f"(it holds out {len(held)}"
               + (": round(fraction x size) of each class" if classification else "")
               + "); use more samples or another fraction")
    return np.setdiff1d(np.arange(len(y)), held), held


def stratified_sample(y, count, rng, classification):
    """Sorted indices of `count` samples of `y`, each class in proportion.

    Each class gets its share of `count` rounded by largest remainder, and at least one
    sample when `count` allows; regression targets are sampled at random. A file sorted
    by class thus keeps every class, in the proportions it has.
    """
    if count >= len(y):
        return np.arange(len(y))
    if not classification:
        return np.sort(rng.permutation(len(y))[:count])
    labels, sizes = np.unique(y, return_counts=True)
    quota = sizes * count / len(y)
    shares = np.floor(quota).astype("int64")
    for index in np.argsort(-(quota - shares), kind="stable")[: count - shares.sum()]:
        shares[index] += 1
    if count >= len(labels):  # every class present: take from the largest shares
        for index in np.flatnonzero(shares == 0):
            shares[np.argmax(shares)] -= 1
            shares[index] = 1
    chosen = [rng.permutation(np.flatnonzero(y == label))[:share]
              for label, share in zip(labels, shares)]
    return np.sort(np.concatenate(chosen))
