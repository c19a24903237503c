"""What an optimizer follows: its schedules, through `MultiOptimizer`s and wrappers.

The one place the rest of keras_recipes asks which 1cycle (or other span) schedules drive
an optimizer (recipe models, `fine_tune`, `OneCycleSpan`); unwrapping Keras's
optimizer wrappers is `keras_recipes._keras_internals`'s job.
"""

from __future__ import annotations

import keras

from keras_recipes import _keras_internals as internals
from keras_recipes.optimizers.scheduled import followed_schedules
from keras_recipes.schedules._span import SpanSchedule
from keras_recipes.schedules.one_cycle import OneCycle, OneCycleMomentum

__all__ = ["followed_schedules", "learning_rate_schedule", "one_cycle_schedules",
           "own_one_cycle_schedules", "own_span_schedules", "span_schedules"]


def learning_rate_schedule(optimizer):
    """The learning-rate schedule an optimizer follows, or None for a constant rate.

    Keras's `optimizer.learning_rate` is the rate at the current step, which
    cannot say which schedule (a `keras_recipes.schedules.OneCycle`, its span,
    its peak) produces it; this returns the schedule itself. A
    `LossScaleOptimizer` (mixed precision) is unwrapped; a `MultiOptimizer` has
    none of its own (ask each of its `optimizers`).

    Args:
        optimizer: a `keras.optimizers.Optimizer`.

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule`, or None.

    Example:

    >>> import keras_recipes
    >>> from keras_recipes.optimizers import learning_rate_schedule
    >>> model = keras_recipes.build_default_dnn((4,), 3, learning_rate=0.01)
    >>> learning_rate_schedule(model.optimizer).max_learning_rate
    0.01
    """
    rate = internals.learning_rate_object(optimizer)
    return rate if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule) else None


def own_one_cycle_schedules(optimizer):
    """The 1cycle schedules (learning rate, then momentum / `beta_1`) that one
    optimizer follows itself (a `LossScaleOptimizer` is unwrapped)."""
    return [s for s in own_span_schedules(optimizer) if isinstance(s, (OneCycle, OneCycleMomentum))]


def one_cycle_schedules(optimizer):
    """The 1cycle schedules an optimizer follows: learning rates and momentum / `beta_1`,
    those of each optimizer of a `keras.optimizers.MultiOptimizer` included.

    Args:
        optimizer: a `keras.optimizers.Optimizer`.

    Returns:
        A list of `OneCycle` and `OneCycleMomentum` schedules, possibly empty.

    Example:

    >>> from keras_recipes.optimizers import Adam
    >>> from keras_recipes.optimizers.introspection import one_cycle_schedules
    >>> from keras_recipes.schedules import OneCycle
    >>> [type(s).__name__ for s in one_cycle_schedules(Adam(OneCycle(0.01, 100)))]
    ['OneCycle']
    """
    return [s for s in span_schedules(optimizer) if isinstance(s, (OneCycle, OneCycleMomentum))]


def own_span_schedules(optimizer):
    """The schedules a `fit` stretches over its steps (`keras_recipes.schedules`' 1cycle
    and decays) that one optimizer follows itself (a `LossScaleOptimizer` is unwrapped)."""
    return [s for s in followed_schedules(optimizer) if isinstance(s, SpanSchedule)]


def span_schedules(optimizer):
    """The schedules a `fit` stretches over its steps that an optimizer follows, those of
    each optimizer of a `keras.optimizers.MultiOptimizer` included.

    Args:
        optimizer: a `keras.optimizers.Optimizer`.

    Returns:
        A list of `keras_recipes.schedules` schedules (1cycle and decays), possibly empty.

    Example:

    >>> from keras_recipes.optimizers import Adam
    >>> from keras_recipes.optimizers.introspection import span_schedules
    >>> from keras_recipes.schedules import WarmupCosineDecay
    >>> [type(s).__name__ for s in span_schedules(Adam(WarmupCosineDecay(0.01, 100)))]
    ['WarmupCosineDecay']
    """
    return [s for inner in internals.component_optimizers(optimizer)
            for s in own_span_schedules(inner)]
