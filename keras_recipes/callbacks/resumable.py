"""Callbacks whose state between epochs survives a restart: the recipe's backup saves it
with the weights and gives it back to a resumed `fit`."""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["Resumable", "ResumableEarlyStopping", "ResumableReduceLROnPlateau"]


class Resumable:
    """A callback with state that a resumed `fit` must get back.

    Keras's callbacks keep their state on themselves and reset it in
    `on_train_begin`, so a run killed and started again forgets it: early
    stopping waits anew and forgets its best weights, `ReduceLROnPlateau` its
    patience. A `Resumable` callback says what its state is; the recipe's
    backup (`backup_dir=`) saves it after each epoch, once every callback has
    acted on that epoch, and sets it back once every callback has begun the
    resumed `fit`.

    `get_state()` returns a dict of JSON values, or lists of numpy arrays (such
    as weights); `set_state(state)` takes what it returned.
    """

    def get_state(self):
        raise NotImplementedError

    def set_state(self, state):
        raise NotImplementedError


def _number(value):
    return None if value is None else float(value)


def _arrays(weights):
    return None if weights is None else [np.asarray(w) for w in weights]


class ResumableEarlyStopping(Resumable, keras.callbacks.EarlyStopping):
    """Keras's `EarlyStopping`, whose wait, best value, best epoch and best weights
    survive a restart with the recipe's backup.

    The recipes' early stopping (`early_stopping_patience=`). Everything else is
    Keras's; the arguments are `keras.callbacks.EarlyStopping`'s, and
    `until_epoch` (int or None, defaults to `None`): the epochs from that one on
    (counted from 0) are not watched, as `start_from_epoch` leaves out those
    before it (the recipe's `swa_epochs`, whose last epochs are averaged).

    Example:

    >>> from keras_recipes.callbacks import ResumableEarlyStopping
    >>> stopping = ResumableEarlyStopping(patience=3, restore_best_weights=True)
    >>> stopping.get_state()["wait"]
    0
    """

    def __init__(self, *args, until_epoch=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.until_epoch = until_epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.until_epoch is None or epoch < self.until_epoch:
            super().on_epoch_end(epoch, logs)

    def get_state(self):
        return {"wait": int(getattr(self, "wait", 0)),
                "stopped_epoch": int(getattr(self, "stopped_epoch", 0)),
                "best": _number(getattr(self, "best", None)),
                "best_epoch": int(getattr(self, "best_epoch", 0)),
                "best_weights": _arrays(getattr(self, "best_weights", None))}

    def set_state(self, state):
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        weights = state["best_weights"]
        self.best_weights = None if weights is None else list(weights)


class ResumableReduceLROnPlateau(Resumable, keras.callbacks.ReduceLROnPlateau):
    """Keras's `ReduceLROnPlateau`, whose wait, best value and cooldown survive a restart
    with the recipe's backup (the lowered learning rate is in the optimizer's state).

    The recipes' `schedule="plateau"`. Everything else is Keras's; the arguments
    are `keras.callbacks.ReduceLROnPlateau`'s.

    Example:

    >>> from keras_recipes.callbacks import ResumableReduceLROnPlateau
    >>> plateau = ResumableReduceLROnPlateau(factor=0.5, patience=5)
    """

    def get_state(self):
        return {"wait": int(self.wait), "best": _number(self.best),
                "cooldown_counter": int(self.cooldown_counter)}

    def set_state(self, state):
        self.wait, self.best = state["wait"], state["best"]
        self.cooldown_counter = state["cooldown_counter"]
