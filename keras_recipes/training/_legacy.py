"""Models of the previous release (0.1.0): their recipe settings were flags on the model.

A model saved then carries `early_stopping_patience`, `auto_one_cycle`, `backup_dir`,
`auto_learning_rate` and `reduce_lr_on_plateau` in its config, and its optimizer in
its compile config. Loading one makes the equivalent `Recipe` from both: this is the
one place that reads settings back out of an optimizer, for files that kept them
nowhere else.
"""

from __future__ import annotations

import keras

from keras_recipes import _keras_internals as ki
from keras_recipes.recipe import Recipe
from keras_recipes.recipe._optimizers import optimizer_name
from keras_recipes.schedules import OneCycle

__all__ = ["SETTINGS", "recipe_from_settings"]

SETTINGS = ("early_stopping_patience", "auto_one_cycle", "backup_dir", "auto_learning_rate",
            "reduce_lr_on_plateau")


def recipe_from_settings(settings, optimizer=None):
    """The `Recipe` that the flags of a 0.1.0 model (and its compiled optimizer) meant.

    Args:
        settings: dict, some of `SETTINGS`.
        optimizer: the model's compiled optimizer, or None when not known yet: the
            optimizer's kind, peak learning rate, `clipnorm` and fixed 1cycle length come
            from it.

    Returns:
        A `Recipe`.
    """
    options = {"early_stopping_patience": settings.get("early_stopping_patience"),
               "backup_dir": settings.get("backup_dir")}
    schedule = "constant"
    if settings.get("reduce_lr_on_plateau"):
        schedule = "plateau"
    elif settings.get("auto_one_cycle"):
        schedule = "one_cycle"
    if optimizer is not None:
        inner = ki.default_optimizer(optimizer)
        options["optimizer"] = optimizer_name(inner) or "adam"
        rate = ki.learning_rate_object(inner)
        if isinstance(rate, OneCycle):
            schedule = "plateau" if schedule == "plateau" else "one_cycle"
            options["learning_rate"] = rate.max_learning_rate
            if not settings.get("auto_one_cycle"):
                options["total_steps"] = rate.total_steps
        elif not isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            options["learning_rate"] = float(keras.ops.convert_to_numpy(rate))
        if inner.clipnorm is not None:
            options["clipnorm"] = inner.clipnorm
    if settings.get("auto_learning_rate"):
        options["learning_rate"] = "find"
    return Recipe(schedule=schedule, **options)
