"""The 1cycle learning-rate and momentum schedules (Smith & Topin, 2018)."""

from __future__ import annotations

import keras

from keras_recipes import _validation as v
from keras_recipes.schedules._interpolation import (
    ANNEAL_FUNCTIONS,
    one_cycle_constants,
    one_cycle_phase_ends,
    piecewise_anneal,
    unpack_constants,
)
from keras_recipes.schedules._span import PeakedSchedule, SpanSchedule

_PACKAGE = "keras_recipes"

__all__ = ["OneCycle", "OneCycleMomentum"]


class _OneCycleBase(SpanSchedule):
    """Shared by the 1cycle schedules: their phases, checked against the span.

    The span, the held step and the state the compiled step reads are
    `SpanSchedule`'s.
    """

    def __init__(self, total_steps, pct_start, anneal_strategy, three_phase, start_step,
                 hold_step, name):
        v.check_int("total_steps", total_steps, min_value=1)
        v.check_number("pct_start", pct_start, low=0, high=1, low_inclusive=False,
                       high_inclusive=False)
        anneal_strategy = v.check_choice("anneal_strategy", anneal_strategy, ANNEAL_FUNCTIONS)
        v.check_bool("three_phase", three_phase)
        self.pct_start = float(pct_start)
        self.anneal_strategy = anneal_strategy
        self.three_phase = three_phase
        super().__init__(total_steps, start_step, hold_step, name)

    def _check_span(self, total_steps, start_step, hold_step):
        super()._check_span(total_steps, start_step, hold_step)
        phase_ends = one_cycle_phase_ends(total_steps, self.pct_start, self.three_phase)
        starts = [0.0] + phase_ends[:-1]
        if any(end == start for start, end in zip(starts, phase_ends)):
            v.fail(
                "total_steps",
                total_steps,
                f"large enough that every phase lasts at least one step with "
                f"pct_start={self.pct_start}, three_phase={self.three_phase}",
                hint="(a phase of zero length makes PyTorch's OneCycleLR divide by zero too). "
                "Use more steps or another pct_start",
            )

    @property
    def _num_phases(self):
        return 3 if self.three_phase else 2

    def _shape_constants(self):
        # `one_cycle_constants` starts with the span, which `SpanSchedule` writes itself.
        return one_cycle_constants(self._start_step, self._total_steps, self.pct_start,
                                   self.three_phase, self._phase_values())[2:]

    def _phase_values(self):
        raise NotImplementedError

    def _evaluate(self, position, constants):
        _, _, phases = unpack_constants(constants, self._num_phases)
        return piecewise_anneal(position, phases, ANNEAL_FUNCTIONS[self.anneal_strategy])

    def get_config(self):
        config = super().get_config()
        config.update({"pct_start": self.pct_start, "anneal_strategy": self.anneal_strategy,
                       "three_phase": self.three_phase})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class OneCycle(PeakedSchedule, _OneCycleBase):
    """The 1cycle learning-rate schedule, step for step equal to PyTorch's `OneCycleLR`.

    The learning rate warms up from `max_learning_rate / div_factor` to
    `max_learning_rate` over the first `pct_start` of the steps, then anneals
    down to `max_learning_rate / div_factor / final_div_factor`. With
    `three_phase=True` it first comes back down to the initial rate
    (symmetrically) and only then anneals to the minimum, as in fastai.

    Called with the optimizer's step `k` (0-based, as Keras passes
    `optimizer.iterations`) it returns what `torch.optim.lr_scheduler.OneCycleLR`
    gives for batch `k` with the same arguments, for every `k` in
    `[0, total_steps)`. Past the end it holds the final value instead of failing.
    Pair it with `OneCycleMomentum` and an optimizer of
    `keras_recipes.optimizers` to cycle momentum as well.

    Written here because Keras ships no 1cycle schedule; everything runs inside
    the compiled train step, with no per-batch callback.

    Args:
        max_learning_rate: float, the peak learning rate.
        total_steps: int, the number of optimizer steps in the cycle.
        pct_start: float in (0, 1), the fraction of the cycle spent warming up.
            Defaults to `0.3`.
        anneal_strategy: str, `"cos"` or `"linear"`. Defaults to `"cos"`.
        div_factor: float, the initial learning rate is
            `max_learning_rate / div_factor`. Defaults to `25.0`.
        final_div_factor: float, the final learning rate is
            `initial_learning_rate / final_div_factor`. Defaults to `1e4`.
        three_phase: bool, whether to use fastai's three phases. Defaults to `False`.
        start_step: int, the optimizer step at which the cycle begins (earlier
            steps get the initial value). Recipe models set it so that each
            `fit` call runs one whole cycle. Defaults to `0`.
        name: str, optional name. Defaults to `"OneCycle"`.
        hold_step: int or None, the step (counted from `start_step`) from which
            the rate stays what it is there: recipe models set it for
            `swa_epochs`, whose epochs run at a constant rate. Defaults to `None`.

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule`.

    Raises:
        ValueError: if `total_steps <= 0`, `pct_start` is outside (0, 1), a
            factor is not positive, `anneal_strategy` is unknown, or a phase
            would have zero length.

    Example:

    >>> import keras, keras_recipes
    >>> schedule = keras_recipes.schedules.OneCycle(max_learning_rate=0.01, total_steps=1000)
    >>> optimizer = keras.optimizers.Adam(learning_rate=schedule)
    >>> round(float(schedule(0)), 6), round(float(schedule(299)), 6)
    (0.0004, 0.01)
    """

    def __init__(
        self,
        max_learning_rate,
        total_steps,
        pct_start=0.3,
        anneal_strategy="cos",
        div_factor=25.0,
        final_div_factor=1e4,
        three_phase=False,
        start_step=0,
        name="OneCycle",
        hold_step=None,
    ):
        self._set_peak(max_learning_rate)
        v.check_number("div_factor", div_factor, low=0, low_inclusive=False)
        v.check_number("final_div_factor", final_div_factor, low=0, low_inclusive=False)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)
        super().__init__(total_steps, pct_start, anneal_strategy, three_phase, start_step,
                         hold_step, name)

    @property
    def initial_learning_rate(self):
        """The learning rate at step 0."""
        return self.max_learning_rate / self.div_factor

    @property
    def final_learning_rate(self):
        """The learning rate at the last step and after."""
        return self.initial_learning_rate / self.final_div_factor

    def _phase_values(self):
        initial, peak = self.initial_learning_rate, self.max_learning_rate
        final = self.final_learning_rate
        if self.three_phase:
            return [(initial, peak), (peak, initial), (initial, final)]
        return [(initial, peak), (peak, final)]

    def get_config(self):
        config = super().get_config()
        config.update({"div_factor": self.div_factor, "final_div_factor": self.final_div_factor})
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class OneCycleMomentum(_OneCycleBase):
    """The momentum half of 1cycle, step for step equal to PyTorch's `OneCycleLR`.

    Momentum (or Adam's `beta_1`) moves against the learning rate: from
    `max_momentum` down to `base_momentum` while the learning rate warms up, and
    back up to `max_momentum` while it anneals. With `three_phase=True` the
    third phase holds `max_momentum`. Values are those PyTorch's
    `OneCycleLR(cycle_momentum=True)` writes into `momentum` / `betas[0]`.

    Keras optimizers cannot take a momentum schedule (`SGD` wants a float and
    `Adam(beta_1=callable)` fails), so pass this to the optimizers of
    `keras_recipes.optimizers`, which evaluate it inside the compiled train step.

    Args:
        total_steps: int, the number of optimizer steps in the cycle.
        pct_start: float in (0, 1), as in `OneCycle`. Defaults to `0.3`.
        anneal_strategy: str, `"cos"` or `"linear"`. Defaults to `"cos"`.
        base_momentum: float in [0, 1), the lowest momentum. Defaults to `0.85`.
        max_momentum: float in [0, 1), the highest momentum. Defaults to `0.95`.
        three_phase: bool, as in `OneCycle`. Defaults to `False`.
        start_step: int, as in `OneCycle`. Defaults to `0`.
        name: str, optional name. Defaults to `"OneCycleMomentum"`.
        hold_step: int or None, as in `OneCycle`. Defaults to `None`.

    Returns:
        A step schedule (a `keras.optimizers.schedules.LearningRateSchedule`
        subclass, so Keras serializes it like one).

    Raises:
        ValueError: for bad arguments, as `OneCycle`, or if
            `base_momentum > max_momentum`.

    Example:

    >>> import keras_recipes
    >>> from keras_recipes.schedules import OneCycle, OneCycleMomentum
    >>> optimizer = keras_recipes.optimizers.Adam(
    ...     learning_rate=OneCycle(0.01, total_steps=1000),
    ...     beta_1=OneCycleMomentum(total_steps=1000),
    ... )
    """

    def __init__(
        self,
        total_steps,
        pct_start=0.3,
        anneal_strategy="cos",
        base_momentum=0.85,
        max_momentum=0.95,
        three_phase=False,
        start_step=0,
        name="OneCycleMomentum",
        hold_step=None,
    ):
        v.check_number("base_momentum", base_momentum, low=0, high=1, high_inclusive=False)
        v.check_number("max_momentum", max_momentum, low=0, high=1, high_inclusive=False)
        if base_momentum > max_momentum:
            v.fail(
                "base_momentum",
                base_momentum,
                f"<= max_momentum={max_momentum}",
            )
        self.base_momentum = float(base_momentum)
        self.max_momentum = float(max_momentum)
        super().__init__(total_steps, pct_start, anneal_strategy, three_phase, start_step,
                         hold_step, name)

    def _phase_values(self):
        low, high = self.base_momentum, self.max_momentum
        if self.three_phase:
            return [(high, low), (low, high), (high, high)]
        return [(high, low), (low, high)]

    def get_config(self):
        config = super().get_config()
        config.update({"base_momentum": self.base_momentum, "max_momentum": self.max_momentum})
        return config
