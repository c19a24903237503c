"""Keras optimizers whose momentum (SGD, RMSprop) or `beta_1` (Adam family) may follow a
schedule, and Adagrad, which keeps the state of the schedules it follows.

Keras 3 evaluates a `learning_rate` schedule from `optimizer.iterations` inside the
compiled train step, but not momentum: `SGD(momentum=...)` must be a float and
`Adam(beta_1=callable)` fails at the first step. A callback that writes
`optimizer.momentum` between batches has no effect on compiled training at all.
These subclasses change one thing: the hyperparameter may also be a step schedule
(for example `keras_recipes.schedules.OneCycleMomentum`), evaluated from
`iterations` once per step, at the start of `apply`, and that value read wherever the
update step reads the hyperparameter (outside a step, a read evaluates it at the current
`iterations`). Everything else is Keras's code.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_recipes import _keras_internals as internals
from keras_recipes import _validation as v

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Adamax", "Nadam", "RMSprop", "followed_schedules",
           "raw_hyperparameter"]

_PACKAGE = "keras_recipes"
_Schedule = keras.optimizers.schedules.LearningRateSchedule
_MISSING = object()
# Where `apply` keeps the scheduled hyperparameters' values of the step it is taking.
_STEP_VALUES = "_scheduled_values_of_this_step"


class _ScheduledHyperparameter:
    """A descriptor: stores a float or a schedule, reads as its value at the current step."""

    def __init__(self, name):
        self.name = name
        self.slot = f"_{name}_value"

    def __get__(self, optimizer, owner=None):
        if optimizer is None:
            return self
        value = internals.instance_attribute(optimizer, self.slot, _MISSING)
        if value is _MISSING:
            raise AttributeError(self.name)
        if isinstance(value, _Schedule):
            this_step = internals.instance_attribute(optimizer, _STEP_VALUES) or {}
            return this_step[self.name] if self.name in this_step \
                else value(optimizer.iterations)
        return value

    def __set__(self, optimizer, value):
        if not isinstance(value, _Schedule):
            v.check_number(self.name, value, low=0, high=1, high_inclusive=False)
            value = float(value)
        internals.set_instance_attribute(optimizer, self.slot, value)


def raw_hyperparameter(optimizer, name):
    """The float or schedule an optimizer was given for `name`, not its current value."""
    return internals.instance_attribute(optimizer, f"_{name}_value")


def followed_schedules(optimizer):
    """The schedules one optimizer follows: its learning rate's and those of its
    scheduled hyperparameters (momentum / `beta_1`), in that order.

    Args:
        optimizer: a `keras.optimizers.Optimizer` (a `LossScaleOptimizer` is
            unwrapped; a `MultiOptimizer` has none of its own).

    Returns:
        A list of `LearningRateSchedule`s, possibly empty.
    """
    optimizer = internals.inner_optimizer(optimizer)
    found = [internals.learning_rate_object(optimizer)]
    found += [raw_hyperparameter(optimizer, name) for name in getattr(optimizer, "_scheduled", ())]
    return [value for value in found if isinstance(value, _Schedule)]


def _stateful_schedules(optimizer):
    return [s for s in followed_schedules(optimizer) if hasattr(s, "build_state")]


def _own_states(optimizer):
    """The schedules of `optimizer` that read a variable of it, and those variables."""
    variables = optimizer.variables
    owned = [s for s in _stateful_schedules(optimizer)
             if any(s.state is variable for variable in variables)]
    return owned, [s.state for s in owned]


def _uses_momentum(optimizer):
    """Whether an optimizer's momentum is a schedule or a float other than 0 (Keras's
    SGD and RMSprop compare the float with 0 in Python, which a schedule cannot be)."""
    value = raw_hyperparameter(optimizer, "momentum")
    return isinstance(value, _Schedule) or value != 0


class _ScheduledMixin:
    """Serialization of the scheduled hyperparameters named in `_scheduled`, and the
    state of the schedules that keep theirs in the optimizer (`build_state`).

    Such a schedule (the 1cycle ones) gets a variable of the optimizer when it is
    built, after every other variable, so that the compiled train step reads its
    span and values instead of baking them in: a new `fit` changes them without
    tracing the step again.
    """

    _scheduled: tuple[str, ...] = ()

    def apply(self, grads, trainable_variables=None):
        # Keras's update steps read `beta_1` / `momentum` once or more per variable: a
        # schedule would be evaluated (and, in a compiled step, traced) as many times,
        # hundreds of small ops per step. Evaluated once per step instead: the same values,
        # since `iterations` only moves at the end of `apply`.
        schedules = {name: raw_hyperparameter(self, name) for name in self._scheduled}
        values = {name: schedule(self.iterations) for name, schedule in schedules.items()
                  if isinstance(schedule, _Schedule)}
        internals.set_instance_attribute(self, _STEP_VALUES, values)
        try:
            return super().apply(grads, trainable_variables)
        finally:
            internals.set_instance_attribute(self, _STEP_VALUES, None)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._build_schedule_states()

    def _build_schedule_states(self):
        for schedule in _stateful_schedules(self):
            schedule.build_state(self)

    def load_own_variables(self, store):
        schedules, states = _own_states(self)
        if states and len(store.keys()) == len(self.variables) - len(states):
            # Saved before the schedules kept state: the other variables come
            # first, in the same order.
            others = [var for var in self.variables if not any(var is s for s in states)]
            for i, variable in enumerate(others):
                variable.assign(store[str(i)])
        else:
            super().load_own_variables(store)
        for schedule in schedules:
            schedule.sync_state()

    def get_config(self):
        config = super().get_config()
        for name in self._scheduled:
            value = raw_hyperparameter(self, name)
            if isinstance(value, _Schedule):
                value = keras.saving.serialize_keras_object(value)
            config[name] = value
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for name in cls._scheduled:
            if isinstance(config.get(name), dict):
                config[name] = keras.saving.deserialize_keras_object(
                    config[name], custom_objects=custom_objects
                )
        return super().from_config(config, custom_objects=custom_objects)


class _ScheduledBeta1(_ScheduledMixin):
    """The Adam family's `beta_1`: a float or a step schedule."""

    _scheduled = ("beta_1",)
    beta_1 = _ScheduledHyperparameter("beta_1")


class _ScheduledMomentum(_ScheduledMixin):
    """SGD's and RMSprop's `momentum`: a float or a step schedule, and its variables."""

    _scheduled = ("momentum",)
    momentum = _ScheduledHyperparameter("momentum")

    def _build_momentums(self, variables):
        """One momentum variable per model variable, or none for a float momentum of 0, as
        Keras builds them (its `build` compares the momentum with 0, which a schedule
        cannot be)."""
        self.momentums = []
        if _uses_momentum(self):
            self.momentums = self.add_optimizer_variables(variables, "momentum")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Adam(_ScheduledBeta1, keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose `beta_1` may follow a schedule.

    Identical to Keras's Adam, except that `beta_1` may also be a step schedule
    such as `keras_recipes.schedules.OneCycleMomentum`, evaluated inside the
    compiled train step from `iterations` (Keras documents a callable `beta_1`
    but fails on one). The bias correction uses the current `beta_1`, as
    PyTorch's Adam does when `OneCycleLR` cycles it.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        beta_1: float in [0, 1) or a step schedule. Defaults to `0.9`.
        **kwargs: every other argument of `keras.optimizers.Adam`.

    Example:

    >>> from keras_recipes.optimizers import Adam
    >>> from keras_recipes.schedules import OneCycle, OneCycleMomentum
    >>> optimizer = Adam(OneCycle(1e-2, total_steps=500), beta_1=OneCycleMomentum(500))
    """


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AdamW(_ScheduledBeta1, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` whose `beta_1` may follow a schedule.

    As `keras_recipes.optimizers.Adam`, with decoupled weight decay.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        weight_decay: float. Defaults to `0.004`.
        beta_1: float in [0, 1) or a step schedule. Defaults to `0.9`.
        **kwargs: every other argument of `keras.optimizers.AdamW`.

    Example:

    >>> from keras_recipes.optimizers import AdamW
    >>> from keras_recipes.schedules import OneCycleMomentum
    >>> optimizer = AdamW(1e-3, beta_1=OneCycleMomentum(total_steps=500))
    """


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Nadam(_ScheduledBeta1, keras.optimizers.Nadam):
    """`keras.optimizers.Nadam` whose `beta_1` may follow a schedule.

    As `keras_recipes.optimizers.Adam`; Nadam's momentum cache (`u_t`) is
    built from the current `beta_1` at every step.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        beta_1: float in [0, 1) or a step schedule. Defaults to `0.9`.
        **kwargs: every other argument of `keras.optimizers.Nadam`.

    Example:

    >>> from keras_recipes.optimizers import Nadam
    >>> from keras_recipes.schedules import OneCycleMomentum
    >>> optimizer = Nadam(1e-3, beta_1=OneCycleMomentum(total_steps=500))
    """


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SGD(_ScheduledMomentum, keras.optimizers.SGD):
    """`keras.optimizers.SGD` whose `momentum` may follow a schedule.

    Keras's SGD insists on a Python float momentum. This one also takes a step
    schedule such as `keras_recipes.schedules.OneCycleMomentum`, evaluated inside
    the compiled train step. The update rule is Keras's:
    `velocity = momentum * velocity - learning_rate * g; w += velocity` (or its
    Nesterov form).

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.01`.
        momentum: float in [0, 1) or a step schedule. Defaults to `0.0`.
        nesterov: bool. Defaults to `False`.
        **kwargs: every other argument of `keras.optimizers.SGD`.

    Example:

    >>> from keras_recipes.optimizers import SGD
    >>> from keras_recipes.schedules import OneCycle, OneCycleMomentum
    >>> optimizer = SGD(OneCycle(0.1, total_steps=500), momentum=OneCycleMomentum(500))
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        # Keras's SGD validates momentum as a float; hand it a placeholder and
        # store the real value (float or schedule) through the descriptor.
        super().__init__(learning_rate=learning_rate, momentum=0.0, nesterov=nesterov, **kwargs)
        self.momentum = momentum

    def build(self, variables):
        # Keras's SGD.build compares the momentum with 0, which a schedule cannot be.
        if self.built:
            return
        keras.optimizers.Optimizer.build(self, variables)
        self._build_momentums(variables)
        self._build_schedule_states()

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if not _uses_momentum(self):
            self.assign_sub(variable, ops.multiply(gradient, learning_rate))
            return
        m = self.momentums[self._get_variable_index(variable)]
        momentum = ops.cast(self.momentum, variable.dtype)
        velocity = ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, learning_rate))
        self.assign(m, velocity)
        if self.nesterov:
            self.assign_add(
                variable,
                ops.subtract(ops.multiply(velocity, momentum),
                             ops.multiply(gradient, learning_rate)),
            )
        else:
            self.assign_add(variable, velocity)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Adamax(_ScheduledBeta1, keras.optimizers.Adamax):
    """`keras.optimizers.Adamax` whose `beta_1` may follow a schedule.

    As `keras_recipes.optimizers.Adam`: the bias correction uses the current
    `beta_1`.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        beta_1: float in [0, 1) or a step schedule. Defaults to `0.9`.
        **kwargs: every other argument of `keras.optimizers.Adamax`.

    Example:

    >>> from keras_recipes.optimizers import Adamax
    >>> from keras_recipes.schedules import OneCycleMomentum
    >>> optimizer = Adamax(2e-3, beta_1=OneCycleMomentum(total_steps=500))
    """


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Adagrad(_ScheduledMixin, keras.optimizers.Adagrad):
    """`keras.optimizers.Adagrad`, keeping the state of the schedules it follows.

    Adagrad has no momentum to schedule: this class only gives a learning-rate
    schedule of `keras_recipes.schedules` its state in the optimizer (so that a
    new span needs no new train step), as the other optimizers here do. The
    chapter advises against Adagrad for deep networks (its learning rate decays
    too fast); `diagnose` says so.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        **kwargs: every other argument of `keras.optimizers.Adagrad`.

    Example:

    >>> from keras_recipes.optimizers import Adagrad
    >>> from keras_recipes.schedules import ExponentialDecay
    >>> optimizer = Adagrad(ExponentialDecay(0.01, total_steps=500))
    """


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RMSprop(_ScheduledMomentum, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` whose `momentum` may follow a schedule.

    Keras's RMSprop decides in Python whether it has a momentum (`momentum > 0`),
    which a schedule cannot answer. This one also takes a step schedule such as
    `keras_recipes.schedules.OneCycleMomentum`, evaluated inside the compiled
    train step. The update rule is Keras's: `velocity = rho * velocity + (1 - rho)
    * g**2`, `increment = learning_rate * g / sqrt(velocity + epsilon)` (centered:
    minus the squared mean gradient), `m = momentum * m + increment; w -= m`.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        rho: float. Defaults to `0.9`.
        momentum: float in [0, 1) or a step schedule. Defaults to `0.0`.
        **kwargs: every other argument of `keras.optimizers.RMSprop`.

    Example:

    >>> from keras_recipes.optimizers import RMSprop
    >>> from keras_recipes.schedules import OneCycle, OneCycleMomentum
    >>> optimizer = RMSprop(OneCycle(1e-2, total_steps=500), momentum=OneCycleMomentum(500))
    """

    def build(self, variables):
        # Keras's RMSprop.build, its variables in the same order (files saved with it load).
        if self.built:
            return
        keras.optimizers.Optimizer.build(self, variables)
        self.velocities = self.add_optimizer_variables(variables, "velocity")
        self._build_momentums(variables)
        self.average_gradients = []
        if self.centered:
            self.average_gradients = self.add_optimizer_variables(variables, "average_gradient")
        self._build_schedule_states()

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        index = self._get_variable_index(variable)
        velocity = self.velocities[index]
        rho = self.rho
        self.assign(velocity, ops.add(ops.multiply(rho, velocity),
                                      ops.multiply(1 - rho, ops.square(gradient))))
        if self.centered:
            average = self.average_gradients[index]
            self.assign(average, ops.add(ops.multiply(rho, average),
                                         ops.multiply(1 - rho, gradient)))
            denominator = velocity - ops.square(average) + self.epsilon
        else:
            denominator = ops.add(velocity, self.epsilon)
        increment = ops.divide(ops.multiply(learning_rate, gradient), ops.sqrt(denominator))
        if not _uses_momentum(self):
            self.assign_sub(variable, increment)
            return
        m = self.momentums[index]
        momentum = ops.cast(self.momentum, variable.dtype)
        self.assign(m, ops.add(ops.multiply(momentum, m), increment))
        self.assign_sub(variable, m)
