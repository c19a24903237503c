"""Compiling a model with a recipe: the optimizer, the model and `compile`, inside the
recipe's distribution."""

from __future__ import annotations

import warnings

from keras_recipes.recipe._execution import is_keras_distribution

__all__ = ["compile_with_recipe"]


def compile_with_recipe(make_model, recipe, *, loss, metrics=None, **compile_kwargs):
    """Creates, inside the recipe's distribution scope, its optimizer, then the model, and
    compiles the model with the recipe's execution settings.

    Args:
        make_model: function of no argument returning the model (a `RecipeModel` or
            `RecipeWrapper` holding `recipe`), called inside the scope.
        recipe: the `keras_recipes.Recipe`.
        loss, metrics: as for `compile`.
        **compile_kwargs: more arguments of `compile` (`loss_weights`, ...).

    Returns:
        The compiled model.
    """
    with recipe.scope():
        optimizer = recipe.make_optimizer()
        model = make_model()
        with warnings.catch_warnings():
            # A layer XLA cannot compile makes Keras fall back to plain graphs, as "auto" would.
            warnings.filterwarnings("ignore", message=".*doesn't support `jit_compile=True`")
            model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                          **recipe.compile_arguments(model), **compile_kwargs)
    if is_keras_distribution(recipe.distribution):
        # The distribution must be active again while `fit` shards the data.
        model._distribution_scope = recipe.distribution.scope
    return model
