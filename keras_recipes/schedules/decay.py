"""The chapter's decaying learning-rate schedules, stretched over the steps of a `fit`.

Keras ships the formulas (`keras.optimizers.schedules.CosineDecay` with warm-up,
`ExponentialDecay`, `InverseTimeDecay`, `PiecewiseConstantDecay`) in optimizer
steps; a recipe wants them over whatever number of steps each `fit` runs, so each
setting here that places the schedule in time is a *fraction of the span*
(`total_steps`, which `fit` sets). The values are Keras's formulas, evaluated in
float32 as Keras evaluates them; the span and the numbers live in an optimizer
variable (`SpanSchedule`), so a new `fit` stretches them without tracing the step
again. Each peaks at `max_learning_rate` and never rises after its warm-up.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_recipes import _validation as v
from keras_recipes.schedules._span import PeakedSchedule, SpanSchedule

__all__ = ["ExponentialDecay", "PiecewiseConstantDecay", "PowerDecay", "WarmupCosineDecay"]

_PACKAGE = "keras_recipes"


class _Decay(PeakedSchedule, SpanSchedule):
    """A learning rate that decays from `max_learning_rate` over a span."""

    def __init__(self, max_learning_rate, total_steps, start_step, hold_step, name):
        self._set_peak(max_learning_rate)
        super().__init__(total_steps, start_step, hold_step, name)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WarmupCosineDecay(_Decay):
    """A linear warm-up to `max_learning_rate`, then a cosine decay to near zero.

    The first `warmup_fraction` of the `total_steps` steps (rounded down to whole
    steps) warm up linearly from 0; the rest follow half a cosine from
    `max_learning_rate` down towards `alpha * max_learning_rate`, reached one step
    after the last: the AdamW + cosine template of modern training. Step for
    step equal to `keras.optimizers.schedules.CosineDecay(initial_learning_rate=0,
    decay_steps=total_steps - warmup_steps, alpha=alpha,
    warmup_target=max_learning_rate, warmup_steps=warmup_steps)`; past the last
    step it holds its value.

    Args:
        max_learning_rate: float > 0, the peak, reached when the warm-up ends.
        total_steps: int, the number of optimizer steps of the schedule.
        warmup_fraction: float in [0, 1), the fraction of the steps spent warming
            up. Defaults to `0.05`.
        alpha: float in [0, 1), the floor of the decay as a fraction of the peak.
            Defaults to `0.0`.
        start_step: int, the optimizer step at which the schedule begins. Recipe
            models set it so that each `fit` runs the whole schedule.
            Defaults to `0`.
        name: str, optional name. Defaults to `"WarmupCosineDecay"`.
        hold_step: int or None, as in `keras_recipes.schedules.OneCycle`.
            Defaults to `None`.

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule`.

    Raises:
        ValueError: for a bad peak, span or setting.

    Example:

    >>> from keras_recipes.schedules import WarmupCosineDecay
    >>> schedule = WarmupCosineDecay(1e-3, total_steps=100, warmup_fraction=0.1)
    >>> [round(float(schedule(step)), 6) for step in (0, 5, 10, 55)]
    [0.0, 0.0005, 0.001, 0.0005]
    """

    def __init__(self, max_learning_rate, total_steps, warmup_fraction=0.05, alpha=0.0,
                 start_step=0, name="WarmupCosineDecay", hold_step=None):
        self.warmup_fraction = v.check_number("warmup_fraction", warmup_fraction, low=0, high=1,
                                              high_inclusive=False)
        self.alpha = v.check_number("alpha", alpha, low=0, high=1, high_inclusive=False)
        super().__init__(max_learning_rate, total_steps, start_step, hold_step, name)

    @property
    def warmup_steps(self):
        """int, the steps of the warm-up: `warmup_fraction` of the span, rounded down."""
        return int(self.warmup_fraction * self.total_steps)

    def _shape_constants(self):
        warmup = self.warmup_steps
        return [float(warmup), float(self.total_steps - warmup), self.max_learning_rate,
                self.alpha]

    def _evaluate(self, position, constants):
        warmup, decay, peak, alpha = (constants[i] for i in range(2, 6))
        # Keras's CosineDecay, operation for operation.
        warm = peak * (position / ops.maximum(warmup, 1.0))
        cosine = 0.5 * (1.0 + ops.cos(math.pi * ((position - warmup) / decay)))
        return ops.where(position < warmup, warm, peak * ((1.0 - alpha) * cosine + alpha))

    def get_config(self):
        return {**super().get_config(), "warmup_fraction": self.warmup_fraction,
                "alpha": self.alpha}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ExponentialDecay(_Decay):
    """Exponential scheduling: `max_learning_rate * decay_rate ** (t / s)` over a span.

    The chapter's `lr0 * 0.1 ** (t / s)`, with `s` a fraction of the span: the
    rate is multiplied by `decay_rate` every `decay_fraction * total_steps`
    steps. The defaults divide it by 10 over the span. Step for step equal to
    `keras.optimizers.schedules.ExponentialDecay(max_learning_rate,
    decay_steps=decay_fraction * total_steps, decay_rate=decay_rate)`; past the
    last step it holds its value.

    Args:
        max_learning_rate: float > 0, the rate at the first step.
        total_steps: int, the number of optimizer steps of the schedule.
        decay_rate: float in (0, 1), the factor applied every `s` steps.
            Defaults to `0.1`.
        decay_fraction: float > 0, `s` as a fraction of the span.
            Defaults to `1.0`.
        start_step: int, as in `WarmupCosineDecay`. Defaults to `0`.
        name: str, optional name. Defaults to `"ExponentialDecay"`.
        hold_step: int or None, as in `WarmupCosineDecay`. Defaults to `None`.

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule`.

    Raises:
        ValueError: for a bad peak, span or setting.

    Example:

    >>> from keras_recipes.schedules import ExponentialDecay
    >>> schedule = ExponentialDecay(1e-2, total_steps=100)
    >>> round(float(schedule(50)), 6)
    0.003162
    """

    def __init__(self, max_learning_rate, total_steps, decay_rate=0.1, decay_fraction=1.0,
                 start_step=0, name="ExponentialDecay", hold_step=None):
        self.decay_rate = v.check_number("decay_rate", decay_rate, low=0, high=1,
                                         low_inclusive=False, high_inclusive=False)
        self.decay_fraction = v.check_number("decay_fraction", decay_fraction, low=0,
                                             low_inclusive=False)
        super().__init__(max_learning_rate, total_steps, start_step, hold_step, name)

    def _shape_constants(self):
        return [self.max_learning_rate, self.decay_rate, self.decay_fraction * self.total_steps]

    def _evaluate(self, position, constants):
        peak, rate, steps = (constants[i] for i in range(2, 5))
        return peak * ops.power(rate, position / steps)

    def get_config(self):
        return {**super().get_config(), "decay_rate": self.decay_rate,
                "decay_fraction": self.decay_fraction}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PowerDecay(_Decay):
    """Power scheduling: `max_learning_rate / (1 + t / s) ** power` over a span.

    The chapter's `lr0 / (1 + t / s) ** c`, with `s` a fraction of the span. The
    defaults (`c = 1`, as the chapter advises; `s` a quarter of the span) end
    near a fifth of the peak. With `power=1` it is step for step
    `keras.optimizers.schedules.InverseTimeDecay(max_learning_rate,
    decay_steps=decay_fraction * total_steps, decay_rate=1)`; past the last
    step it holds its value.

    Args:
        max_learning_rate: float > 0, the rate at the first step.
        total_steps: int, the number of optimizer steps of the schedule.
        decay_fraction: float > 0, `s` as a fraction of the span.
            Defaults to `0.25`.
        power: float > 0, `c`. Defaults to `1.0`.
        start_step: int, as in `WarmupCosineDecay`. Defaults to `0`.
        name: str, optional name. Defaults to `"PowerDecay"`.
        hold_step: int or None, as in `WarmupCosineDecay`. Defaults to `None`.

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule`.

    Raises:
        ValueError: for a bad peak, span or setting.

    Example:

    >>> from keras_recipes.schedules import PowerDecay
    >>> schedule = PowerDecay(1e-2, total_steps=100)
    >>> round(float(schedule(25)), 6)
    0.005
    """

    def __init__(self, max_learning_rate, total_steps, decay_fraction=0.25, power=1.0,
                 start_step=0, name="PowerDecay", hold_step=None):
        self.decay_fraction = v.check_number("decay_fraction", decay_fraction, low=0,
                                             low_inclusive=False)
        self.power = v.check_number("power", power, low=0, low_inclusive=False)
        super().__init__(max_learning_rate, total_steps, start_step, hold_step, name)

    def _shape_constants(self):
        return [self.max_learning_rate, self.decay_fraction * self.total_steps, self.power]

    def _evaluate(self, position, constants):
        peak, steps, power = (constants[i] for i in range(2, 5))
        return peak / ops.power(1.0 + position / steps, power)

    def get_config(self):
        return {**super().get_config(), "decay_fraction": self.decay_fraction,
                "power": self.power}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PiecewiseConstantDecay(_Decay):
    """Piecewise constant scheduling: constant rates, lower at fixed fractions of a span.

    The rate is `values[0] * max_learning_rate` up to the first boundary,
    `values[1] * max_learning_rate` up to the second, and so on; the
    boundaries are fractions of the span (step `boundaries[i] * total_steps`
    still has the rate before it, as in Keras). The defaults divide the rate by
    10 halfway and again at three quarters of the span. Step for step equal to
    `keras.optimizers.schedules.PiecewiseConstantDecay([b * total_steps for b in
    boundaries], [x * max_learning_rate for x in values])`.

    Args:
        max_learning_rate: float > 0, the rate before the first boundary.
        total_steps: int, the number of optimizer steps of the schedule.
        boundaries: list of increasing floats in (0, 1), where the rate drops.
            Defaults to `(0.5, 0.75)`.
        values: list of `len(boundaries) + 1` non-increasing floats in (0, 1],
            the first `1.0`: the rates as multiples of `max_learning_rate`.
            Defaults to `(1.0, 0.1, 0.01)`.
        start_step: int, as in `WarmupCosineDecay`. Defaults to `0`.
        name: str, optional name. Defaults to `"PiecewiseConstantDecay"`.
        hold_step: int or None, as in `WarmupCosineDecay`. Defaults to `None`.

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule`.

    Raises:
        ValueError: for a bad peak, span, boundary or value.
        TypeError: for boundaries or values that are not lists of numbers.

    Example:

    >>> from keras_recipes.schedules import PiecewiseConstantDecay
    >>> schedule = PiecewiseConstantDecay(1e-2, total_steps=100)
    >>> [round(float(schedule(step)), 6) for step in (50, 51, 76)]
    [0.01, 0.001, 0.0001]
    """

    def __init__(self, max_learning_rate, total_steps, boundaries=(0.5, 0.75),
                 values=(1.0, 0.1, 0.01), start_step=0, name="PiecewiseConstantDecay",
                 hold_step=None):
        self.boundaries = _check_boundaries(boundaries)
        self.values = _check_values(values, len(self.boundaries))
        super().__init__(max_learning_rate, total_steps, start_step, hold_step, name)

    def _shape_constants(self):
        return ([b * self.total_steps for b in self.boundaries]
                + [x * self.max_learning_rate for x in self.values])

    def _evaluate(self, position, constants):
        count = len(self.boundaries)
        rate = constants[2 + count]
        for i in range(count):
            rate = ops.where(position > constants[2 + i], constants[3 + count + i], rate)
        return rate

    def get_config(self):
        return {**super().get_config(), "boundaries": list(self.boundaries),
                "values": list(self.values)}


def _numbers(name, value, expected):
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        v.fail(name, value, expected, error=TypeError)
    return [float(x) for x in value]


def _check_boundaries(boundaries):
    expected = "a non-empty list of increasing fractions of the span, each in the range (0, 1)"
    numbers = _numbers("boundaries", boundaries, expected)
    if any(not 0 < b < 1 for b in numbers) or any(
            b >= later for b, later in zip(numbers, numbers[1:])):
        v.fail("boundaries", boundaries, expected)
    return numbers


def _check_values(values, count):
    expected = (f"a list of {count + 1} non-increasing multiples of the peak learning rate in "
                "the range (0, 1], the first 1.0 (one more than `boundaries`)")
    numbers = _numbers("values", values, expected)
    if len(numbers) != count + 1 or numbers[0] != 1.0 or any(not 0 < x <= 1 for x in numbers) \
            or any(x < later for x, later in zip(numbers, numbers[1:])):
        v.fail("values", values, expected)
    return numbers
