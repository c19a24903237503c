"""Fits a recipe's schedule (the 1cycle, a decay) to the steps of the `fit` call that runs it."""

from __future__ import annotations

import keras

from keras_recipes import _keras_internals as internals
from keras_recipes.optimizers.span import baked_in, resize, span_schedules_of

__all__ = ["OneCycleSpan"]


class OneCycleSpan(keras.callbacks.Callback):
    """Stretches the optimizer's schedules over exactly the steps of this `fit`.

    The schedules are those of `keras_recipes.schedules`: the 1cycle (learning rate
    and momentum) and the decays (`WarmupCosineDecay`, `ExponentialDecay`,
    `PowerDecay`, `PiecewiseConstantDecay`). Acts once, in `on_train_begin`, never
    per batch: it reads the steps per epoch and epochs that Keras computed for
    this call and sets each schedule's `total_steps` and `start_step` (so that a
    fresh `fit` runs one whole schedule and a resumed one, with `initial_epoch` or
    `BackupAndRestore`, continues the same one). With `swa_epochs`, the schedules
    hold the values they have where the last `swa_epochs` epochs begin (their
    `hold_step`): stochastic weight averaging runs at a constant rate. The
    optimizers of `keras_recipes.optimizers` keep the span in an optimizer
    variable that the compiled train step reads, so a new `fit` does not trace or
    compile the step again; only a schedule followed by another optimizer (which
    bakes the span in as a constant) makes it rebuild the train function. The
    optimizers of a `keras.optimizers.MultiOptimizer` (discriminative learning
    rates) are each stretched the same way.

    Args:
        initial_epoch: int, the `initial_epoch` given to `fit`.
        swa_epochs: int or None, the recipe's `swa_epochs`. Defaults to `None`.
    """

    def __init__(self, initial_epoch=0, swa_epochs=None):
        super().__init__()
        self.initial_epoch = initial_epoch
        self.swa_epochs = swa_epochs

    def on_train_begin(self, logs=None):
        steps = self.params.get("steps")
        if steps is None:
            raise ValueError(
                "The recipe's schedule needs to know how many steps this `fit` runs, but the "
                "data has no known length. Pass `steps_per_epoch=` to `fit`, or build the "
                "model with an explicit `total_steps=`."
            )
        initial_epoch = internals.initial_epoch(self.model) or self.initial_epoch
        epochs = self.params["epochs"]
        total_steps = steps * epochs
        hold_step = None
        if self.swa_epochs:
            hold_step = steps * max(epochs - self.swa_epochs, 0)
        rebuild = False
        for optimizer, iterations, schedule in span_schedules_of(self.model):
            start_step = max(iterations - steps * initial_epoch, 0)
            span = (total_steps, start_step, hold_step)
            changed = (schedule.total_steps, schedule.start_step, schedule.hold_step) != span
            # Always written: `BackupAndRestore` may just have loaded another span.
            resize(schedule, *span)
            rebuild |= changed and baked_in(optimizer, schedule)
        if rebuild:
            self.model.make_train_function(force=True)
