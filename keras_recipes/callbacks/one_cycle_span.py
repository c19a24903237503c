"""Fits a recipe's 1cycle to the steps of the `fit` call that runs it."""

from __future__ import annotations

import keras

from keras_recipes import _keras_internals as internals
from keras_recipes.optimizers.span import baked_in, one_cycle_schedules_of, resize

__all__ = ["OneCycleSpan"]


class OneCycleSpan(keras.callbacks.Callback):
    """Stretches the optimizer's 1cycle schedules over exactly the steps of this `fit`.

    Acts once, in `on_train_begin`, never per batch: it reads the steps per epoch
    and epochs that Keras computed for this call and sets each schedule's
    `total_steps` and `start_step` (so that a fresh `fit` runs one whole cycle and
    a resumed one, with `initial_epoch` or `BackupAndRestore`, continues the same
    cycle). The optimizers of `keras_recipes.optimizers` keep the span in an
    optimizer variable that the compiled train step reads, so a new `fit` does
    not trace or compile the step again; only a 1cycle followed by another
    optimizer (which bakes the span in as a constant) makes it rebuild the train
    function. The optimizers of a `keras.optimizers.MultiOptimizer`
    (discriminative learning rates) are each stretched the same way.

    Args:
        initial_epoch: int, the `initial_epoch` given to `fit`.
    """

    def __init__(self, initial_epoch=0):
        super().__init__()
        self.initial_epoch = initial_epoch

    def on_train_begin(self, logs=None):
        steps = self.params.get("steps")
        if steps is None:
            raise ValueError(
                "The recipe's 1cycle needs to know how many steps this `fit` runs, but the "
                "data has no known length. Pass `steps_per_epoch=` to `fit`, or build the "
                "model with an explicit `total_steps=`."
            )
        initial_epoch = internals.initial_epoch(self.model) or self.initial_epoch
        total_steps = steps * self.params["epochs"]
        rebuild = False
        for optimizer, iterations, schedule in one_cycle_schedules_of(self.model):
            start_step = max(iterations - steps * initial_epoch, 0)
            changed = (schedule.total_steps, schedule.start_step) != (total_steps, start_step)
            # Always written: `BackupAndRestore` may just have loaded another span.
            resize(schedule, total_steps, start_step)
            rebuild |= changed and baked_in(optimizer, schedule)
        if rebuild:
            self.model.make_train_function(force=True)
