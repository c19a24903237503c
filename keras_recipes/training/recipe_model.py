"""The model class the recipe factories return: a functional `keras.Model` whose
`fit` runs the whole recipe."""

from __future__ import annotations

import contextlib
import functools

import keras

from keras_recipes import _keras_internals as internals
from keras_recipes import _processes
from keras_recipes import _validation as v
from keras_recipes.recipe import Recipe, RecipeState
from keras_recipes.recipe._execution import dividing_steps_per_execution
from keras_recipes.recipe._fit_callbacks import watches_batches
from keras_recipes.schedules._span import PeakedSchedule
from keras_recipes.training import _fit_arguments as arguments
from keras_recipes.training import _legacy
from keras_recipes.training._batches_per_call import CompiledFunctions, with_batches_per_call
from keras_recipes.training._epoch_order import (
    EpochOrderedArrays,
    are_arrays,
    orderable,
    ordered_fit_arguments,
)
from keras_recipes.training._fit_checks import check_fit_data

__all__ = ["RecipeModel", "RecipeTraining", "set_peak_learning_rate"]


def set_peak_learning_rate(optimizer, learning_rate):
    """Sets the peak of an optimizer's schedule (1cycle, decay), or its constant learning
    rate.

    Returns:
        bool, whether a compiled train step holds the old peak as a constant and
        must be rebuilt (only a schedule followed by an optimizer from outside
        `keras_recipes.optimizers`); a constant rate and a schedule of ours are
        variables the step reads.
    """
    schedule = internals.learning_rate_object(optimizer)
    if isinstance(schedule, PeakedSchedule):
        schedule.set_max_learning_rate(float(learning_rate))
        return schedule.state is None
    optimizer.learning_rate = float(learning_rate)
    return False


_SEED_KEY = "seed_generator_state_"

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


def _deprecated_setting(replacement, read):
    """A read-only attribute of the previous release, now read from `model.recipe`."""

    def getter(self):
        v.warn_deprecated(f"this attribute is deprecated: read model.recipe.{replacement}")
        return read(self._fit_recipe())

    return property(getter)


class RecipeTraining(internals.BuildsBeforeTracing):
    """The recipe's `fit` and settings, shared by `RecipeModel` (the factories' functional
    models) and `RecipeWrapper` (`compile_recipe` on a subclassed model); see `RecipeModel`.

    Mixed in before `keras.Model`.
    """

    def __init__(self, *args, recipe=None, **kwargs):
        settings = {key: kwargs.pop(key) for key in _legacy.SETTINGS if key in kwargs}
        super().__init__(*args, **kwargs)
        if settings:
            v.warn_deprecated(
                f"{type(self).__name__}({', '.join(sorted(settings))}=...) is deprecated: "
                "pass recipe=keras_recipes.Recipe(...)")
        if recipe is not None and not isinstance(recipe, Recipe):
            v.fail("recipe", recipe, "a keras_recipes.Recipe or None", error=TypeError)
        self.recipe = recipe
        # The settings of a file saved before the recipe object, until the optimizer they
        # describe is compiled (see compile_from_config).
        self._legacy_settings = settings or None
        if settings and recipe is None:
            self.recipe = _legacy.recipe_from_settings(settings, optimizer=None)
        self.learning_rate_finder_result = None
        self.early_stopping = None  # the EarlyStopping of the latest fit
        self.recipe_state = None  # the RecipeState of the latest fit
        self._fitting = False
        self._functions_by_batches_per_call = CompiledFunctions()
        # A keras.distribution distribution (JAX) must be active while data is
        # sharded, so fit/evaluate/predict re-enter it; not saved with the model.
        self._distribution_scope = contextlib.nullcontext

    # The settings of the previous release, read from the recipe (deprecated).
    early_stopping_patience = _deprecated_setting(
        "early_stopping_patience", lambda recipe: recipe.early_stopping_patience)
    auto_one_cycle = _deprecated_setting("stretches_one_cycle",
                                         lambda recipe: recipe.stretches_one_cycle)
    backup_dir = _deprecated_setting("backup_dir", lambda recipe: recipe.backup_dir)
    auto_learning_rate = _deprecated_setting("finds_learning_rate",
                                             lambda recipe: recipe.finds_learning_rate)
    reduce_lr_on_plateau = _deprecated_setting(
        "schedule == 'plateau'", lambda recipe: recipe.schedule == "plateau")
    _DEPRECATED_SETTINGS = frozenset({"early_stopping_patience", "auto_one_cycle", "backup_dir",
                                      "auto_learning_rate", "reduce_lr_on_plateau"})

    def __dir__(self):
        # Keras's saving reads every name dir() lists; reading these warns, and a
        # save is not a user reading a deprecated setting.
        return [name for name in super().__dir__() if name not in self._DEPRECATED_SETTINGS]

    def _fit_recipe(self):
        """The recipe whose callbacks `fit` adds: the model's, else one that only stops on
        NaN (a `RecipeModel` made without a recipe)."""
        return self.recipe if self.recipe is not None else _WITHOUT_RECIPE

    @_in_distribution
    def evaluate(self, *args, **kwargs):
        params = arguments.with_progress_bar(arguments.EVALUATE_SIGNATURE, args, kwargs)
        if self._fitting:  # fit's validation: fit has chosen (and checked the data)
            return super().evaluate(**params)
        # As `fit` does: labels outside the classes would give a NaN loss and no error.
        check_fit_data(self, params["x"], params["y"])
        if _processes.count() > 1 and are_arrays(params["x"], params["y"],
                                                 params["sample_weight"]):
            self._check_sharding()  # each process evaluates its share of every batch
            params["x"] = EpochOrderedArrays(
                (params["x"], params["y"], params["sample_weight"]),
                params["batch_size"] or 32, shard=(_processes.index(), _processes.count()))
            params.update(y=None, sample_weight=None, batch_size=None)
        with self._batches_per_call(self._dividing(params["steps"])):
            return super().evaluate(**params)

    @_in_distribution
    def predict(self, *args, **kwargs):
        if _processes.count() > 1:
            raise RuntimeError(
                f"`predict` cannot run on {_processes.count()} processes: Keras 3 cannot gather "
                "the predictions of several processes (the model's outputs span devices this "
                "process cannot read). Predict in one process, on the saved model "
                "(`keras.models.load_model`), or use `evaluate`, which works on several.")
        params = arguments.with_progress_bar(arguments.PREDICT_SIGNATURE, args, kwargs)
        with self._batches_per_call(self._dividing(params["steps"])):
            return super().predict(**params)

    def _check_sharding(self):
        """Refuses a distribution that would shard, again, the shares the recipe feeds."""
        # The recipe's, or the one set with keras.distribution.set_distribution (a model
        # given to compile_recipe is built where its author built it).
        distribution = self._fit_recipe().distribution or keras.distribution.distribution()
        if getattr(distribution, "auto_shard_dataset", False):
            v.fail("distribution", distribution,
                   "a keras.distribution.DataParallel(..., auto_shard_dataset=False) to train "
                   "on arrays across several processes",
                   hint="(the recipe gives each process its share of every global batch; "
                        "Keras's own sharding takes a tf.data.Dataset only)")

    @_in_distribution
    def fit(self, *args, **kwargs):
        params = arguments.call_arguments(arguments.FIT_SIGNATURE, args, kwargs)
        params["callbacks"] = self.recipe_callbacks(
            params["callbacks"],
            has_validation=params["validation_data"] is not None
            or bool(params["validation_split"]),
            initial_epoch=params["initial_epoch"],
            epochs=params["epochs"],
            data={key: params[key] for key in arguments.DATA_ARGUMENTS},
        )
        self.early_stopping = arguments.first(params["callbacks"], keras.callbacks.EarlyStopping)
        self.recipe_state = arguments.first(params["callbacks"], RecipeState)
        arguments.tell_monitors_the_batch_size(params)
        params["callbacks"] = arguments.progress_bar(params["callbacks"], params["verbose"])
        check_fit_data(self, params["x"], params["y"], params["validation_data"])
        state = self.recipe_state
        backed_up = state is not None and state.backup is not None
        processes = _processes.count()
        resumed_at = None
        if backed_up or processes > 1:  # the backup's folder, and one order for every process
            resumed_at = state.prepare(arguments.run_record(self._fit_recipe(), self, params))
        if self._fit_recipe().finds_learning_rate:
            if processes > 1:
                v.fail("learning_rate", "find", f"a number on {processes} processes",
                       hint="(the range test runs in one process: find the rate there, "
                            "with keras_recipes.find_learning_rate, and pass it)")
            found = state.record.get("found_learning_rate") if resumed_at is not None else None
            if found is None:
                found = self._find_learning_rate(params)
                if backed_up:
                    state.remember(found_learning_rate=found)
            else:  # resumed: the rate the run found before its restart
                self._use_learning_rate(found)
        first_epoch = resumed_at or params["initial_epoch"]
        if processes > 1 and orderable(params):
            # Each process feeds its share of every global batch, in one order for all.
            self._check_sharding()
            params = ordered_fit_arguments(params, state.order_seed, first_epoch,
                                           (_processes.index(), processes))
        elif backed_up and orderable(params) and params["shuffle"] is True:
            # Batches in an order fixed by the epoch, so that a resumed run trains on the
            # batches the uninterrupted one would have (Keras's shuffle differs by process).
            params = ordered_fit_arguments(params, state.order_seed, first_epoch)
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
                history = super().fit(**params)
            return history if state is None else state.complete(history)
        finally:
            self._fitting = False
            internals.clear_initial_epoch(self)

    def _dividing(self, *step_counts):
        """The batches per call, at most the compiled number, that run exactly the
        requested steps (see `dividing_steps_per_execution`)."""
        return dividing_steps_per_execution(self.steps_per_execution, *step_counts)

    def _batches_per_call(self, count):
        """Runs `count` batches per compiled call inside the block, the functions of each
        number kept (see `with_batches_per_call`)."""
        return with_batches_per_call(self, self._functions_by_batches_per_call, count)

    def compile_from_config(self, config):
        # A model compiled on TensorFlow or JAX with several batches per call
        # still trains after loading on PyTorch, which allows only one.
        if keras.backend.backend() == "torch" and config.get("steps_per_execution", 1) != 1:
            config = dict(config, steps_per_execution=1)
        super().compile_from_config(config)
        if self._legacy_settings is not None:  # now the optimizer they describe exists
            self.recipe = _legacy.recipe_from_settings(self._legacy_settings, self.optimizer)
            self._legacy_settings = None

    def _find_learning_rate(self, params):
        """Runs the LR range finder on `fit`'s data and trains at its suggestion."""
        from keras_recipes.lr_finder import find_learning_rate

        result = find_learning_rate(self, params["x"], params["y"],
                                    batch_size=params["batch_size"] or 32,
                                    sample_weight=params["sample_weight"], seed=0,
                                    method=self._fit_recipe().finder_method)
        self.learning_rate_finder_result = result
        self._use_learning_rate(float(result.suggestion))
        if params["verbose"] != 0:
            print(f"Learning rate finder: using {result.suggestion:.3g} "
                  f"({result.method}; see model.learning_rate_finder_result)")
        return float(result.suggestion)

    def _use_learning_rate(self, learning_rate):
        """Makes `learning_rate` the peak of the 1cycle (or the constant rate) and the
        recipe's."""
        baked_in = set_peak_learning_rate(self.optimizer, learning_rate)
        self.recipe = self._fit_recipe().replace(learning_rate=learning_rate)
        if baked_in and self.train_function is not None:
            self.make_train_function(force=True)

    def recipe_callbacks(self, callbacks=None, *, has_validation=False, initial_epoch=0,
                         epochs=1, data=None):
        """The user's callbacks followed by the recipe's (`Recipe.callbacks`).

        Args:
            callbacks: list of `keras.callbacks.Callback` or None.
            has_validation: bool, whether `fit` has validation data.
            initial_epoch: int, the `initial_epoch` of `fit`.
            epochs: int, the `epochs` of `fit`.
            data: dict or None, `fit`'s training data (see `Recipe.callbacks`).

        Returns:
            A new list of callbacks.
        """
        return self._fit_recipe().callbacks(self, callbacks, has_validation=has_validation,
                                            initial_epoch=initial_epoch, epochs=epochs,
                                            data=data)

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

    def get_config(self):
        config = super().get_config()
        config["recipe"] = (None if self.recipe is None
                            else keras.saving.serialize_keras_object(self.recipe))
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        recipe = config.pop("recipe", None)
        # Files saved before the recipe object carry its settings as flags; `backup_dir`
        # among them is dropped: a loaded model resumes from, or deletes, no folder.
        settings = {key: config.pop(key) for key in _legacy.SETTINGS if key in config}
        settings.pop("backup_dir", None)
        model = super().from_config(config, custom_objects=custom_objects)
        if recipe is not None:
            model.recipe = keras.saving.deserialize_keras_object(recipe)
        elif settings:
            model._legacy_settings = settings
            model.recipe = _legacy.recipe_from_settings(settings, optimizer=None)
        return model


# What a `RecipeModel` made without a recipe runs: no schedule, no early stopping.
_WITHOUT_RECIPE = Recipe(schedule="constant", early_stopping_patience=None)


@keras.saving.register_keras_serializable(package="keras_recipes")
class RecipeModel(RecipeTraining, keras.Model):
    """A functional `keras.Model` whose `fit` runs its recipe (`model.recipe`).

    What the factories and `compile_recipe` return. `model.fit(x, y, epochs=E,
    validation_data=...)` alone runs the recipe (`keras_recipes.Recipe`), with
    the callbacks `Recipe.callbacks` gives after yours:

    - the schedules (the 1cycle's learning rate and momentum, or a decay)
      stretched over exactly the steps of that `fit` call (unless the recipe
      has a `total_steps`);
    - early stopping on `val_loss` with the best weights restored, when there is
      validation data and the recipe has an `early_stopping_patience`. With a
      1cycle it watches only the second half of the epochs: the validation loss
      is expected to rise while the learning rate is high and to recover as it
      anneals, and stopping before that loses accuracy (on digits, mean test
      accuracy over 5 seeds: 96.4% watching from the start, 97.3% from halfway,
      97.4% without early stopping); with the cosine, the epochs after its
      warm-up;
    - with the recipe's `swa_epochs`, the weight averaging of the last epochs
      (`keras_recipes.callbacks.swa.StochasticWeightAveraging`), which it
      hands the `fit`'s training data for the BatchNorm statistics;
    - `keras_recipes.callbacks.StopOnNaN()`, which stops after an epoch with a
      NaN or infinite loss (Keras's `TerminateOnNaN` checks every batch and so
      synchronises every step);
    - `ReduceLROnPlateau(factor=0.5, patience=5)` on the validation loss (the
      training loss without validation data) for `schedule="plateau"`: the
      chapter's performance scheduling, on a constant learning rate. A
      `ReduceLROnPlateau` of yours with an optimizer on a schedule (the 1cycle)
      is refused with a clear message;
    - with the recipe's `backup_dir`, the backup (`keras_recipes.RecipeState`):
      after each epoch, once every callback has acted on it, the weights, the
      optimizer state and the callbacks' state (early stopping's best weights
      and patience, the plateau's); a run killed and started again with the
      same `fit` call resumes after the last finished epoch with all of it.
      Your callbacks see each epoch's end before it is backed up.

    A callback of yours of the same kind (`EarlyStopping`, `BackupAndRestore`,
    `ReduceLROnPlateau`, `TerminateOnNaN`, `StopOnNaN`) replaces the recipe's.

    The recipes compile with several batches per compiled call
    (`steps_per_execution`), which makes per-batch callbacks see only every
    32nd batch in plain Keras. Here, while a callback that acts on single
    batches (one overriding `on_train_batch_end`, say, or a `TensorBoard`) is
    passed to `fit`, that `fit` runs one batch per call, so every callback sees
    every batch; and a `steps_per_epoch`, `validation_steps` or `steps` is run
    exactly.

    With `learning_rate="find"`, the first `fit` first runs
    `keras_recipes.find_learning_rate` on its own training data (the model is
    left untouched by it) and uses its suggestion as the peak of the 1cycle
    (the `"one_cycle"` rule), or `valley` as the peak of another schedule or the
    constant learning rate; the result is kept in
    `model.learning_rate_finder_result`, and `model.recipe` then holds the rate
    found.

    `model.early_stopping` is the `EarlyStopping` of the latest `fit` (the
    recipe's or your own), or None: after `fit`, when its `best_weights` is not
    None, the model holds the weights of its `best_epoch` (counted from 0, as
    `fit` counts epochs); otherwise those of the last epoch.

    Saving (`model.save`, `save_weights`, and so the backup) also keeps the
    random-seed state of the dropout layers, which Keras leaves out: a restored
    model then draws the same dropout masks as the run it came from, so resumed
    training ends where uninterrupted training does. The recipe is saved with
    the model, without its `backup_dir` and `distribution`. Everything else is
    Keras's `Model`: it saves to `.keras` and reloads without `custom_objects`
    once `keras_recipes` is imported (files saved before the recipe object
    included).

    Args:
        inputs, outputs, name: as for a functional `keras.Model`.
        recipe: a `keras_recipes.Recipe` or None. `None` runs no schedule and no
            early stopping, only the NaN stop. Defaults to `None`.
        early_stopping_patience, auto_one_cycle, backup_dir, auto_learning_rate,
            reduce_lr_on_plateau: deprecated, the settings of the previous
            release; they make the equivalent recipe.

    Example:

    >>> import keras_recipes
    >>> model = keras_recipes.build_default_dnn((64,), num_classes=10)
    >>> type(model).__name__, model.recipe.optimizer
    ('RecipeModel', 'nadam')
    """
