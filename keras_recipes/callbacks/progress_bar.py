"""Keras's progress bar, counting right when a compiled call runs several batches."""

from __future__ import annotations

import keras

__all__ = ["ChunkedProgbarLogger"]


class ChunkedProgbarLogger(keras.callbacks.ProgbarLogger):
    """`keras.callbacks.ProgbarLogger` for `steps_per_execution > 1`.

    With several batches per compiled call, Keras 3 reports each call's last
    batch index as `start + steps_per_execution - 1`, also for the last call
    of an epoch, which runs fewer batches: 39 batches at 32 per call show
    `64/39`, a bar wider than the line and a negative ETA. This logger caps
    the count at the known number of steps, and when that is unknown (a
    dataset of unknown cardinality) counts training batches with the
    optimizer's `iterations`. It prints exactly what `ProgbarLogger` prints
    otherwise. The recipe models use it in `fit`, `evaluate` and `predict`;
    pass your own `ProgbarLogger` to replace it.

    Example:

    >>> import numpy as np, keras_recipes
    >>> from keras_recipes.callbacks.progress_bar import ChunkedProgbarLogger
    >>> model = keras_recipes.build_default_dnn((4,), 3, num_hidden_layers=1)
    >>> x, y = np.random.rand(100, 4), np.arange(100) % 3
    >>> _ = model.fit(x, y, epochs=1, verbose=0, callbacks=[ChunkedProgbarLogger()])
    """

    def __init__(self):
        super().__init__()
        self._steps = None
        self._first_iteration = 0

    def set_params(self, params):
        super().set_params(params)
        self._steps = params.get("steps")

    def _capped(self, batch):
        return batch if not self._steps else min(batch, self._steps - 1)

    def on_epoch_begin(self, epoch, logs=None):
        if self._steps is None and self.model is not None:
            self._first_iteration = int(self.model.optimizer.iterations)
        super().on_epoch_begin(epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        if self._steps is None and self.model is not None:
            done = int(self.model.optimizer.iterations) - self._first_iteration
            batch = min(batch, max(done - 1, 0))
        super().on_train_batch_end(self._capped(batch), logs)

    def on_test_batch_end(self, batch, logs=None):
        super().on_test_batch_end(self._capped(batch), logs)

    def on_predict_batch_end(self, batch, logs=None):
        super().on_predict_batch_end(self._capped(batch), logs)
