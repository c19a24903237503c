"""The callbacks of one `fit` under a recipe, in the order they must run."""

from __future__ import annotations

import keras

from keras_recipes import _keras_internals as internals
from keras_recipes.callbacks.one_cycle_span import OneCycleSpan
from keras_recipes.callbacks.resumable import (
    Resumable,
    ResumableEarlyStopping,
    ResumableReduceLROnPlateau,
)
from keras_recipes.callbacks.stop_on_nan import StopOnNaN
from keras_recipes.optimizers.introspection import one_cycle_schedules
from keras_recipes.recipe._state import RecipeState

__all__ = ["PLATEAU_FACTOR", "PLATEAU_PATIENCE", "check_plateau_callbacks", "fit_callbacks",
           "watches_batches"]

# `schedule="plateau"`: the chapter's performance scheduling, as in its example.
PLATEAU_FACTOR = 0.5
PLATEAU_PATIENCE = 5

_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end",
                "on_test_batch_begin", "on_test_batch_end")


def fit_callbacks(recipe, model, callbacks=None, *, has_validation=False, initial_epoch=0,
                  epochs=1):
    """Your callbacks, then the recipe's (see `Recipe.callbacks`).

    The order: yours first, so that what they record of an epoch is written before
    the epoch is backed up; then `ReduceLROnPlateau` (`schedule="plateau"`), early
    stopping (with validation data and a patience; with a 1cycle from half the
    epochs on, since the validation loss rises while the rate is high), the NaN stop;
    then the `RecipeState` that backs up and restores all their state, after them so
    that it saves what they made of an epoch and restores what they reset at the
    start; last the 1cycle span, sized once the state (and the epoch a resumed run
    starts at) is restored. A callback of yours of the same kind (`EarlyStopping`,
    `ReduceLROnPlateau`, `BackupAndRestore`, `TerminateOnNaN`) replaces the
    recipe's.
    """
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = callbacks.callbacks
    callbacks = list(callbacks or [])
    check_plateau_callbacks(model.optimizer, callbacks)

    def has(kind):
        return any(isinstance(c, kind) for c in callbacks)

    own = []
    if recipe.schedule == "plateau" and not has(keras.callbacks.ReduceLROnPlateau):
        own.append(ResumableReduceLROnPlateau(
            monitor="val_loss" if has_validation else "loss", factor=PLATEAU_FACTOR,
            patience=PLATEAU_PATIENCE))
    if (has_validation and recipe.early_stopping_patience is not None
            and not has(keras.callbacks.EarlyStopping)):
        cycles = model.optimizer is not None and bool(one_cycle_schedules(model.optimizer))
        own.append(ResumableEarlyStopping(
            monitor="val_loss", patience=recipe.early_stopping_patience,
            restore_best_weights=True, start_from_epoch=epochs // 2 if cycles else 0))
    if not has(keras.callbacks.TerminateOnNaN) and not has(StopOnNaN):
        own.append(StopOnNaN())
    backup_dir = None if has(keras.callbacks.BackupAndRestore) else recipe.backup_dir
    parts = [c for c in callbacks + own if isinstance(c, Resumable)]
    own.append(RecipeState(parts, backup_dir))
    if recipe.stretches_one_cycle and not has(OneCycleSpan):
        own.append(OneCycleSpan(initial_epoch=initial_epoch))
    return callbacks + own


def check_plateau_callbacks(optimizer, callbacks):
    """Refuses a `ReduceLROnPlateau` for an optimizer whose learning rate is a schedule.

    Keras would fail only at the first reduction, with a TypeError from inside the
    optimizer's `learning_rate` setter.
    """
    if optimizer is None or not any(isinstance(c, keras.callbacks.ReduceLROnPlateau)
                                    for c in callbacks):
        return
    for inner in internals.component_optimizers(optimizer):
        schedule = internals.learning_rate_object(inner)
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError(
                "`keras.callbacks.ReduceLROnPlateau` cannot be used with this model: its "
                f"optimizer's learning rate follows a schedule ({type(schedule).__name__}), "
                "which ReduceLROnPlateau cannot lower (Keras would fail with a TypeError at its "
                'first reduction). Build the model with schedule="plateau" (the recipe then '
                "adds ReduceLROnPlateau itself, on a constant learning rate), or leave the "
                "callback out.")


def watches_batches(callback):
    """Whether `callback` acts on single batches of `fit` (overrides a batch hook).

    Keras's checkpointing callbacks saving once an epoch do not, although they
    define a batch hook, nor does its `TensorBoard` writing once an epoch
    (`update_freq="epoch"`, its default) without profiling: its batch hooks then
    count calls and write nothing but the graph, once.
    """
    epoch_savers = (keras.callbacks.BackupAndRestore, keras.callbacks.ModelCheckpoint)
    if isinstance(callback, epoch_savers) and callback.save_freq == "epoch":
        return False
    if (isinstance(callback, keras.callbacks.TensorBoard) and callback.update_freq == "epoch"
            and not internals.tensorboard_profiles(callback)):
        return False
    if isinstance(callback, keras.callbacks.ProgbarLogger):  # fine with a count per call
        return False
    for hook in _BATCH_HOOKS:
        method = getattr(callback, hook, None)
        if getattr(method, "__func__", method) is not getattr(keras.callbacks.Callback, hook):
            return True
    return False
