"""`Recipe`: every training option of keras-recipes as one validated value."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any

import keras

from keras_recipes import _validation as v
from keras_recipes.recipe import _execution as execution
from keras_recipes.recipe import _optimizers as optimizers
from keras_recipes.recipe import _schedules as schedules
from keras_recipes.recipe._fit_callbacks import fit_callbacks

__all__ = ["Recipe", "TRAINING_OPTIONS"]

# The settings of a run rather than of the recipe: where it backs up and on which devices
# it trains. They are not saved with a model (a model loaded elsewhere never resumes
# from, or deletes, a folder of the machine it was saved on).
_RUN_SETTINGS = ("backup_dir", "distribution")


@keras.saving.register_keras_serializable(package="keras_recipes")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Recipe:
    """How to train a network, after Géron's chapter 11: optimizer, schedule, stopping.

    A recipe is a value: every option is checked once, when it is made, with a
    message that names the option, and it never changes (`replace` makes a new
    one). It makes the optimizer with its schedule (`make_optimizer`) and hands
    out the callbacks of each `fit` (early stopping that waits for the 1cycle to
    anneal and restores the best weights, the schedule stretched over that `fit`'s
    steps, `ReduceLROnPlateau` for `schedule="plateau"`, the NaN stop, weight
    averaging and the backup). The factories (`build_default_dnn`, ...),
    `compile_recipe` and `build_transfer_model` make one from their keyword
    arguments, or take yours as `recipe=`; the model keeps it as `model.recipe`
    and saves it with itself; `fine_tune` trains both phases with it.

    Example:

    >>> import keras, keras_recipes
    >>> recipe = keras_recipes.Recipe(optimizer="adam", learning_rate=3e-3, clipnorm=1.0)
    >>> cosine = keras_recipes.Recipe(optimizer="adamw", schedule="cosine",
    ...                               schedule_kwargs={"warmup_fraction": 0.1}, swa_epochs=5)
    >>> cnn = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
    ...                         keras.layers.Flatten(), keras.layers.Dense(3)])
    >>> model = keras_recipes.compile_recipe(
    ...     cnn, recipe=recipe, loss="sparse_categorical_crossentropy")
    >>> model.recipe.clipnorm
    1.0
    >>> recipe.replace(learning_rate=1e-3).learning_rate
    0.001

    Args:
        optimizer: str, one of the chapter's optimizers: `"sgd"` (plain),
            `"momentum"` (SGD with momentum 0.9), `"nesterov"` (the same,
            Nesterov's form), `"adagrad"` (which the chapter advises against for
            deep networks: `diagnose` says so), `"rmsprop"`, `"adam"`,
            `"adamax"`, `"nadam"` or `"adamw"`; or a `keras.optimizers.Optimizer`
            instance, used as given (by one model). Under the 1cycle the momentum
            cycles wherever the optimizer has one: SGD's (`"momentum"`,
            `"nesterov"`), RMSprop's `momentum`, the Adam family's `beta_1`;
            plain SGD and AdaGrad have none. Defaults to `"nadam"`.
        learning_rate: float, the peak of the schedule (or the constant rate), or
            `"find"`: the first `fit` runs `keras_recipes.find_learning_rate` on
            its training data and uses the suggestion (the model's recipe then
            holds the rate found): under the 1cycle its `"one_cycle"` rule (a
            fifth of the rate at the lowest loss averaged without lag), otherwise
            `"valley"`. Defaults to `1e-3`.
        schedule: str, how the learning rate changes. Stretched over exactly
            the steps of each `fit` (a resumed `fit` continues it), evaluated
            inside the compiled step, peaking at `learning_rate` and never
            rising after a warm-up: `"one_cycle"` (the 1cycle over learning
            rate and momentum / `beta_1`), `"cosine"` (a linear warm-up, then a
            cosine decay to near zero: the AdamW + cosine template),
            `"exponential"` (the chapter's `lr0 * 0.1 ** (t / s)`), `"power"`
            (`lr0 / (1 + t / s) ** c`) or `"piecewise"` (constant, divided by 10
            at fixed fractions of the `fit`). Or: `"plateau"` (a constant rate
            lowered by `keras.callbacks.ReduceLROnPlateau(factor=0.5,
            patience=5)` when the validation loss stalls), `"constant"`, or
            `"auto"`: `"one_cycle"` for an optimizer name, `"constant"` for an
            instance. Defaults to `"auto"`.
        schedule_kwargs: dict or None, the schedule's settings, each with the
            default given here (unknown names are refused, with the closest):
            `"one_cycle"`: `pct_start=0.3`, `anneal_strategy="cos"`,
            `div_factor=25.0`, `final_div_factor=1e4`, `three_phase=False`,
            `base_momentum=0.85`, `max_momentum=0.95`
            (`keras_recipes.schedules.OneCycle`); `"cosine"`:
            `warmup_fraction=0.05` (of the steps, warming up from 0),
            `alpha=0.0` (the floor, a fraction of the peak)
            (`WarmupCosineDecay`); `"exponential"`: `decay_rate=0.1`,
            `decay_fraction=1.0` (`s` as a fraction of the `fit`: the rate ends
            at a tenth) (`ExponentialDecay`); `"power"`: `decay_fraction=0.25`,
            `power=1.0` (`c`) (`PowerDecay`); `"piecewise"`:
            `boundaries=(0.5, 0.75)` (fractions of the `fit`), `values=(1.0,
            0.1, 0.01)` (multiples of the peak) (`PiecewiseConstantDecay`);
            `"plateau"`: `factor=0.5`, `patience=5`; `"constant"`: none.
            Defaults to `None` (the defaults).
        total_steps: int or None, the length of the schedule in optimizer
            steps; `None` lets each `fit` set it to its own steps.
            Defaults to `None`.
        clipnorm: float or None, clip each gradient to this norm (the chapter's
            advice for recurrent networks). Defaults to `None`.
        optimizer_kwargs: dict or None, more arguments of the named optimizer
            (`weight_decay`, `use_ema`, `gradient_accumulation_steps`, ...); not
            the recipe's own (`learning_rate`, `momentum`, `beta_1`, `clipnorm`).
            `gradient_accumulation_steps` is refused with the 1cycle (Keras's
            learning-rate schedule then counts batches, the momentum schedule
            optimizer updates). Defaults to `None`.
        early_stopping_patience: int or None, epochs without a better
            `val_loss` before `fit` stops (the best weights restored). With a
            1cycle only the second half of the epochs is watched (the
            validation loss rises while the rate is high and recovers as it
            anneals); with `"cosine"` the epochs after its warm-up (the rate
            only falls from there, as under the other decays, which are watched
            from the start); never the epochs `swa_epochs` averages. `None`
            disables early stopping. Defaults to `10`.
        swa_epochs: int >= 1 or None, stochastic weight averaging
            (`keras_recipes.callbacks.swa.StochasticWeightAveraging`): the
            weights `fit` leaves are the mean of the weights at the end of its
            last `swa_epochs` epochs, with the BatchNormalization statistics
            recomputed for them on the `fit`'s training data (one pass in
            training mode, as PyTorch's `update_bn`); the last epoch's
            validation scores that average, and early stopping restores nothing
            over it. During those epochs the rate is constant: a schedule
            stretched over the `fit` holds the value it has where they start (the
            SWA paper's constant rate; with a fixed `total_steps` the schedule
            runs as given, and under `"plateau"` `ReduceLROnPlateau` may still
            lower it). The running average is backed up with `backup_dir`. Keras 3
            has no SWA (TensorFlow Addons' unmaintained wrapper skipped the
            BatchNormalization step). `None`: no averaging. Defaults to `None`.
        backup_dir: str, path or None, a folder where `fit` backs up the
            training state after each epoch, so that a killed run started again
            resumes where it was. Not saved with a model. Defaults to `None`.
        distribution: None, a `tf.distribute.Strategy` (TensorFlow) or a
            `keras.distribution` distribution (JAX): the model, the optimizer and
            its schedules are created in its scope. Not saved with a model.
            Defaults to `None`.
        steps_per_execution: int >= 1 or `"auto"`, the batches run per compiled
            call: `"auto"` is 32, or 1 on PyTorch (whose Keras trainer allows
            only 1) and under a `tf.distribute` strategy (where Keras 3.15 and
            3.16 fail with more). Callbacks with per-batch hooks still see every
            batch, and a `steps_per_epoch`, `validation_steps` or `steps` is run
            exactly (fewer batches per call where needed). Defaults to `"auto"`.
        jit_compile: bool or `"auto"`, XLA compilation: `"auto"` is Keras's
            choice, except on TensorFlow, where it is XLA for models without
            convolution layers also on a machine without an accelerator (faster
            there for dense and recurrent networks, slower for convolutional
            ones: measured with `benchmarks/bench_speed.py --only models`).
            Defaults to `"auto"`.
        one_cycle: bool or `"auto"`, deprecated: `True` is
            `schedule="one_cycle"`, `False` is `schedule="constant"` (with a
            `DeprecationWarning`). Not kept: `schedule` holds the choice.
            Defaults to `"auto"`.

    Raises:
        ValueError: for out-of-range values, unknown names, or combinations the
            recipe cannot run; the message names the option.
        TypeError: for options of the wrong type.
    """

    optimizer: Any = "nadam"
    learning_rate: Any = 1e-3
    schedule: str = "auto"
    schedule_kwargs: dict | None = None
    total_steps: int | None = None
    clipnorm: float | None = None
    optimizer_kwargs: dict | None = None
    early_stopping_patience: int | None = 10
    swa_epochs: int | None = None
    backup_dir: Any = None
    distribution: Any = None
    steps_per_execution: Any = "auto"
    jit_compile: Any = "auto"
    one_cycle: dataclasses.InitVar[Any] = "auto"

    def __post_init__(self, one_cycle):
        # A frozen dataclass sets its own fields with object.__setattr__: here, the
        # options normalised as they are checked (names lower-cased, "auto" resolved).
        object.__setattr__(self, "schedule", optimizers.resolve_schedule(self, one_cycle))
        object.__setattr__(self, "optimizer", optimizers.check_optimizer(self))
        object.__setattr__(self, "optimizer_kwargs",
                           optimizers.check_optimizer_kwargs(self, self.schedule))
        object.__setattr__(self, "schedule_kwargs", schedules.check_schedule_kwargs(self))
        v.check_int("early_stopping_patience", self.early_stopping_patience, min_value=0,
                    allow_none=True)
        v.check_int("swa_epochs", self.swa_epochs, min_value=1, allow_none=True)
        backup_dir = self.backup_dir
        if backup_dir is not None:
            if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
                v.fail("backup_dir", backup_dir, "None or a folder path", error=TypeError)
            object.__setattr__(self, "backup_dir", os.fspath(backup_dir))
        execution.distribution_scope(self.distribution)  # type and backend
        execution.check_execution(self)
        for name in ("learning_rate", "clipnorm"):
            value = getattr(self, name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))

    # --- what the recipe means -------------------------------------------------------------

    @property
    def stretches_one_cycle(self):
        """bool, whether each `fit` stretches the 1cycle over its own steps."""
        return self.schedule == "one_cycle" and self.total_steps is None

    @property
    def stretches_schedule(self):
        """bool, whether each `fit` stretches the schedule (1cycle or decay) over its own
        steps."""
        return self.schedule in schedules.SPAN_SCHEDULES and self.total_steps is None

    @property
    def finds_learning_rate(self):
        """bool, whether the next `fit` runs the LR range finder first (`"find"`)."""
        return self.learning_rate == optimizers.FIND

    @property
    def finder_method(self):
        """str, the range test's rule that `learning_rate="find"` trains at: `"one_cycle"`
        (a fifth of the lag-free loss minimum) under the 1cycle, `"valley"` under the
        other schedules."""
        return "one_cycle" if self.schedule == "one_cycle" else "valley"

    @property
    def named_optimizer(self):
        """str or None, the optimizer's name (that of an instance's class, if known)."""
        if isinstance(self.optimizer, str):
            return self.optimizer
        return optimizers.optimizer_name(self.optimizer)

    def replace(self, **changes):
        """A new recipe with some options changed, checked as a new one is.

        Args:
            **changes: options and their new values.

        Returns:
            A `Recipe`.

        Raises:
            TypeError: for an unknown option.
        """
        unknown = sorted(set(changes) - set(TRAINING_OPTIONS))
        if unknown:
            v.fail(unknown[0], changes[unknown[0]], "one of the recipe's options ("
                   + ", ".join(TRAINING_OPTIONS) + ")",
                   hint=v.did_you_mean(unknown[0], {o: o for o in TRAINING_OPTIONS}),
                   error=TypeError)
        return dataclasses.replace(self, **changes)

    # --- what the recipe makes --------------------------------------------------------------

    def scope(self):
        """A context manager for the distribution's scope (a null context without one)."""
        if self.distribution is None:
            return contextlib.nullcontext()
        return self.distribution.scope()

    def make_optimizer(self):
        """The optimizer to compile with: the named one on the recipe's schedule (the
        1cycle over learning rate and momentum / `beta_1`), or the instance given.

        Call it inside `scope()` when the recipe has a distribution.
        """
        if isinstance(self.optimizer, keras.optimizers.Optimizer):
            return self.optimizer
        return optimizers.make_optimizer(self)

    def compile_arguments(self, model=None):
        """`steps_per_execution` and `jit_compile` for `model.compile`, `"auto"` resolved
        (XLA's by the kinds of layers of `model`, when given)."""
        steps_per_execution, jit_compile = execution.resolve_execution(self, model)
        return {"steps_per_execution": steps_per_execution, "jit_compile": jit_compile}

    def callbacks(self, model, callbacks=None, *, has_validation=False, initial_epoch=0,
                  epochs=1, data=None):
        """The callbacks of one `fit` of `model`: yours, then the recipe's.

        Args:
            model: the compiled model `fit` trains.
            callbacks: list of `keras.callbacks.Callback` or None, yours.
            has_validation: bool, whether `fit` has validation data.
            initial_epoch: int, the `initial_epoch` of `fit`.
            epochs: int, the `epochs` of `fit`.
            data: dict or None, `fit`'s training data (`x`, `batch_size`,
                `steps_per_epoch`, `validation_split`, `validation_data`): with
                `swa_epochs`, the BatchNormalization statistics of the averaged
                weights are recomputed on it. Defaults to `None`.

        Returns:
            A new list of callbacks.
        """
        return fit_callbacks(self, model, callbacks, has_validation=has_validation,
                             initial_epoch=initial_epoch, epochs=epochs, data=data)

    # --- saving -----------------------------------------------------------------------------

    def get_config(self):
        """The options as plain data, without `backup_dir` and `distribution` (a run's
        settings, not the recipe's: see the class docstring)."""
        config = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                  if field.name not in _RUN_SETTINGS}
        if isinstance(self.optimizer, keras.optimizers.Optimizer):
            config["optimizer"] = keras.optimizers.serialize(self.optimizer)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("optimizer"), dict):
            config["optimizer"] = keras.optimizers.deserialize(config["optimizer"])
        return cls(**config)


TRAINING_OPTIONS = tuple(field.name for field in dataclasses.fields(Recipe))
