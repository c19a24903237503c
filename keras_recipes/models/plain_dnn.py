"""The chapter's plain baseline: Glorot + ReLU + Adam at a constant learning rate."""

from __future__ import annotations

import keras

from keras_recipes import _validation as v
from keras_recipes.models import _factory as factory
from keras_recipes.models import _layer_blocks as layer_blocks
from keras_recipes.models import _task_heads as heads
from keras_recipes.models._graph import dense_input_stem

__all__ = ["build_plain_dnn"]


@factory.documented("task_arguments", "training_options", "recipe_argument")
def build_plain_dnn(
    input_shape, num_classes=None, *, task="auto", num_outputs=1, label_smoothing=0.0,
    # The network:
    num_hidden_layers=3, units=100, seed=None, name="plain_dnn",
    # The training options (keras_recipes.Recipe documents each):
    optimizer="adam", learning_rate=1e-3, schedule="constant", schedule_kwargs=None,
    total_steps=None, clipnorm=None, optimizer_kwargs=None, early_stopping_patience=None,
    swa_epochs=None, backup_dir=None, distribution=None, steps_per_execution="auto",
    jit_compile="auto", one_cycle="auto", recipe=None,
):
    """Builds the plain baseline the recipes are compared against.

    `Dense(activation="relu")` layers with Keras's default Glorot uniform
    initialisation, no BatchNorm, no schedule, Adam at a constant learning
    rate, no early stopping by default: what a Keras model looks like before
    applying any of the chapter's techniques. Use it to see what the recipes
    buy.

    Args:
        {{task_arguments}}
        num_hidden_layers: int. Defaults to `3`.
        units: int. Defaults to `100`.
        {{training_options}}
            Here they default to the baseline's Adam at a constant
            `learning_rate=1e-3` without early stopping (`schedule="one_cycle"`
            or `"plateau"` to see what a schedule alone buys).
        {{recipe_argument}}
        seed: int or None, seeds the initializers. Defaults to `None`.
        name: str. Defaults to `"plain_dnn"`.

    Returns:
        A compiled `keras_recipes.RecipeModel`.

    Raises:
        ValueError: for bad values.
        TypeError: for arguments of the wrong type.

    Example:

    >>> import keras_recipes
    >>> baseline = keras_recipes.build_plain_dnn((64,), num_classes=10, seed=0)
    """
    factory.check_architecture(num_hidden_layers=num_hidden_layers, units=units,
                               dropout_rate=0.0, seed=seed)
    recipe = factory.recipe_for(build_plain_dnn, locals())
    task = heads.resolve_task(task, num_classes, num_outputs)
    input_shape = v.check_shape("input_shape", input_shape)
    loss, metrics = heads.task_loss(task, label_smoothing)

    def graph():
        inputs, x = dense_input_stem(input_shape, None)
        for i in range(1, num_hidden_layers + 1):
            x = keras.layers.Dense(
                units, activation="relu",
                kernel_initializer=layer_blocks.seeded_initializer("glorot_uniform",
                                                             layer_blocks.layer_seed(seed, i)),
                name=f"hidden_{i}",
            )(x)
        return inputs, heads.output_layer(task, num_classes, num_outputs, seed=seed)(x)

    return factory.assemble(graph, recipe, name=name, loss=loss, metrics=metrics)
