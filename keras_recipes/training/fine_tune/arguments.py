"""`fine_tune`'s argument checks, written once: `fine_tune` runs them at its entry, and the
registry runs the part that needs no model on a config's `fit` section; and the recipe
its phases train with."""

from __future__ import annotations

import keras

from keras_recipes import _validation as v
from keras_recipes.recipe import Recipe
from keras_recipes.recipe._optimizers import OPTIMIZERS, optimizer_name
from keras_recipes.training.fine_tune.phase_optimizers import check_multi_optimizer
from keras_recipes.training.fine_tune.selection import check_unfreeze, find_base, select_layers

__all__ = [
    "DEPRECATED",
    "check_callbacks",
    "check_fine_tune_arguments",
    "check_model",
    "fit_data_arguments",
    "phases_recipe",
]

# `fine_tune`'s arguments of the previous release that the recipe now holds: passed, they
# change the recipe both phases train with (with a DeprecationWarning).
DEPRECATED = ("optimizer", "one_cycle", "clipnorm", "backup_dir", "distribution")


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
                              learning_rate=None, steps_per_epoch=None, base=None):
    """Checks `fine_tune`'s arguments that are not data, callbacks or the recipe.

    Args:
        head_epochs, epochs, unfreeze, fine_tune_learning_rate, discriminative_factor,
        discriminative_groups, batch_size, learning_rate, steps_per_epoch: as
            `fine_tune`'s.
        base: `keras.Model` or None, the base of the model; None checks what can be
            checked without it (a config's `fit` section, before the model exists):
            `unfreeze` is then not checked against the base's layers.

    Returns:
        list of the base's layers phase 2 unfreezes, or None without a `base`.

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
    v.check_number("discriminative_factor", discriminative_factor, low=0, high=1,
                   low_inclusive=False, high_inclusive=False, allow_none=True)
    v.check_int("discriminative_groups", discriminative_groups, min_value=1)
    check_multi_optimizer(discriminative_factor)
    v.check_int("batch_size", batch_size, min_value=1, allow_none=True)
    v.check_int("steps_per_epoch", steps_per_epoch, min_value=1, allow_none=True)
    return selected


def phases_recipe(model, recipe, deprecated):
    """The recipe both phases of `fine_tune` train with, each at its own learning rate.

    `recipe`, else the model's own (`model.recipe`), else -- for a model compiled
    without one -- the 1cycle on an optimizer of the compiled one's kind (Adam when
    it is not one of the recipes') without early stopping. A new phase needs a new
    optimizer: a recipe holding an optimizer instance trains its phases with a
    fresh optimizer of that kind on the 1cycle (or at the constant rate that
    `schedule="plateau"` lowers). `deprecated` holds the arguments of `DEPRECATED`
    that were passed; each changes the recipe as its option would.

    Raises:
        TypeError: for a `recipe` that is not a `keras_recipes.Recipe`.
        ValueError, TypeError: for a deprecated argument the recipe refuses.
    """
    if recipe is not None and not isinstance(recipe, Recipe):
        v.fail("recipe", recipe, "a keras_recipes.Recipe or None", error=TypeError)
    if recipe is None:
        recipe = getattr(model, "recipe", None)
    if recipe is None:
        recipe = Recipe(optimizer=optimizer_name(model.optimizer) or "adam",
                        early_stopping_patience=None)
    if not isinstance(recipe.optimizer, str):
        recipe = recipe.replace(
            optimizer=recipe.named_optimizer or "adam",
            schedule="plateau" if recipe.schedule == "plateau" else "one_cycle")
    if not deprecated:
        return recipe
    v.warn_deprecated(f"fine_tune({', '.join(sorted(deprecated))}=...) is deprecated: pass "
                      "recipe=model.recipe.replace(...) (or the model's factory the option)")
    changes = dict(deprecated)
    if "optimizer" in changes:
        name = changes["optimizer"]
        if name is None:
            changes.pop("optimizer")
        elif not isinstance(name, str):
            v.fail("optimizer", name, "None or an optimizer name ("
                   + ", ".join(repr(n) for n in OPTIMIZERS) + ")", error=TypeError)
    one_cycle = changes.pop("one_cycle", "auto")
    if one_cycle != "auto":
        v.check_bool("one_cycle", one_cycle)
        changes["schedule"] = "one_cycle" if one_cycle else "constant"
    changes.pop("distribution", None)  # the model's own; checked by `distribution_scope`
    return recipe.replace(**changes)


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
