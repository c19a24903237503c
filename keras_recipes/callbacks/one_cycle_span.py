"""Fits a recipe's 1cycle to the steps of the `fit` call that runs it."""

from __future__ import annotations

import contextlib

import keras

from keras_recipes import _keras_internals as internals
from keras_recipes.optimizers.introspection import own_one_cycle_schedules

__all__ = ["OneCycleSpan", "one_whole_cycle", "resize"]


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
        baked_in = False
        for optimizer, iterations, schedule in _one_cycle_schedules(self.model):
            start_step = max(iterations - steps * initial_epoch, 0)
            changed = (schedule.total_steps, schedule.start_step) != (total_steps, start_step)
            # Always written: `BackupAndRestore` may just have loaded another span.
            resize(schedule, total_steps, start_step)
            baked_in |= changed and _baked_in(optimizer, schedule)
        if baked_in:
            self.model.make_train_function(force=True)


def _one_cycle_schedules(model):
    """`(optimizer, its iterations, schedule)` for each 1cycle schedule of `model`'s
    optimizer; each optimizer of a MultiOptimizer counts its own steps."""
    for optimizer in internals.component_optimizers(model.optimizer):
        iterations = int(keras.ops.convert_to_numpy(optimizer.iterations))
        for schedule in own_one_cycle_schedules(optimizer):
            yield optimizer, iterations, schedule


def _baked_in(optimizer, schedule):
    """Whether the built train step holds `schedule`'s span as a constant (a 1cycle
    followed by another optimizer than ours), so that a new span needs a new step."""
    return optimizer.built and schedule.state is None


def resize(schedule, total_steps, start_step):
    """Sets a 1cycle schedule's span, validating it as its constructor would.

    Raises:
        ValueError: when `fit` runs too few steps for every phase of the cycle;
            the schedule is left as it was.
    """
    try:
        schedule.set_span(total_steps, start_step)
    except ValueError as error:
        raise ValueError(
            f"This `fit` runs {total_steps} optimizer steps, too few for the recipe's 1cycle "
            f"(pct_start={schedule.pct_start}): {error} Train for more steps, or build the "
            "model with `one_cycle=False`."
        ) from None


@contextlib.contextmanager
def one_whole_cycle(model, steps):
    """Runs a recipe model's 1cycle whole over the next `steps` steps taken outside `fit`.

    For training steps that no `fit` (and so no `OneCycleSpan`) announces, such as
    `diagnose`'s sanity training: they see the rates a `fit` of that many steps would
    run, not wherever the last `fit` left the cycle (after one, annealed to about
    1e-8, where no loss falls). The spans (and a train function rebuilt for them) are
    restored on exit; the caller restores the optimizer's variables. A model with a fixed
    `total_steps`, or a span too short for the cycle's phases, is left as it is.
    """
    saved, baked_in = [], False
    if getattr(model, "auto_one_cycle", False):
        for optimizer, iterations, schedule in _one_cycle_schedules(model):
            span = (schedule.total_steps, schedule.start_step)
            try:
                schedule.set_span(steps, iterations)
            except ValueError:
                continue
            saved.append((schedule, span))
            baked_in |= _baked_in(optimizer, schedule)
    train_function = model.train_function
    if baked_in:
        model.make_train_function(force=True)
    try:
        yield
    finally:
        for schedule, span in saved:
            schedule.set_span(*span)
        model.train_function = train_function
