"""The span of a model's schedules: which steps of training they stretch over.

The schedules of `keras_recipes.schedules` (the 1cycle and the decays) keep their span
(`total_steps`, `start_step`, `hold_step`) in variables the compiled train step reads;
here it is set for a `fit` (`OneCycleSpan`) or for training steps outside any `fit`
(`one_whole_cycle`, for `diagnose`).
"""

from __future__ import annotations

import contextlib

import keras

from keras_recipes import _keras_internals as internals
from keras_recipes.optimizers.introspection import own_span_schedules

__all__ = ["baked_in", "one_whole_cycle", "resize", "span_schedules_of"]


def span_schedules_of(model):
    """`(optimizer, its iterations, schedule)` for each span schedule (1cycle, decay) of
    `model`'s optimizer; each optimizer of a MultiOptimizer counts its own steps."""
    for optimizer in internals.component_optimizers(model.optimizer):
        iterations = int(keras.ops.convert_to_numpy(optimizer.iterations))
        for schedule in own_span_schedules(optimizer):
            yield optimizer, iterations, schedule


def baked_in(optimizer, schedule):
    """Whether the built train step holds `schedule`'s span as a constant (a schedule
    followed by another optimizer than ours), so that a new span needs a new step."""
    return optimizer.built and schedule.state is None


def resize(schedule, total_steps, start_step, hold_step=None):
    """Sets a span schedule's span, validating it as its constructor would.

    Raises:
        ValueError: when `fit` runs too few steps for every phase of the cycle;
            the schedule is left as it was.
    """
    try:
        schedule.set_span(total_steps, start_step, hold_step)
    except ValueError as error:
        raise ValueError(
            f"This `fit` runs {total_steps} optimizer steps, too few for the recipe's 1cycle "
            f"(pct_start={schedule.pct_start}): {error} Train for more steps, or build the "
            'model with schedule="constant".'
        ) from None


@contextlib.contextmanager
def one_whole_cycle(model, steps):
    """Runs a recipe model's schedule (1cycle, decay) whole over the next `steps` steps
    taken outside `fit`.

    For training steps that no `fit` (and so no `OneCycleSpan`) announces, such as
    `diagnose`'s sanity training: they see the rates a `fit` of that many steps would
    run, not wherever the last `fit` left the cycle (after one, annealed to about
    1e-8, where no loss falls). The spans (and a train function rebuilt for them) are
    restored on exit; the caller restores the optimizer's variables. A model with a fixed
    `total_steps`, or a span too short for the cycle's phases, is left as it is.
    """
    saved, rebuild = [], False
    recipe = getattr(model, "recipe", None)
    if recipe is not None and recipe.stretches_schedule:
        for optimizer, iterations, schedule in span_schedules_of(model):
            span = (schedule.total_steps, schedule.start_step, schedule.hold_step)
            try:
                schedule.set_span(steps, iterations)
            except ValueError:
                continue
            saved.append((schedule, span))
            rebuild |= baked_in(optimizer, schedule)
    train_function = model.train_function
    if rebuild:
        model.make_train_function(force=True)
    try:
        yield
    finally:
        for schedule, span in saved:
            schedule.set_span(*span)
        model.train_function = train_function
