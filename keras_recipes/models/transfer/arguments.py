"""`fine_tune`'s argument checks, written once: `fine_tune` runs them at its entry, and the
registry runs the part that needs no model on a config's `fit` section."""

from __future__ import annotations

import dataclasses

import keras

from keras_recipes import _validation as v
from keras_recipes.models import _optimizer_choice as optimizer_choice
from keras_recipes.models.transfer.optimizers import check_multi_optimizer
from keras_recipes.models.transfer.selection import check_unfreeze, find_base, select_layers

__all__ = [
    "FineTuneSettings",
    "check_callbacks",
    "check_fine_tune_arguments",
    "check_model",
    "fit_data_arguments",
]


@dataclasses.dataclass(frozen=True)
class FineTuneSettings:
    """`fine_tune`'s settings once checked.

    Attributes:
        selected: list of the base's layers phase 2 unfreezes (None without a base).
        kind: str or None, the optimizer name given (None: the compiled one's kind).
        one_cycle: bool, whether the new optimizers follow a 1cycle.
    """

    selected: list | None
    kind: str | None
    one_cycle: bool


def check_model(model):
    """Checks that `model` is a compiled transfer model; returns its base."""
    if not isinstance(model, keras.Model):
        v.fail("model", model, "a keras.Model built by `build_transfer_model`", error=TypeError)
    if not model.compiled or model.optimizer is None:
        v.fail("model", model.name, "a compiled model",
               hint="(compile it, or build it with `build_transfer_model`)")
    return find_base(model)


def check_fine_tune_arguments(*, head_epochs, epochs, unfreeze, fine_tune_learning_rate,
                              discriminative_factor, discriminative_groups, batch_size,
                              learning_rate=None, optimizer=None, one_cycle="auto",
                              clipnorm=None, steps_per_epoch=None, base=None):
    """Checks `fine_tune`'s arguments that are not data, callbacks or folders.

    Args:
        head_epochs, epochs, unfreeze, fine_tune_learning_rate, discriminative_factor,
        discriminative_groups, batch_size, learning_rate, optimizer, one_cycle,
        clipnorm, steps_per_epoch: as `fine_tune`'s.
        base: `keras.Model` or None, the base of the model; None checks what can be
            checked without it (a config's `fit` section, before the model exists):
            `unfreeze` is then not checked against the base's layers.

    Returns:
        `FineTuneSettings`.

    Raises:
        ValueError, TypeError: with the message `fine_tune` gives.
    """
    v.check_int("head_epochs", head_epochs, min_value=0)
    v.check_int("epochs", epochs, min_value=0)
    if head_epochs == 0 and epochs == 0:
        v.fail("epochs", epochs, "positive when head_epochs=0", hint="(nothing to train)")
    if base is None:
        selected = None
        check_unfreeze(unfreeze)
    else:
        selected = select_layers(base, unfreeze)
    v.check_number("learning_rate", learning_rate, low=0, low_inclusive=False, allow_none=True)
    v.check_number("fine_tune_learning_rate", fine_tune_learning_rate, low=0,
                   low_inclusive=False, allow_none=True)
    kind = None
    if optimizer is not None:
        if not isinstance(optimizer, str):
            v.fail("optimizer", optimizer,
                   "None or an optimizer name ("
                   + ", ".join(repr(n) for n in optimizer_choice.OPTIMIZERS) + ")",
                   error=TypeError)
        kind = v.check_choice("optimizer", optimizer, optimizer_choice.OPTIMIZERS)
    if one_cycle != "auto":
        v.check_bool("one_cycle", one_cycle)
    v.check_number("clipnorm", clipnorm, low=0, low_inclusive=False, allow_none=True)
    v.check_number("discriminative_factor", discriminative_factor, low=0, high=1,
                   low_inclusive=False, high_inclusive=False, allow_none=True)
    v.check_int("discriminative_groups", discriminative_groups, min_value=1)
    check_multi_optimizer(discriminative_factor)
    v.check_int("batch_size", batch_size, min_value=1, allow_none=True)
    v.check_int("steps_per_epoch", steps_per_epoch, min_value=1, allow_none=True)
    return FineTuneSettings(selected, kind, one_cycle is True or one_cycle == "auto")


def fit_data_arguments(train_data, batch_size):
    """`fit`'s keyword arguments for `train_data`."""
    if isinstance(train_data, (tuple, list)):
        if len(train_data) not in (2, 3):
            v.fail("train_data", v.Described(f"<{type(train_data).__name__} of {len(train_data)} "
                                             "items>"),
                   "a tuple (x, y) or (x, y, sample_weight), or a dataset")
        data = dict(zip(("x", "y", "sample_weight"), train_data))
        data["batch_size"] = batch_size
        return data
    if train_data is None or isinstance(train_data, (str, bytes, int, float, dict)) or hasattr(
            train_data, "shape"):
        shown = (v.Described(f"<array of shape {tuple(train_data.shape)}>")
                 if hasattr(train_data, "shape") else train_data)
        v.fail("train_data", shown, "a tuple (x, y) of arrays or a dataset yielding (x, y) "
               "batches (tf.data.Dataset, keras.utils.PyDataset)",
               hint="(labels are needed: pass (x, y))", error=TypeError)
    if batch_size is not None:
        v.fail("batch_size", batch_size, "None when `train_data` is a dataset",
               hint="(a dataset is batched already)")
    # Keras warns that `shuffle=True` (its default) is ignored for a dataset.
    return {"x": train_data, "shuffle": False}


def check_callbacks(callbacks):
    """The user's callbacks as a list; a `BackupAndRestore` is refused."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)) or not all(
            isinstance(c, keras.callbacks.Callback) for c in callbacks):
        v.fail("callbacks", callbacks, "a list of keras.callbacks.Callback or None",
               error=TypeError)
    if any(isinstance(c, keras.callbacks.BackupAndRestore) for c in callbacks):
        shown = v.Described("[" + ", ".join(type(c).__name__ for c in callbacks) + "]")
        v.fail("callbacks", shown, "a list without BackupAndRestore",
               hint="(one backup for both phases would restore phase 2's state into phase 1; "
               "pass `backup_dir=` instead, which gives each phase its own)")
    return list(callbacks)
