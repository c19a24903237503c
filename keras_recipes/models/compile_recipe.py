"""The recipe for any Keras model: `compile_recipe(model, loss=...)`, then a plain `fit`."""

from __future__ import annotations

import keras

from keras_recipes import _keras_internals
from keras_recipes import _validation as v
from keras_recipes.models import _factory as factory
from keras_recipes.training.compiling import compile_with_recipe
from keras_recipes.training.recipe_model import RecipeModel
from keras_recipes.training.recipe_wrapper import RecipeWrapper

__all__ = ["compile_recipe"]


@factory.documented("recipe_argument")
def compile_recipe(
    model, *, loss, metrics=None, loss_weights=None,
    # The training options (keras_recipes.Recipe documents each):
    optimizer="nadam", learning_rate=1e-3, schedule="auto", schedule_kwargs=None, total_steps=None,
    clipnorm=None, optimizer_kwargs=None, early_stopping_patience=10, swa_epochs=None,
    backup_dir=None, steps_per_execution="auto", jit_compile="auto", one_cycle="auto",
    recipe=None,
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
        optimizer, learning_rate, schedule, schedule_kwargs, total_steps, clipnorm,
            optimizer_kwargs, early_stopping_patience, swa_epochs, backup_dir,
            steps_per_execution, jit_compile, one_cycle: the
            training options, each as documented in `keras_recipes.Recipe` (which
            the model keeps as `model.recipe`).
            Here they default to Nadam on the 1cycle peaking at
            `learning_rate=1e-3` (a model of yours has no BatchNorm guaranteed;
            `"find"` is the better choice when in doubt) and early stopping
            after 10 epochs without a better `val_loss`. (No `distribution`: a
            model of yours is built where you built it.)
        {{recipe_argument}}

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
    recipe = factory.recipe_for(compile_recipe, locals())
    graph = _keras_internals.functional_graph(model)

    def make_model():
        if graph is not None:
            return RecipeModel(graph.inputs, graph.outputs, name=model.name, recipe=recipe)
        return RecipeWrapper(model, name=f"{model.name}_recipe", recipe=recipe)

    return compile_with_recipe(make_model, recipe, loss=loss, metrics=metrics,
                               loss_weights=loss_weights)
