"""A recipe's optimizer: the optimizer names, the schedule resolved (`"auto"`),
`learning_rate="find"`, their checks, and the optimizer created with its schedule attached
(the schedules themselves: `_schedules.py`)."""

from __future__ import annotations

import keras

from keras_recipes import _keras_internals
from keras_recipes import _validation as v
from keras_recipes import optimizers as recipe_optimizers
from keras_recipes.optimizers.scheduled import raw_hyperparameter
from keras_recipes.recipe._schedules import SCHEDULES, SPAN_SCHEDULES, make_schedules

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

# The chapter's optimizers, in its order: name -> (class, its fixed arguments, the
# hyperparameter the 1cycle cycles, or None where the optimizer has none).
OPTIMIZERS = {
    "sgd": (recipe_optimizers.SGD, {}, None),
    "momentum": (recipe_optimizers.SGD, {"momentum": 0.9}, "momentum"),
    "nesterov": (recipe_optimizers.SGD, {"momentum": 0.9, "nesterov": True}, "momentum"),
    "adagrad": (recipe_optimizers.Adagrad, {}, None),
    "rmsprop": (recipe_optimizers.RMSprop, {}, "momentum"),
    "adam": (recipe_optimizers.Adam, {}, "beta_1"),
    "adamax": (recipe_optimizers.Adamax, {}, "beta_1"),
    "nadam": (recipe_optimizers.Nadam, {}, "beta_1"),
    "adamw": (recipe_optimizers.AdamW, {}, "beta_1"),
}

# `learning_rate="find"`: `fit` runs the LR range finder first.
FIND = "find"
_FIND_PLACEHOLDER = 1e-3

# Arguments of the named optimizer that `optimizer_kwargs` may not set: the recipe's own.
_RECIPE_OPTIMIZER_ARGUMENTS = ("learning_rate", "momentum", "beta_1", "nesterov", "clipnorm")


def resolve_schedule(recipe, one_cycle):
    """Validates a recipe's `schedule` (and its deprecated alias `one_cycle`); resolves
    `"auto"`.

    `one_cycle=True` means `schedule="one_cycle"` and `one_cycle=False` means
    `schedule="constant"`; it is kept for compatibility (with a
    `DeprecationWarning`) and may not contradict `schedule`.

    Returns:
        A name of `SCHEDULES` other than `"auto"`.
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
    if is_instance and schedule in SPAN_SCHEDULES:
        if one_cycle is True:
            v.fail("one_cycle", one_cycle, 'False (or "auto") when `optimizer` is an instance',
                   hint="Pass an optimizer name to get the recipe's 1cycle")
        v.fail("schedule", schedule, '"constant", "plateau" or "auto" when `optimizer` is an '
               "instance", hint="Pass an optimizer name to get the recipe's "
               + ("1cycle" if schedule == "one_cycle" else f"{schedule} schedule"))
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
    optimizer = recipe.optimizer
    optimizer_kwargs = v.check_dict("optimizer_kwargs", recipe.optimizer_kwargs,
                                    "a dict of optimizer arguments")
    if optimizer_kwargs and isinstance(optimizer, keras.optimizers.Optimizer):
        v.fail("optimizer_kwargs", optimizer_kwargs, "None when `optimizer` is an instance",
               hint="(set them on your optimizer)")
    for key in optimizer_kwargs:
        if key in _RECIPE_OPTIMIZER_ARGUMENTS:
            v.fail("optimizer_kwargs", optimizer_kwargs, f"free of `{key}`",
                   hint=f"(the recipe sets it; pass `{key}` to compile_recipe)"
                   if key in ("learning_rate", "clipnorm") else
                   '(the recipe sets it: the 1cycle cycles momentum and beta_1, and '
                   'optimizer="momentum" or "nesterov" is SGD with momentum 0.9)')
    if optimizer_kwargs.get("gradient_accumulation_steps") and schedule == "one_cycle":
        v.fail("optimizer_kwargs", optimizer_kwargs,
               'free of `gradient_accumulation_steps` with schedule="one_cycle"',
               hint="(with accumulation Keras's learning-rate schedule counts batches but the "
                    "momentum schedule counts optimizer updates, so the 1cycle would fall out "
                    'of step; use schedule="plateau" or "constant")')
    return optimizer_kwargs


def optimizer_name(optimizer):
    """The name in `OPTIMIZERS` of an optimizer instance's kind, or None.

    An SGD with a momentum (a float above 0 or a schedule) is `"momentum"`, or
    `"nesterov"` with Nesterov's form; without one, `"sgd"`.
    """
    inner = _keras_internals.default_optimizer(optimizer)
    name = type(inner).__name__.lower()
    if name == "sgd":
        momentum = (raw_hyperparameter(inner, "momentum")
                    if "momentum" in getattr(inner, "_scheduled", ()) else inner.momentum)
        if isinstance(momentum, keras.optimizers.schedules.LearningRateSchedule) or momentum:
            return "nesterov" if inner.nesterov else "momentum"
    return name if name in OPTIMIZERS else None


def make_optimizer(recipe):
    """Creates the optimizer of a checked recipe with an optimizer name: on the recipe's
    schedule (a 1cycle also over momentum / `beta_1`, where the optimizer has one; a
    decay; placeholders for the span, which each `fit` sets), or at a constant rate.

    `learning_rate="find"` gives a placeholder rate, which the finder replaces at `fit`.
    """
    optimizer_class, fixed, cycled = OPTIMIZERS[recipe.optimizer]
    kwargs = {**fixed, **recipe.optimizer_kwargs}
    if recipe.clipnorm is not None:
        kwargs["clipnorm"] = recipe.clipnorm
    learning_rate = recipe.learning_rate
    if learning_rate == FIND:
        learning_rate = _FIND_PLACEHOLDER
    if recipe.schedule in SPAN_SCHEDULES:
        learning_rate, momentum = make_schedules(recipe, learning_rate, recipe.schedule_kwargs)
        if momentum is not None and cycled is not None:
            kwargs[cycled] = momentum
    return optimizer_class(learning_rate=learning_rate, **kwargs)
