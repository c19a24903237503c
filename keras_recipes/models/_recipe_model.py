"""The model class the recipe factories return: a functional `keras.Model` whose
`fit` runs the whole recipe."""

from __future__ import annotations

import contextlib
import functools
import inspect

import keras

from keras_recipes import _keras_internals as internals
from keras_recipes.callbacks.backup import AtomicBackupAndRestore
from keras_recipes.callbacks.one_cycle_span import OneCycleSpan
from keras_recipes.callbacks.progress_bar import ChunkedProgbarLogger
from keras_recipes.callbacks.stop_on_nan import StopOnNaN
from keras_recipes.models._execution import dividing_steps_per_execution
from keras_recipes.models._fit_checks import check_fit_data
from keras_recipes.optimizers.introspection import one_cycle_schedules
from keras_recipes.schedules import OneCycle

__all__ = ["RecipeModel", "RecipeTraining", "set_peak_learning_rate", "watches_batches"]

_FIT_SIGNATURE = inspect.signature(keras.Model.fit)


def set_peak_learning_rate(optimizer, learning_rate):
    """Sets the peak of an optimizer's 1cycle, or its constant learning rate.

    Returns:
        bool, whether a compiled train step holds the old peak as a constant and
        must be rebuilt (only a 1cycle followed by an optimizer from outside
        `keras_recipes.optimizers`); a constant rate and a 1cycle of ours are
        variables the step reads.
    """
    schedule = internals.learning_rate_object(optimizer)
    if isinstance(schedule, OneCycle):
        schedule.set_max_learning_rate(float(learning_rate))
        return schedule.state is None
    optimizer.learning_rate = float(learning_rate)
    return False


# `schedule="plateau"`: the chapter's performance scheduling, as in its example.
_PLATEAU_FACTOR = 0.5
_PLATEAU_PATIENCE = 5


def _check_plateau_callbacks(optimizer, callbacks):
    """Refuses a `ReduceLROnPlateau` for an optimizer whose learning rate is a schedule.

    Keras would fail only at the first reduction, with a TypeError from inside the
    optimizer's `learning_rate` setter.
    """
    if optimizer is None or not any(isinstance(c, keras.callbacks.ReduceLROnPlateau)
                                    for c in callbacks):
        return
    for inner in internals.component_optimizers(optimizer):
        schedule = internals.learning_rate_object(inner)
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError(
                "`keras.callbacks.ReduceLROnPlateau` cannot be used with this model: its "
                f"optimizer's learning rate follows a schedule ({type(schedule).__name__}), "
                "which ReduceLROnPlateau cannot lower (Keras would fail with a TypeError at its "
                'first reduction). Build the model with schedule="plateau" (the recipe then '
                "adds ReduceLROnPlateau itself, on a constant learning rate), or leave the "
                "callback out.")


_EVALUATE_SIGNATURE = inspect.signature(keras.Model.evaluate)
_PREDICT_SIGNATURE = inspect.signature(keras.Model.predict)


def _progress_bar(callbacks, verbose):
    """`callbacks` with a progress bar that counts multi-batch calls right, if it prints."""
    if isinstance(callbacks, keras.callbacks.CallbackList):  # fit's validation: fit's own
        return callbacks
    callbacks = list(callbacks or [])
    if verbose != 0 and not any(isinstance(c, keras.callbacks.ProgbarLogger) for c in callbacks):
        callbacks.append(ChunkedProgbarLogger())
    return callbacks


def _with_progress_bar(signature, args, kwargs):
    """The keyword arguments of an `evaluate` / `predict` call, with `_progress_bar`."""
    arguments = signature.bind(None, *args, **kwargs)
    arguments.apply_defaults()
    params = dict(arguments.arguments)
    params.pop("self")
    extra = params.pop("kwargs", {})
    params["callbacks"] = _progress_bar(params["callbacks"], params["verbose"])
    return {**params, **extra}


_SEED_KEY = "seed_generator_state_"

_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end",
                "on_test_batch_begin", "on_test_batch_end")


def watches_batches(callback):
    """Whether `callback` acts on single batches of `fit` (overrides a batch hook).

    Keras's checkpointing callbacks saving once an epoch do not, although they
    define a batch hook.
    """
    epoch_savers = (keras.callbacks.BackupAndRestore, keras.callbacks.ModelCheckpoint)
    if isinstance(callback, epoch_savers) and callback.save_freq == "epoch":
        return False
    if isinstance(callback, keras.callbacks.ProgbarLogger):  # fine with a count per call
        return False
    for hook in _BATCH_HOOKS:
        method = getattr(callback, hook, None)
        if getattr(method, "__func__", method) is not getattr(keras.callbacks.Callback, hook):
            return True
    return False


class _WithoutKeys:
    """A read-only view of a variable store without some keys."""

    def __init__(self, store, hidden):
        self._store, self._hidden = store, set(hidden)

    def keys(self):
        return [key for key in self._store.keys() if key not in self._hidden]

    def __getitem__(self, key):
        return self._store[key]

    def __len__(self):
        return len(self.keys())


def _in_distribution(method):
    """Runs a `RecipeModel` method inside the model's distribution scope."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._distribution_scope():
            return method(self, *args, **kwargs)

    return wrapper


class RecipeTraining:
    """The recipe's `fit` and settings, shared by `RecipeModel` (the factories' functional
    models) and `RecipeWrapper` (`compile_recipe` on a subclassed model); see `RecipeModel`.

    Mixed in before `keras.Model`.
    """

    def __init__(self, *args, early_stopping_patience=None, auto_one_cycle=False,
                 backup_dir=None, auto_learning_rate=False, reduce_lr_on_plateau=False,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.reduce_lr_on_plateau = reduce_lr_on_plateau
        self.auto_learning_rate = auto_learning_rate
        self.learning_rate_finder_result = None
        self.early_stopping_patience = early_stopping_patience
        self.auto_one_cycle = auto_one_cycle
        self.backup_dir = None if backup_dir is None else str(backup_dir)
        self.early_stopping = None  # the EarlyStopping of the latest fit
        self._fitting = False
        self._functions_by_batches_per_call = {}
        # A keras.distribution distribution (JAX) must be active while data is
        # sharded, so fit/evaluate/predict re-enter it; not saved with the model.
        self._distribution_scope = contextlib.nullcontext

    @_in_distribution
    def evaluate(self, *args, **kwargs):
        params = _with_progress_bar(_EVALUATE_SIGNATURE, args, kwargs)
        if self._fitting:  # fit's validation: fit has chosen
            return super().evaluate(**params)
        with self._batches_per_call(self._dividing(params["steps"])):
            return super().evaluate(**params)

    @_in_distribution
    def predict(self, *args, **kwargs):
        params = _with_progress_bar(_PREDICT_SIGNATURE, args, kwargs)
        with self._batches_per_call(self._dividing(params["steps"])):
            return super().predict(**params)

    @_in_distribution
    def fit(self, *args, **kwargs):
        arguments = _FIT_SIGNATURE.bind(self, *args, **kwargs)
        arguments.apply_defaults()
        params = arguments.arguments
        params["callbacks"] = self.recipe_callbacks(
            params["callbacks"],
            has_validation=params["validation_data"] is not None
            or bool(params["validation_split"]),
            initial_epoch=params["initial_epoch"],
            epochs=params["epochs"],
        )
        params.pop("self")
        self.early_stopping = next((c for c in params["callbacks"]
                                    if isinstance(c, keras.callbacks.EarlyStopping)), None)
        _check_plateau_callbacks(self.optimizer, params["callbacks"])
        params["callbacks"] = _progress_bar(params["callbacks"], params["verbose"])
        check_fit_data(self, params["x"], params["y"], params["validation_data"])
        if self.auto_learning_rate:
            self._find_learning_rate(params)
        if any(map(watches_batches, params["callbacks"])):
            batches_per_call = 1  # so that those callbacks see every batch
        else:
            validation_steps = (params["validation_steps"]
                                if params["validation_data"] is not None else None)
            batches_per_call = self._dividing(params["steps_per_epoch"], validation_steps)
        # `BackupAndRestore` sets `_initial_epoch` when it restores a run and Keras never
        # clears it, so the next `fit` of the model would silently start at that epoch.
        internals.clear_initial_epoch(self)
        self._fitting = True  # fit's own `evaluate` of the validation data keeps fit's choice
        try:
            with self._batches_per_call(batches_per_call):
                return super().fit(**params)
        finally:
            self._fitting = False
            internals.clear_initial_epoch(self)

    def _dividing(self, *step_counts):
        """The batches per call, at most the compiled number, that run exactly the
        requested steps (see `dividing_steps_per_execution`)."""
        return dividing_steps_per_execution(self.steps_per_execution, *step_counts)

    @contextlib.contextmanager
    def _batches_per_call(self, batches_per_call):
        """Runs `batches_per_call` batches per compiled call inside the block.

        Keras's compiled functions hold the number as a constant, so each number has
        its own; they are kept, so that a `fit` like an earlier one reuses its functions
        rather than tracing them again, until the model is compiled anew.
        """
        compiled = self.steps_per_execution
        if batches_per_call == compiled:
            yield
            return
        self._switch_functions(compiled, batches_per_call)
        try:
            yield
        finally:
            self._switch_functions(batches_per_call, compiled)

    def _switch_functions(self, current, new):
        kept = self._functions_by_batches_per_call
        kept[current] = (self.train_function, self.test_function, self.predict_function)
        self.steps_per_execution = new
        self.train_function, self.test_function, self.predict_function = kept.get(
            new, (None, None, None))

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        self._functions_by_batches_per_call = {}

    def compile_from_config(self, config):
        # A model compiled on TensorFlow or JAX with several batches per call
        # still trains after loading on PyTorch, which allows only one.
        if keras.backend.backend() == "torch" and config.get("steps_per_execution", 1) != 1:
            config = dict(config, steps_per_execution=1)
        super().compile_from_config(config)

    def _find_learning_rate(self, params):
        from keras_recipes.lr_finder import find_learning_rate

        result = find_learning_rate(self, params["x"], params["y"],
                                    batch_size=params["batch_size"] or 32,
                                    sample_weight=params["sample_weight"], seed=0)
        baked_in = set_peak_learning_rate(self.optimizer, result.suggestion)
        self.learning_rate_finder_result = result
        self.auto_learning_rate = False
        if baked_in and self.train_function is not None:
            self.make_train_function(force=True)
        if params["verbose"] != 0:
            print(f"Learning rate finder: using {result.suggestion:.3g} "
                  f"({result.method}; see model.learning_rate_finder_result)")

    def recipe_callbacks(self, callbacks=None, *, has_validation=False, initial_epoch=0,
                         epochs=1):
        """The user's callbacks followed by the recipe's.

        Args:
            callbacks: list of `keras.callbacks.Callback` or None.
            has_validation: bool, whether `fit` has validation data.
            initial_epoch: int, the `initial_epoch` of `fit`.
            epochs: int, the `epochs` of `fit`.

        Returns:
            A new list of callbacks.
        """
        if isinstance(callbacks, keras.callbacks.CallbackList):
            callbacks = callbacks.callbacks
        callbacks = list(callbacks or [])

        def has(kind):
            return any(isinstance(c, kind) for c in callbacks)

        if self.backup_dir is not None and not has(keras.callbacks.BackupAndRestore):
            # Before the recipe's callbacks, so that the state is restored before the 1cycle
            # span is computed; after the user's, so that what they record of an epoch is
            # written before the epoch is backed up (a resumed run finds no gap in it).
            callbacks.append(AtomicBackupAndRestore(self.backup_dir))
        if self.auto_one_cycle and not has(OneCycleSpan):
            callbacks.append(OneCycleSpan(initial_epoch=initial_epoch))
        if self.reduce_lr_on_plateau and not has(keras.callbacks.ReduceLROnPlateau):
            callbacks.append(keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss" if has_validation else "loss", factor=_PLATEAU_FACTOR,
                patience=_PLATEAU_PATIENCE))
        if (
            has_validation
            and self.early_stopping_patience is not None
            and not has(keras.callbacks.EarlyStopping)
        ):
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss",
                    patience=self.early_stopping_patience,
                    restore_best_weights=True,
                    start_from_epoch=epochs // 2 if self._cycles() else 0,
                )
            )
        if not has(keras.callbacks.TerminateOnNaN) and not has(StopOnNaN):
            callbacks.append(StopOnNaN())
        return callbacks

    def _seed_states(self):
        return [v for v in self.variables if v.name == "seed_generator_state"]

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for i, state in enumerate(self._seed_states()):
            store[f"{_SEED_KEY}{i}"] = state

    def load_own_variables(self, store):
        seeds = {key: store[key] for key in store.keys() if key.startswith(_SEED_KEY)}
        own = _WithoutKeys(store, seeds)
        super().load_own_variables(own)
        states = self._seed_states()
        if len(seeds) == len(states):  # files saved by plain Keras have none
            for i, state in enumerate(states):
                state.assign(seeds[f"{_SEED_KEY}{i}"])

    def _cycles(self):
        return bool(self.optimizer is not None and one_cycle_schedules(self.optimizer))

    def get_config(self):
        config = super().get_config()
        config.update(
            early_stopping_patience=self.early_stopping_patience,
            auto_one_cycle=self.auto_one_cycle,
            backup_dir=self.backup_dir,
            auto_learning_rate=self.auto_learning_rate,
            reduce_lr_on_plateau=self.reduce_lr_on_plateau,
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        recipe_settings = {
            "early_stopping_patience": config.pop("early_stopping_patience", None),
            "auto_one_cycle": config.pop("auto_one_cycle", False),
            "backup_dir": config.pop("backup_dir", None),
            "auto_learning_rate": config.pop("auto_learning_rate", False),
            "reduce_lr_on_plateau": config.pop("reduce_lr_on_plateau", False),
        }
        model = super().from_config(config, custom_objects=custom_objects)
        for key, value in recipe_settings.items():
            setattr(model, key, value)
        return model


@keras.saving.register_keras_serializable(package="keras_recipes")
class RecipeModel(RecipeTraining, keras.Model):
    """A functional `keras.Model` whose `fit` adds the recipe's callbacks.

    `model.fit(x, y, epochs=E, validation_data=...)` alone runs the recipe:

    - the 1cycle schedules (learning rate and momentum) are stretched over exactly
      the steps of that `fit` call (when the model was built with `total_steps=None`);
    - `keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True)`
      when validation data is given and the model has an early-stopping patience.
      With a 1cycle it watches only the second half of the epochs: the validation
      loss is expected to rise while the learning rate is high and to recover as
      it anneals, and stopping before that loses accuracy (on digits, mean test
      accuracy over 5 seeds: 96.4% watching from the start, 97.3% from halfway,
      97.4% without early stopping);
    - `keras_recipes.callbacks.StopOnNaN()`, which stops after an epoch with a
      NaN or infinite loss (Keras's `TerminateOnNaN` checks every batch and so
      synchronises every step).
    - `keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=5)` on the
      validation loss (the training loss without validation data) when the model
      was built with `schedule="plateau"`: the chapter's performance scheduling,
      on a constant learning rate. A `ReduceLROnPlateau` of yours with an
      optimizer on a schedule (the 1cycle) is refused with a clear message.

    The factories compile with several batches per compiled call
    (`steps_per_execution`), which makes per-batch callbacks see only every
    32nd batch in plain Keras. Here, while a callback that acts on single
    batches (one overriding `on_train_batch_end`, say, or a `TensorBoard`) is
    passed to `fit`, that `fit` runs one batch per call, so every callback
    sees every batch; the next `fit` without one is fast again.

    - `keras_recipes.callbacks.AtomicBackupAndRestore(backup_dir)` (Keras's
      `BackupAndRestore`, safe against a kill during its write) after your callbacks and
      before the recipe's, when the model has a `backup_dir`: a run killed
      mid-epoch and started again with the same `fit` call resumes from the
      last finished epoch, with the same weights, optimizer state and 1cycle
      position. Your callbacks see each epoch's end before it is backed up, so
      a record they keep of the epochs (a `CSVLogger`, say) is never behind the
      backup: at worst it holds the one epoch that the resumed run repeats.

    With `auto_learning_rate` (a factory's `learning_rate="find"`), the first
    `fit` first runs `keras_recipes.find_learning_rate` on its own training data
    (the model is left untouched by it) and uses the suggestion as the peak of
    the 1cycle (or as the constant learning rate); the finder's result is kept
    in `model.learning_rate_finder_result`.

    `model.early_stopping` is the `EarlyStopping` of the latest `fit` (the
    recipe's or your own), or None: after `fit`, when its `best_weights` is not
    None, the model holds the weights of its `best_epoch` (counted from 0, as
    `fit` counts epochs); otherwise those of the last epoch.

    A user's own `callbacks=[...]` run beside them; a user's own `EarlyStopping`,
    `BackupAndRestore`, `ReduceLROnPlateau`, `TerminateOnNaN` or `StopOnNaN`
    replaces the recipe's.

    Saving (`model.save`, `save_weights`, and so `BackupAndRestore`) also keeps
    the random-seed state of the dropout layers, which Keras leaves out: a
    restored model then draws the same dropout masks as the run it came from,
    so resumed training ends where uninterrupted training does. Everything else is Keras's
    `Model`: it saves to `.keras` and reloads without `custom_objects` once
    `keras_recipes` is imported.

    Args:
        inputs, outputs, name: as for a functional `keras.Model`.
        early_stopping_patience: int or None, the patience of the recipe's
            early stopping; `None` disables it. Defaults to `None`.
        auto_one_cycle: bool, whether `fit` stretches the optimizer's 1cycle
            schedules over its steps. Defaults to `False`.
        backup_dir: str or None, folder for `AtomicBackupAndRestore`. Defaults to `None`.
        auto_learning_rate: bool, whether the next `fit` finds the learning
            rate first. Defaults to `False`.
        reduce_lr_on_plateau: bool, whether `fit` adds the recipe's
            `ReduceLROnPlateau`. Defaults to `False`.

    Example:

    >>> import keras_recipes
    >>> model = keras_recipes.build_default_dnn((64,), num_classes=10)
    >>> type(model).__name__
    'RecipeModel'
    """
