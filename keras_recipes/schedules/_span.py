"""What every schedule a `fit` stretches over its own steps shares: its span, the step from
which it holds its value, and the optimizer variable the compiled step reads them from.

The 1cycle (`one_cycle.py`) and the decays (`decay.py`) are built on `SpanSchedule`;
`keras_recipes.callbacks.one_cycle_span.OneCycleSpan` sets the span of each `fit`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_recipes import _validation as v

__all__ = ["PeakedSchedule", "SpanSchedule"]


class SpanSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A step schedule over a span of optimizer steps, its numbers in an optimizer variable.

    The schedule runs over `total_steps` steps from optimizer step `start_step`:
    before it the schedule gives its first value, after its last step (or after
    `hold_step`, counted from `start_step`) it holds the value it had there. Its
    numbers (span and values) are either Python constants or, once `build_state`
    has been called by the optimizer that follows the schedule, a float32
    variable of that optimizer: the compiled train step then *reads* them, so a
    new span (`set_span`) or peak changes the values without tracing the step
    again. The variable is an optimizer variable, so it is saved with the
    optimizer, restored by `BackupAndRestore`, and threaded through JAX's
    stateless train step. The Python attributes stay the definition
    (`get_config`); the variable always mirrors them.

    Subclasses give `_shape_constants()` (their numbers, in Python float64) and
    `_evaluate(position, constants)` (the value at `position`, a float32 tensor
    of steps from the start, with `constants` the whole list: span first).
    """

    def __init__(self, total_steps, start_step, hold_step, name):
        self.name = name
        self._state = None
        self._check_span(total_steps, start_step, hold_step)
        self._total_steps, self._start_step = int(total_steps), int(start_step)
        self._hold_step = None if hold_step is None else int(hold_step)

    # --- the span ------------------------------------------------------------------------

    @property
    def total_steps(self):
        """int, the number of optimizer steps the schedule runs over (see `set_span`)."""
        return self._total_steps

    @property
    def start_step(self):
        """int, the optimizer step at which the schedule begins (see `set_span`)."""
        return self._start_step

    @property
    def hold_step(self):
        """int or None, the step (from `start_step`) after which the value is held."""
        return self._hold_step

    def _check_span(self, total_steps, start_step, hold_step):
        v.check_int("total_steps", total_steps, min_value=1)
        v.check_int("start_step", start_step, min_value=0)
        v.check_int("hold_step", hold_step, min_value=0, allow_none=True)

    def set_span(self, total_steps, start_step, hold_step=None):
        """Moves the schedule to `total_steps` steps starting at optimizer step `start_step`.

        Validated as the constructor validates them; on error the schedule is left
        as it was. A compiled train step that reads the schedule's state (see
        `build_state`) follows the new span without being traced again.

        Args:
            total_steps: int, the number of optimizer steps of the schedule.
            start_step: int, the optimizer step at which it begins.
            hold_step: int or None, the step (counted from `start_step`) from which
                the value stays what it is there (`swa_epochs`' constant rate).
                Defaults to `None` (the schedule runs to its end).

        Raises:
            ValueError: as the constructor, e.g. when a phase would last no step.
        """
        self._check_span(total_steps, start_step, hold_step)
        self._total_steps, self._start_step = int(total_steps), int(start_step)
        self._hold_step = None if hold_step is None else int(hold_step)
        self._update_state()

    # --- the state the compiled step reads -------------------------------------------------

    def _constants(self):
        """`[start_step, last position evaluated]` and the subclass's numbers, in float64."""
        last = self._total_steps - 1
        if self._hold_step is not None:
            last = min(last, self._hold_step)
        return [float(self._start_step), float(last)] + list(self._shape_constants())

    def _shape_constants(self):
        raise NotImplementedError

    def _evaluate(self, position, constants):
        raise NotImplementedError

    @property
    def state(self):
        """The optimizer variable the schedule evaluates from (see `build_state`), or
        None while it evaluates from Python constants."""
        return self._state

    def build_state(self, optimizer):
        """Creates the schedule's state as a variable of `optimizer` and reads from it.

        Called by the optimizers of `keras_recipes.optimizers` when they are built
        (so within the distribution scope that builds them), once for each schedule
        they follow. A schedule given to several optimizers reads the state of the
        last one built; give each optimizer its own schedule.

        Args:
            optimizer: the `keras.optimizers.Optimizer` that follows the schedule.

        Returns:
            The new variable (float32, one value per constant).
        """
        constants = self._constants()
        self._state = optimizer.add_variable(
            shape=(len(constants),),
            initializer=lambda shape, dtype: ops.convert_to_tensor(constants, dtype=dtype),
            dtype="float32",
            name=f"{self.name}_state",
        )
        return self._state

    def sync_state(self):
        """Writes the schedule's definition (span, values) into its state variable.

        For the optimizer that owns the variable, after loading variables saved
        with another definition: the Python attributes, which `get_config` saves,
        stay the truth.
        """
        self._update_state()

    def _update_state(self):
        if self._state is not None:
            self._state.assign(np.asarray(self._constants(), dtype="float32"))

    def __call__(self, step):
        # The same float32 numbers before `build_state` (a constant) and after (the state):
        # computed in float64, rounded once, so both give the same values to the last bit.
        if self._state is None:
            constants = ops.convert_to_tensor(np.asarray(self._constants(), "float32"))
        else:
            constants = self._state.value
        position = ops.cast(step, "float32") - constants[0]
        # Before its start the schedule gives its first value; past its end (or its hold
        # step) it holds its last instead of failing.
        position = ops.minimum(ops.maximum(position, 0.0), constants[1])
        return self._evaluate(position, constants)

    def get_config(self):
        return {"total_steps": self.total_steps, "start_step": self.start_step,
                "hold_step": self.hold_step, "name": self.name}


class PeakedSchedule:
    """Mixed into a `SpanSchedule` of learning rates that peaks at `max_learning_rate`,
    which may be changed in place (`set_max_learning_rate`, for `learning_rate="find"`).

    The subclass calls `_set_peak` in its constructor, before `SpanSchedule.__init__`.
    """

    def _set_peak(self, max_learning_rate):
        v.check_number("max_learning_rate", max_learning_rate, low=0, low_inclusive=False)
        self._max_learning_rate = float(max_learning_rate)

    @property
    def max_learning_rate(self):
        """float, the peak learning rate (see `set_max_learning_rate`)."""
        return self._max_learning_rate

    def set_max_learning_rate(self, max_learning_rate):
        """Sets the peak learning rate; every other rate of the schedule follows it.

        As `set_span`, a compiled train step that reads the schedule's state follows
        the new peak without being traced again.

        Args:
            max_learning_rate: float > 0, the new peak.

        Raises:
            ValueError: if `max_learning_rate` is not a number > 0.
        """
        self._set_peak(max_learning_rate)
        self._update_state()

    def get_config(self):
        return {"max_learning_rate": self.max_learning_rate, **super().get_config()}
