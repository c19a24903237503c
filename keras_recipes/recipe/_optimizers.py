"""A recipe's optimizer: the optimizer names, the schedules (`"auto"`, 1cycle, plateau,
constant), `learning_rate="find"`, their checks, and the optimizer created with its
1cycle attached."""

from __future__ import annotations

import keras

from keras_recipes import _keras_internals
from keras_recipes import _validation as v
from keras_recipes import optimizers as recipe_optimizers
from keras_recipes.schedules import OneCycle, OneCycleMomentum

__all__ = [
    "FIND",
    "OPTIMIZERS",
    "SCHEDULES",
    "check_optimizer",
    "check_optimizer_kwargs",
    "make_optimizer",
    "optimizer_name",
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

# Arguments of the named optimizer that `optimizer_kwargs` may not set: the recipe's own.
_RECIPE_OPTIMIZER_ARGUMENTS = ("learning_rate", "momentum", "beta_1", "clipnorm")


def resolve_schedule(recipe, one_cycle):
    """Validates a recipe's `schedule` (and its deprecated alias `one_cycle`); resolves
    `"auto"`.

    `one_cycle=True` means `schedule="one_cycle"` and `one_cycle=False` means
    `schedule="constant"`; it is kept for compatibility (with a
    `DeprecationWarning`) and may not contradict `schedule`.

    Returns:
        `"one_cycle"`, `"plateau"` or `"constant"`.
    """
    optimizer = recipe.optimizer
    schedule = v.check_choice("schedule", recipe.schedule, SCHEDULES)
    if one_cycle != "auto":
        v.check_bool("one_cycle", one_cycle)
        v.warn_deprecated('`one_cycle` is deprecated: pass schedule="one_cycle" (for True) or '
                          'schedule="constant" (for False)')
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


def check_optimizer(recipe):
    """Validates a recipe's optimizer options without creating anything.

    Returns:
        The optimizer normalised: a lower-case name, or the instance.
    """
    optimizer, learning_rate = recipe.optimizer, recipe.learning_rate
    is_instance = isinstance(optimizer, keras.optimizers.Optimizer)
    if not is_instance:
        if not isinstance(optimizer, str):
            v.fail("optimizer", optimizer,
                   "an optimizer name (" + ", ".join(repr(n) for n in OPTIMIZERS)
                   + ") or a keras.optimizers.Optimizer instance", error=TypeError)
        optimizer = v.check_choice("optimizer", optimizer, OPTIMIZERS)
    v.check_int("total_steps", recipe.total_steps, min_value=1, allow_none=True)
    v.check_number("clipnorm", recipe.clipnorm, low=0, low_inclusive=False, allow_none=True)
    if not is_instance and learning_rate != FIND:
        if isinstance(learning_rate, str):
            v.fail("learning_rate", learning_rate, 'a number > 0 or "find"')
        v.check_number("learning_rate", learning_rate, low=0, low_inclusive=False)
    return optimizer


def check_optimizer_kwargs(recipe, schedule):
    """Validates a recipe's `optimizer_kwargs`, more arguments of the named optimizer,
    given its resolved `schedule`.

    Returns:
        dict, a copy (empty for None).
    """
    optimizer_kwargs, optimizer = recipe.optimizer_kwargs, recipe.optimizer
    if optimizer_kwargs is None:
        return {}
    if not isinstance(optimizer_kwargs, dict):
        v.fail("optimizer_kwargs", optimizer_kwargs, "a dict of optimizer arguments or None",
               error=TypeError)
    if optimizer_kwargs and isinstance(optimizer, keras.optimizers.Optimizer):
        v.fail("optimizer_kwargs", optimizer_kwargs, "None when `optimizer` is an instance",
               hint="(set them on your optimizer)")
    for key in optimizer_kwargs:
        if key in _RECIPE_OPTIMIZER_ARGUMENTS:
            v.fail("optimizer_kwargs", optimizer_kwargs, f"free of `{key}`",
                   hint=f"(the recipe sets it; pass `{key}` to compile_recipe)"
                   if key in ("learning_rate", "clipnorm") else "(the recipe's 1cycle sets it)")
    if optimizer_kwargs.get("gradient_accumulation_steps") and schedule == "one_cycle":
        v.fail("optimizer_kwargs", optimizer_kwargs,
               'free of `gradient_accumulation_steps` with schedule="one_cycle"',
               hint="(with accumulation Keras's learning-rate schedule counts batches but the "
                    "momentum schedule counts optimizer updates, so the 1cycle would fall out "
                    'of step; use schedule="plateau" or "constant")')
    return dict(optimizer_kwargs)


def optimizer_name(optimizer):
    """The name in `OPTIMIZERS` of an optimizer instance's class, or None."""
    name = type(_keras_internals.default_optimizer(optimizer)).__name__.lower()
    return name if name in OPTIMIZERS else None


def make_optimizer(recipe):
    """Creates the optimizer of a checked recipe with an optimizer name: on a 1cycle over
    the learning rate and momentum / `beta_1` (`schedule="one_cycle"`), or at a constant
    rate.

    `learning_rate="find"` gives a placeholder rate, which the finder replaces at `fit`.
    """
    name, learning_rate = recipe.optimizer, recipe.learning_rate
    kwargs = dict(recipe.optimizer_kwargs)
    if recipe.clipnorm is not None:
        kwargs["clipnorm"] = recipe.clipnorm
    if learning_rate == FIND:
        learning_rate = _FIND_PLACEHOLDER
    if recipe.schedule != "one_cycle":
        if name == "sgd":
            kwargs["momentum"] = 0.9
        return OPTIMIZERS[name](learning_rate=learning_rate, **kwargs)
    steps = recipe.total_steps or _AUTO_TOTAL_STEPS
    kwargs["momentum" if name == "sgd" else "beta_1"] = OneCycleMomentum(total_steps=steps)
    return OPTIMIZERS[name](learning_rate=OneCycle(max_learning_rate=learning_rate,
                                                   total_steps=steps), **kwargs)
