"""`RecipeWrapper`: the recipe's `fit` around a model of yours that has no graph to share."""

from __future__ import annotations

import keras

from keras_recipes.training.recipe_model import RecipeTraining

__all__ = ["RecipeWrapper"]


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
        **kwargs: `recipe` (a `keras_recipes.Recipe`) and `name`.

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

    # Read by `keras_recipes._graph_walk.model_of`: the layers it runs are `inner_model`'s.
    wraps_a_model = True

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
