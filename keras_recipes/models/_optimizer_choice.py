"""A recipe's optimizer: the optimizer names, the schedules (`"auto"`, 1cycle, plateau,
constant), `learning_rate="find"`, their checks, and the optimizer created with its
1cycle attached."""

from __future__ import annotations

import warnings

import keras

from keras_recipes import _keras_internals
from keras_recipes import _validation as v
from keras_recipes import optimizers as recipe_optimizers
from keras_recipes.schedules import OneCycle, OneCycleMomentum

__all__ = [
    "FIND",
    "OPTIMIZERS",
    "SCHEDULES",
    "build_optimizer",
    "check_optimizer",
    "resolve_schedule",
]

OPTIMIZERS = {
    "nadam": recipe_optimizers.Nadam,
    "adam": recipe_optimizers.Adam,
    "adamw": recipe_optimizers.AdamW,
    "sgd": recipe_optimizers.SGD,
}


# The learning-rate schedules a recipe can run: the 1cycle over learning rate and
# momentum, performance scheduling (ReduceLROnPlateau) or a constant rate; "auto"
# is the 1cycle for an optimizer name and the optimizer as given for an instance.
SCHEDULES = ("auto", "one_cycle", "plateau", "constant")


# Placeholder span of an auto-sized 1cycle until `fit` sets the real one.
_AUTO_TOTAL_STEPS = 100
# `learning_rate="find"`: `fit` runs the LR range finder first.
FIND = "find"
_FIND_PLACEHOLDER = 1e-3


def resolve_schedule(schedule, one_cycle, optimizer):
    """Validates `schedule` (and its deprecated alias `one_cycle`); resolves `"auto"`.

    `one_cycle=True` means `schedule="one_cycle"` and `one_cycle=False` means
    `schedule="constant"`; it is kept for compatibility (with a
    `DeprecationWarning`) and may not contradict `schedule`.

    Returns:
        `"one_cycle"`, `"plateau"` or `"constant"`.
    """
    schedule = v.check_choice("schedule", schedule, SCHEDULES)
    if one_cycle != "auto":
        v.check_bool("one_cycle", one_cycle)
        warnings.warn('`one_cycle` is deprecated: pass schedule="one_cycle" (for True) or '
                      'schedule="constant" (for False)', DeprecationWarning, stacklevel=3)
        implied = "one_cycle" if one_cycle else "constant"
        if schedule not in ("auto", implied):
            v.fail("one_cycle", one_cycle, f"left out when `schedule={schedule!r}`",
                   hint="(`one_cycle` is the deprecated form of `schedule`)")
        schedule = implied
    is_instance = isinstance(optimizer, keras.optimizers.Optimizer)
    if schedule == "auto":
        return "constant" if is_instance else "one_cycle"
    if is_instance and schedule == "one_cycle":
        if one_cycle is True:
            v.fail("one_cycle", one_cycle, 'False (or "auto") when `optimizer` is an instance',
                   hint="Pass an optimizer name to get the recipe's 1cycle")
        v.fail("schedule", schedule, '"constant", "plateau" or "auto" when `optimizer` is an '
               "instance", hint="Pass an optimizer name to get the recipe's 1cycle")
    if is_instance and schedule == "plateau" and isinstance(
            _keras_internals.learning_rate_object(optimizer),
            keras.optimizers.schedules.LearningRateSchedule):
        v.fail("schedule", schedule, '"constant" or "auto" for an optimizer whose learning '
               "rate is a schedule",
               hint="(ReduceLROnPlateau can only change a float learning rate; create the "
                    "optimizer with `learning_rate=<float>`)")
    return schedule


def check_optimizer(optimizer, learning_rate, one_cycle, total_steps, clipnorm):
    """Validates the optimizer arguments of a factory without creating anything.

    Returns:
        `(optimizer, one_cycle)` normalised: a lower-case name or the instance,
        and `one_cycle` resolved from `"auto"`.
    """
    is_instance = isinstance(optimizer, keras.optimizers.Optimizer)
    if not is_instance:
        if not isinstance(optimizer, str):
            v.fail("optimizer", optimizer,
                   "an optimizer name (" + ", ".join(repr(n) for n in OPTIMIZERS)
                   + ") or a keras.optimizers.Optimizer instance", error=TypeError)
        optimizer = v.check_choice("optimizer", optimizer, OPTIMIZERS)
    if one_cycle == "auto":
        one_cycle = not is_instance
    v.check_bool("one_cycle", one_cycle)
    v.check_int("total_steps", total_steps, min_value=1, allow_none=True)
    v.check_number("clipnorm", clipnorm, low=0, low_inclusive=False, allow_none=True)
    if is_instance and one_cycle:
        v.fail("one_cycle", one_cycle, 'False (or "auto") when `optimizer` is an instance',
               hint="Pass an optimizer name to get the recipe's 1cycle")
    if not is_instance and learning_rate != FIND:
        if isinstance(learning_rate, str):
            v.fail("learning_rate", learning_rate, 'a number > 0 or "find"')
        v.check_number("learning_rate", learning_rate, low=0, low_inclusive=False)
    return optimizer, one_cycle


def build_optimizer(optimizer, learning_rate, one_cycle, total_steps, clipnorm,
                    **optimizer_kwargs):
    """Validates and creates the optimizer of a factory.

    `optimizer_kwargs` are more arguments of a named optimizer (`use_ema`, ...).

    Returns:
        `(optimizer, auto_one_cycle)`: the optimizer to compile with, and whether
        `fit` must stretch its 1cycle over its steps.
    """
    optimizer, one_cycle = check_optimizer(optimizer, learning_rate, one_cycle, total_steps,
                                           clipnorm)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer, False
    kwargs = dict(optimizer_kwargs)
    if clipnorm is not None:
        kwargs["clipnorm"] = clipnorm
    momentum_name = "momentum" if optimizer == "sgd" else "beta_1"
    if not one_cycle:
        if optimizer == "sgd":
            kwargs["momentum"] = 0.9
        if learning_rate == FIND:
            learning_rate = _FIND_PLACEHOLDER
        return OPTIMIZERS[optimizer](learning_rate=learning_rate, **kwargs), False
    if learning_rate == FIND:
        # A placeholder until `fit` runs the finder (RecipeModel.auto_learning_rate).
        learning_rate = _FIND_PLACEHOLDER
    steps = total_steps or _AUTO_TOTAL_STEPS
    kwargs[momentum_name] = OneCycleMomentum(total_steps=steps)
    schedule = OneCycle(max_learning_rate=learning_rate, total_steps=steps)
    return OPTIMIZERS[optimizer](learning_rate=schedule, **kwargs), total_steps is None
