"""A recipe's learning-rate schedules: their names, their settings (`schedule_kwargs`) and
their checks, and the schedule objects a named optimizer follows."""

from __future__ import annotations

from keras_recipes import _validation as v
from keras_recipes.schedules import (
    ExponentialDecay,
    OneCycle,
    OneCycleMomentum,
    PiecewiseConstantDecay,
    PowerDecay,
    WarmupCosineDecay,
)

__all__ = [
    "AUTO_TOTAL_STEPS",
    "PLATEAU_DEFAULTS",
    "SCHEDULES",
    "SETTINGS",
    "SPAN_SCHEDULES",
    "check_schedule_kwargs",
    "make_schedules",
]

# The learning-rate schedules a recipe can run: "auto" is the 1cycle for an optimizer name
# and the optimizer as given for an instance.
SCHEDULES = ("auto", "one_cycle", "cosine", "exponential", "power", "piecewise", "plateau",
             "constant")

# The schedules each `fit` stretches over its own steps (`OneCycleSpan`), by name.
SPAN_SCHEDULES = {
    "one_cycle": OneCycle,
    "cosine": WarmupCosineDecay,
    "exponential": ExponentialDecay,
    "power": PowerDecay,
    "piecewise": PiecewiseConstantDecay,
}

# Placeholder span of an auto-sized schedule until `fit` sets the real one.
AUTO_TOTAL_STEPS = 100

# `schedule="plateau"`: the chapter's performance scheduling, as in its example.
PLATEAU_DEFAULTS = {"factor": 0.5, "patience": 5}

# The settings `schedule_kwargs` may hold, for each schedule (defaults: the classes').
_MOMENTUM_SETTINGS = ("base_momentum", "max_momentum")
SETTINGS = {
    "one_cycle": ("pct_start", "anneal_strategy", "div_factor", "final_div_factor",
                  "three_phase", *_MOMENTUM_SETTINGS),
    "cosine": ("warmup_fraction", "alpha"),
    "exponential": ("decay_rate", "decay_fraction"),
    "power": ("decay_fraction", "power"),
    "piecewise": ("boundaries", "values"),
    "plateau": tuple(PLATEAU_DEFAULTS),
    "constant": (),
}


def make_schedules(recipe, learning_rate, settings):
    """The schedules a named optimizer follows under the recipe's span schedule.

    Args:
        recipe: the `keras_recipes.Recipe`, its schedule one of `SPAN_SCHEDULES`; the
            span is its `total_steps`, or a placeholder until a `fit` sets it.
        learning_rate: float, the peak.
        settings: dict, checked `schedule_kwargs`.

    Returns:
        `(learning_rate_schedule, momentum_schedule)`, the second None except for the
        1cycle (a `OneCycleMomentum` over the same span).
    """
    settings = dict(settings)
    steps = recipe.total_steps or AUTO_TOTAL_STEPS
    if recipe.schedule != "one_cycle":
        return SPAN_SCHEDULES[recipe.schedule](learning_rate, steps, **settings), None
    momentum = {key: settings.pop(key) for key in _MOMENTUM_SETTINGS if key in settings}
    shared = {key: settings[key] for key in ("pct_start", "anneal_strategy", "three_phase")
              if key in settings}
    return (OneCycle(learning_rate, steps, **settings),
            OneCycleMomentum(steps, **shared, **momentum))


def check_schedule_kwargs(recipe):
    """Validates a recipe's `schedule_kwargs` for its resolved `schedule`.

    Unknown settings are named with the valid ones and the closest; values are checked
    by the schedule itself (made once, as `make_schedules` makes it), with its messages.

    Returns:
        dict, a copy (empty for None).
    """
    schedule = recipe.schedule
    settings = v.check_dict("schedule_kwargs", recipe.schedule_kwargs,
                            "a dict of the schedule's settings")
    if not settings:  # the schedule's defaults
        return settings
    valid = SETTINGS[schedule]
    for key in settings:
        if key in valid:
            continue
        if not valid:
            v.fail("schedule_kwargs", settings, f"None or empty for schedule={schedule!r}",
                   hint="(it has no settings)")
        v.fail("schedule_kwargs", settings,
               f"a dict of the settings of schedule={schedule!r} ({', '.join(valid)})",
               hint=v.did_you_mean(str(key), {name: name for name in valid}))
    if schedule == "plateau":
        if "factor" in settings:
            v.check_number("factor", settings["factor"], low=0, high=1, low_inclusive=False,
                           high_inclusive=False)
        if "patience" in settings:
            v.check_int("patience", settings["patience"], min_value=0)
    elif schedule in SPAN_SCHEDULES:
        learning_rate = recipe.learning_rate
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
            learning_rate = 1e-3  # "find": the schedule is checked at a stand-in peak
        make_schedules(recipe, learning_rate, settings)
    return settings
