"""Stops training when an epoch's loss is NaN or infinite, checked once per epoch."""

from __future__ import annotations

import math

import keras

__all__ = ["StopOnNaN"]


class StopOnNaN(keras.callbacks.Callback):
    """Stops `fit` after an epoch whose loss is NaN or infinite.

    Keras's `TerminateOnNaN` checks after every batch, which makes each step
    hand its loss to Python and wait for it: a per-batch synchronisation that
    slows compiled training. Once the loss is NaN the weights are NaN too, so
    finishing the epoch loses nothing but time; this callback checks the
    epoch's loss and stops there.

    Example:

    >>> import keras_recipes
    >>> callback = keras_recipes.callbacks.StopOnNaN()
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"Epoch {epoch + 1}: invalid loss {loss}, stopping training.")
            self.model.stop_training = True
