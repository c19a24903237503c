"""The recipe for any Keras model: `compile_recipe(model, loss=...)`, then a plain `fit`."""

from __future__ import annotations

import keras

from keras_recipes import _keras_internals
from keras_recipes import _validation as v
from keras_recipes.models import _compile_path as compile_path
from keras_recipes.models import _optimizer_choice as optimizer_choice
from keras_recipes.models._recipe_model import RecipeModel, RecipeTraining

__all__ = ["RecipeWrapper", "compile_recipe", "wrapped_model"]

# Arguments of the named optimizer that `optimizer_kwargs` may not set: the recipe's own.
_RECIPE_OPTIMIZER_ARGUMENTS = ("learning_rate", "momentum", "beta_1", "clipnorm")


@keras.saving.register_keras_serializable(package="keras_recipes")
class RecipeWrapper(RecipeTraining, keras.Model):
    """A model whose `fit` runs the recipe, calling a (subclassed) model of yours.

    What `compile_recipe` returns for a model without a graph to share: a
    subclassed `keras.Model`, or a `keras.Sequential` not yet built. Its only
    layer is your model (`wrapper.inner_model`), so both share every weight:
    training the wrapper trains your model. It is built when your model is
    (so MC Dropout, `diagnose` and `summary` work before the first `fit`),
    otherwise by its first `fit`. Beyond that it behaves as a
    `keras_recipes.RecipeModel` (see there for what `fit` adds).

    It saves to `.keras` and reloads without `custom_objects` once
    `keras_recipes` is imported and your model's class is registered (with
    `keras.saving.register_keras_serializable`, as Keras requires to reload any
    subclassed model).

    Args:
        inner_model: the `keras.Model` to call.
        **kwargs: the recipe settings of `RecipeModel` (`early_stopping_patience`,
            `auto_one_cycle`, `backup_dir`, `auto_learning_rate`,
            `reduce_lr_on_plateau`) and `name`.

    Example:

    >>> import keras, keras_recipes
    >>> class Tiny(keras.Model):
    ...     def __init__(self, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.dense = keras.layers.Dense(3, activation="softmax")
    ...     def call(self, x):
    ...         return self.dense(x)
    >>> model = keras_recipes.compile_recipe(Tiny(), loss="sparse_categorical_crossentropy")
    >>> type(model).__name__
    'RecipeWrapper'
    """

    def __init__(self, inner_model, **kwargs):
        super().__init__(**kwargs)
        self.inner_model = inner_model
        config = inner_model.get_build_config() if inner_model.built else None
        if config and "input_shape" in config:
            # Your model is built already: so is the wrapper (for MC Dropout, `diagnose`
            # and `summary` before the first `fit`), on the same input shape.
            self.build(config["input_shape"])

    def fit(self, x=None, *args, **kwargs):
        shape = getattr(x, "shape", None)
        if not self.built and shape is not None:
            # Built before `fit`, so that `BackupAndRestore` can restore into its variables.
            self.build((None, *tuple(shape)[1:]))
        return super().fit(x, *args, **kwargs)

    def build(self, input_shape):
        if not self.inner_model.built:
            # Calling the model on a symbolic batch creates its variables.
            self.inner_model(keras.KerasTensor(input_shape))

    def call(self, inputs, training=None):
        return self.inner_model(inputs, training=training)

    def get_config(self):
        config = super().get_config()
        config["inner_model"] = keras.saving.serialize_keras_object(self.inner_model)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["inner_model"] = keras.saving.deserialize_keras_object(
            config["inner_model"], custom_objects=custom_objects)
        return super().from_config(config, custom_objects=custom_objects)


def wrapped_model(model):
    """The model of yours that `model` runs: the one a `RecipeWrapper` calls, else `model`.

    What `diagnose` and `TrainingMonitor` read the layers of: a wrapper's only
    layer is your model, not a (pretrained) base nested in it.
    """
    while isinstance(model, RecipeWrapper):
        model = model.inner_model
    return model


def compile_recipe(
    model,
    *,
    loss,
    metrics=None,
    loss_weights=None,
    optimizer="nadam",
    learning_rate=1e-3,
    schedule="auto",
    one_cycle="auto",
    total_steps=None,
    clipnorm=None,
    optimizer_kwargs=None,
    early_stopping_patience=10,
    backup_dir=None,
    steps_per_execution="auto",
    jit_compile="auto",
):
    """Compiles any Keras model with the recipe, so that a plain `fit` runs all of it.

    The recipe is the factories' (`build_default_dnn` and the others), applied
    to a model of yours -- Sequential, functional or subclassed, built or not:
    Nadam (or the named optimizer) on the 1cycle over the learning rate *and*
    momentum (`beta_1`), evaluated inside the compiled train step and stretched
    over the steps of each `fit`; early stopping on the validation loss that
    waits for the 1cycle to anneal and restores the best weights; a stop after
    an epoch with a NaN loss; `backup_dir` to resume a killed run;
    `learning_rate="find"`; several batches per compiled call and XLA. Your own
    `callbacks=[...]` run beside them.

    **What it returns.** A new model that shares your model's layers and
    weights (training it trains yours; your model itself is left uncompiled):

    - for a functional model or a built `Sequential`, a
      `keras_recipes.RecipeModel` on the same graph, as the factories return,
      so that `diagnose`, MC Dropout and `model.layers` see your layers;
    - for a subclassed model (or a `Sequential` without an input shape), a
      `keras_recipes.models.RecipeWrapper` whose only layer is your model.

    Both save with `model.save("m.keras")` and reload with
    `keras.models.load_model` without `custom_objects`, optimizer state and
    1cycle position included (a subclassed model's own class must be
    registered with `keras.saving.register_keras_serializable`, as for any
    subclassed Keras model).

    Works with a mixed-precision policy (`keras.mixed_precision`; e.g.
    `"mixed_bfloat16"`) and with `optimizer_kwargs={"use_ema": True}`.
    `gradient_accumulation_steps` works with `schedule="plateau"` or
    `"constant"`; with the 1cycle it is refused (Keras's learning-rate schedule
    then counts batches and its momentum schedule optimizer updates).

    Args:
        model: a `keras.Model` (Sequential, functional or subclassed), built
            or not. A model that overrides `train_step` is refused: the recipe
            runs Keras's own train step.
        loss: the loss, as for `compile` (e.g. `"sparse_categorical_crossentropy"`).
        metrics: list or None, as for `compile`. Defaults to `None`.
        loss_weights: as for `compile`. Defaults to `None`.
        optimizer: str (`"nadam"`, `"adam"`, `"adamw"`, `"sgd"`) or a
            `keras.optimizers.Optimizer` instance used as given.
            Defaults to `"nadam"`.
        learning_rate: float, the peak of the 1cycle (or the constant rate), or
            `"find"`: the first `fit` runs `keras_recipes.find_learning_rate`
            on its training data and uses the suggestion. Defaults to `1e-3`
            (a model of yours has no BatchNorm guaranteed; `"find"` is the
            better choice when in doubt).
        schedule: str, `"auto"`, `"one_cycle"`, `"plateau"` or `"constant"`,
            as in `build_default_dnn`. Defaults to `"auto"`.
        one_cycle: bool or `"auto"`, deprecated alias of `schedule`, as in
            `build_default_dnn`. Defaults to `"auto"`.
        total_steps: int or None, the length of the 1cycle in optimizer steps;
            `None` lets each `fit` set it to its own steps. Defaults to `None`.
        clipnorm: float or None, clip each gradient to this norm (the
            chapter's advice for recurrent networks). Defaults to `None`.
        optimizer_kwargs: dict or None, more arguments of the named optimizer
            (`weight_decay`, `use_ema`, `gradient_accumulation_steps`, ...); not
            the recipe's own (`learning_rate`, `momentum`, `beta_1`,
            `clipnorm`). Defaults to `None`.
        early_stopping_patience: int or None, epochs without improvement of
            `val_loss` before stopping (best weights restored); `None`
            disables early stopping. Defaults to `10`.
        backup_dir: str or None, a folder where `fit` backs up the training
            state each epoch, so that a killed run started again resumes where
            it was. Defaults to `None`.
        steps_per_execution: int >= 1 or `"auto"`, as in `build_default_dnn`.
            Defaults to `"auto"`.
        jit_compile: bool or `"auto"`, as in `build_default_dnn`.
            Defaults to `"auto"`.

    Returns:
        A compiled `keras_recipes.RecipeModel` or
        `keras_recipes.models.RecipeWrapper` sharing `model`'s weights.

    Raises:
        ValueError: for out-of-range values, unknown names, or combinations
            the recipe cannot run.
        TypeError: for arguments of the wrong type.

    Example:

    >>> import numpy as np, keras, keras_recipes
    >>> cnn = keras.Sequential([
    ...     keras.Input((8, 8, 1)),
    ...     keras.layers.Conv2D(4, 3, activation="relu"),
    ...     keras.layers.GlobalAveragePooling2D(),
    ...     keras.layers.Dense(3, activation="softmax")])
    >>> model = keras_recipes.compile_recipe(
    ...     cnn, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> x, y = np.random.rand(64, 8, 8, 1), np.arange(64) % 3
    >>> history = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0)
    """
    if not isinstance(model, keras.Model):
        v.fail("model", model, "a keras.Model (Sequential, functional or subclassed)",
               error=TypeError)
    if type(model).train_step is not keras.Model.train_step:
        v.fail("model", v.Described(f"<{type(model).__name__} with its own train_step>"),
               "a model that uses Keras's train step",
               hint="(the recipe runs Keras's own; compile your model yourself, with "
                    "keras_recipes.optimizers and schedules, to keep yours)")
    schedule = optimizer_choice.resolve_schedule(schedule, one_cycle, optimizer)
    optimizer_choice.check_optimizer(optimizer, learning_rate, schedule == "one_cycle",
                                     total_steps, clipnorm)
    compile_path.check_training_arguments(early_stopping_patience=early_stopping_patience)
    optimizer_kwargs = _check_optimizer_kwargs(optimizer_kwargs, optimizer, schedule)

    graph = _keras_internals.functional_graph(model)

    def make_model(**settings):
        if graph is not None:
            return RecipeModel(graph.inputs, graph.outputs, name=model.name, **settings)
        return RecipeWrapper(model, name=f"{model.name}_recipe", **settings)

    return compile_path.compile_with_recipe(
        make_model,
        lambda: optimizer_choice.build_optimizer(optimizer, learning_rate,
                                                 schedule == "one_cycle", total_steps,
                                                 clipnorm, **optimizer_kwargs),
        loss=loss, metrics=metrics, loss_weights=loss_weights,
        early_stopping_patience=early_stopping_patience, backup_dir=backup_dir,
        learning_rate=learning_rate, schedule=schedule,
        steps_per_execution=steps_per_execution, jit_compile=jit_compile,
    )


def _check_optimizer_kwargs(optimizer_kwargs, optimizer, schedule):
    if optimizer_kwargs is None:
        return {}
    if not isinstance(optimizer_kwargs, dict):
        v.fail("optimizer_kwargs", optimizer_kwargs, "a dict of optimizer arguments or None",
               error=TypeError)
    if optimizer_kwargs and isinstance(optimizer, keras.optimizers.Optimizer):
        v.fail("optimizer_kwargs", optimizer_kwargs, "None when `optimizer` is an instance",
               hint="(set them on your optimizer)")
    for key in optimizer_kwargs:
        if key in _RECIPE_OPTIMIZER_ARGUMENTS:
            v.fail("optimizer_kwargs", optimizer_kwargs, f"free of `{key}`",
                   hint=f"(the recipe sets it; pass `{key}` to compile_recipe)"
                   if key in ("learning_rate", "clipnorm") else "(the recipe's 1cycle sets it)")
    if optimizer_kwargs.get("gradient_accumulation_steps") and schedule == "one_cycle":
        v.fail("optimizer_kwargs", optimizer_kwargs,
               'free of `gradient_accumulation_steps` with schedule="one_cycle"',
               hint="(with accumulation Keras's learning-rate schedule counts batches but the "
                    "momentum schedule counts optimizer updates, so the 1cycle would fall out "
                    'of step; use schedule="plateau" or "constant")')
    return dict(optimizer_kwargs)
