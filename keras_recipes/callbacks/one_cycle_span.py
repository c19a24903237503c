"""Fits a recipe's 1cycle to the steps of the `fit` call that runs it."""

from __future__ import annotations

import keras

# Unwrapping a `LossScaleOptimizer` (a mixed_float16 policy) included, so that the 1cycle
# of a mixed-precision model is stretched too.
from keras_recipes._keras_internals import component_optimizers, is_multi_optimizer  # noqa: F401
from keras_recipes.optimizers.scheduled import raw_hyperparameter
from keras_recipes.schedules.one_cycle import _OneCycleBase


def _own_schedules(optimizer):
    found = [getattr(optimizer, "_learning_rate", None)]
    for name in getattr(optimizer, "_scheduled", ()):
        found.append(raw_hyperparameter(optimizer, name))
    return [s for s in found if isinstance(s, _OneCycleBase)]


def one_cycle_schedules(optimizer):
    """The 1cycle schedules an optimizer follows: learning rates and momentum / beta_1,
    those of each optimizer of a `keras.optimizers.MultiOptimizer` included."""
    return [s for inner in component_optimizers(optimizer) for s in _own_schedules(inner)]


class OneCycleSpan(keras.callbacks.Callback):
    """Stretches the optimizer's 1cycle schedules over exactly the steps of this `fit`.

    Acts once, in `on_train_begin`, never per batch: it reads the steps per epoch
    and epochs that Keras computed for this call, sets each schedule's
    `total_steps` and `start_step` (so that a fresh `fit` runs one whole cycle and
    a resumed one, with `initial_epoch` or `BackupAndRestore`, continues the same
    cycle), and rebuilds the train function when they changed, since the compiled
    step bakes them in as constants. The optimizers of a
    `keras.optimizers.MultiOptimizer` (discriminative learning rates) are each
    stretched the same way.

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
        initial_epoch = self.model._initial_epoch or self.initial_epoch
        total_steps = steps * self.params["epochs"]
        changed = False
        # Each optimizer of a MultiOptimizer counts its own steps.
        for optimizer in component_optimizers(self.model.optimizer):
            iterations = int(keras.ops.convert_to_numpy(optimizer.iterations))
            start_step = max(iterations - steps * initial_epoch, 0)
            for schedule in _own_schedules(optimizer):
                if (schedule.total_steps, schedule.start_step) != (total_steps, start_step):
                    resize(schedule, total_steps, start_step)
                    changed = True
        if changed:
            self.model.make_train_function(force=True)


def resize(schedule, total_steps, start_step):
    """Sets a 1cycle schedule's span, validating it as its constructor would."""
    config = schedule.get_config()
    config.update(total_steps=total_steps, start_step=start_step)
    try:
        resized = type(schedule).from_config(config)
    except ValueError as error:
        raise ValueError(
            f"This `fit` runs {total_steps} optimizer steps, too few for the recipe's 1cycle "
            f"(pct_start={schedule.pct_start}): {error} Train for more steps, or build the "
            "model with `one_cycle=False`."
        ) from None
    schedule.__dict__.update(resized.__dict__)
